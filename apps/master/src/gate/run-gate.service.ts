import { CLOCK, NOTIFY_CHANNELS, type Clock, type TimerHandle } from '@porpoise/common';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { RunGateRepository } from '@porpoise/dao';
import { PgNotificationListener } from '../db/pg-notification-listener.service';
import { MASTER_OPTIONS, type MasterOptions } from '../master.constants';

/** Gate passes of different workflows this master runs at once (each holds a pooled connection). */
const MAX_PARALLEL_PASSES = 4;

/**
 * Runs the run gate (RunGateRepository.pass, README "Run concurrency") on this master. Every
 * master does, for any workflow: the decision is the database's (a row lock and a count), so
 * masters need not agree on who runs it, and a master killed mid-pass loses nothing (its
 * transaction aborts; the next pass redoes it). A pass for a workflow runs when
 *  - a run of it enters SERIAL_WAIT (NOTIFY porpoise_gate, payload the code);
 *  - a run of a limited workflow ends (NOTIFY porpoise_instance_end, payload {"id","code"}):
 *    the codes of limited workflows are known from the last sweep, or from a porpoise_gate;
 *  - the sweep (every gateSweepIntervalMs) finds runs waiting, and when the LISTEN connection
 *    (re)connects (NOTIFYs sent while it was down are lost).
 * Requests are coalesced per workflow: one pass at a time per code, and one more after it when
 * a request came in meanwhile (a run that ended during a pass is seen by the next one).
 */
@Injectable()
export class RunGateService {
  private readonly logger = new Logger('RunGate');
  private running = false;
  private readonly unsubscribe: Array<() => void> = [];
  private sweepTimer: TimerHandle | undefined;
  /** Workflows whose run ends matter: limited ones (as of the last sweep, plus porpoise_gate codes). */
  private limited = new Set<string>();
  /** Workflows that want a pass, and those with one in progress. */
  private readonly wanted = new Set<string>();
  private readonly inFlight = new Set<string>();
  private readonly passes = new Set<Promise<void>>();
  private sweeping: Promise<void> | undefined;
  private failing = false;

  constructor(
    @Inject(MASTER_OPTIONS) private readonly options: MasterOptions,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(RunGateRepository) private readonly gate: RunGateRepository,
    @Inject(PgNotificationListener) private readonly listener: PgNotificationListener,
  ) {}

  start(): void {
    this.running = true;
    this.unsubscribe.push(
      this.listener.on(NOTIFY_CHANNELS.gate, (code) => {
        this.limited.add(code);
        this.request(code);
      }),
      this.listener.on(NOTIFY_CHANNELS.instanceEnd, (payload) => {
        const code = endedCode(payload);
        if (code !== undefined && this.limited.has(code)) this.request(code);
      }),
      this.listener.onConnected(() => this.sweep()),
    );
    this.sweep();
  }

  /** Stops reacting; resolves once the passes and the sweep in progress have finished. */
  async stop(): Promise<void> {
    this.running = false;
    for (const u of this.unsubscribe.splice(0)) u();
    this.clock.clearTimeout(this.sweepTimer);
    this.wanted.clear();
    await this.sweeping;
    await Promise.all([...this.passes]);
  }

  /** Asks for a pass of the workflow soon (coalesced). */
  request(code: string): void {
    if (!this.running) return;
    this.wanted.add(code);
    this.pump();
  }

  private pump(): void {
    for (const code of [...this.wanted]) {
      if (!this.running || this.inFlight.size >= MAX_PARALLEL_PASSES) return;
      if (this.inFlight.has(code)) continue;
      this.wanted.delete(code);
      this.inFlight.add(code);
      const pass: Promise<void> = this.pass(code).finally(() => {
        this.inFlight.delete(code);
        this.passes.delete(pass);
        this.pump();
      });
      this.passes.add(pass);
    }
  }

  private async pass(code: string): Promise<void> {
    try {
      const outcome = await this.gate.pass(code);
      for (const a of outcome.admitted) {
        this.logger.log(
          `workflow ${code}: admitted instance ${a.workflowInstanceId} (command ${a.commandId})`,
        );
      }
      if (outcome.discarded.length > 0) {
        this.logger.log(
          `workflow ${code}: discarded instances ${outcome.discarded.join(', ')} (SERIAL_DISCARD)`,
        );
      }
      this.recovered();
    } catch (err) {
      // The sweep tries again; log once per outage.
      this.failed(`gate pass of workflow ${code} failed: ${(err as Error).message}`);
    }
  }

  /** Re-reads the limited workflows and runs a pass for each with runs waiting; then re-arms. */
  private sweep(): void {
    if (!this.running) return;
    this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    this.sweeping ??= this.gate
      .workflows()
      .then((workflows) => {
        this.limited = new Set(workflows.filter((w) => w.limited).map((w) => w.code));
        for (const w of workflows) if (w.waiting) this.request(w.code);
        this.recovered();
      })
      .catch((err: Error) => this.failed(`gate sweep failed: ${err.message}`))
      .finally(() => {
        this.sweeping = undefined;
        if (this.running && this.sweepTimer === undefined) {
          this.sweepTimer = this.clock.setTimeout(() => this.sweep(), this.options.gateSweepIntervalMs);
        }
      });
  }

  private failed(message: string): void {
    if (!this.failing) this.logger.error(message);
    this.failing = true;
  }

  private recovered(): void {
    if (this.failing) this.logger.log('gate passes work again');
    this.failing = false;
  }
}

/** The workflow code of a porpoise_instance_end payload; undefined when it is not one. */
export function endedCode(payload: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(payload);
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      'code' in parsed &&
      typeof parsed.code === 'string'
    ) {
      return parsed.code;
    }
  } catch {
    // Not JSON: not ours to read.
  }
  return undefined;
}
