import { CLOCK, type Clock, type TimerHandle } from '@porpoise/common';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { BackfillRepository } from '@porpoise/dao';
import { PgNotificationListener } from '../db/pg-notification-listener.service';
import {
  BACKFILL_CHANNEL,
  INSTANCE_END_CHANNEL,
  MASTER_IDENTITY,
  MASTER_OPTIONS,
  type MasterIdentity,
  type MasterOptions,
} from '../master.constants';
import { SessionStateService } from '../registry/session-state.service';

/**
 * Drives backfills (DESIGN.md section 10). Every master may advance any RUNNING backfill: an
 * advance is one database transaction that locks the backfill row and creates its next runs up
 * to `parallelism` (BackfillRepository.advance), so nothing about a backfill lives in a master's
 * memory and a master killed mid-advance loses nothing (its transaction aborts; the next advance,
 * here or on another master, does the same work).
 *
 * Wakes: porpoise_backfill (a new backfill), porpoise_instance_end (a run of a workflow that has a
 * RUNNING backfill ended: its place is free), every LISTEN (re)connect, and a sweep every
 * backfillSweepMs over all RUNNING backfills, which covers lost NOTIFYs and a master that died
 * while it was the one advancing. Advances run one at a time per master (one pooled connection).
 * Nothing is started while the registry session is not usable (a fenced master creates no runs).
 */
@Injectable()
export class BackfillService {
  private readonly logger = new Logger('Backfill');
  private readonly unsubscribe: Array<() => void> = [];
  /** Workflow code → its RUNNING backfills, as last seen (the sweep rebuilds it). */
  private readonly byCode = new Map<string, Set<number>>();
  private readonly pending = new Set<number>();
  private draining: Promise<void> | undefined;
  private sweeping: Promise<void> | undefined;
  private timer: TimerHandle | undefined;
  private running = false;
  private failing = false;

  constructor(
    @Inject(BackfillRepository) private readonly backfills: BackfillRepository,
    @Inject(PgNotificationListener) private readonly listener: PgNotificationListener,
    @Inject(SessionStateService) private readonly session: SessionStateService,
    @Inject(MASTER_IDENTITY) private readonly identity: MasterIdentity,
    @Inject(MASTER_OPTIONS) private readonly options: MasterOptions,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  start(): void {
    this.running = true;
    this.unsubscribe.push(
      this.listener.on(BACKFILL_CHANNEL, (payload) => {
        const event = parsePayload(payload);
        if (!event) return;
        this.remember(event.code, event.id);
        this.wake([event.id]);
      }),
      this.listener.on(INSTANCE_END_CHANNEL, (payload) => {
        const event = parsePayload(payload);
        const ids = event && this.byCode.get(event.code);
        if (ids) this.wake([...ids]);
      }),
      this.listener.onConnected(() => this.sweep()),
    );
    this.sweep();
    this.scheduleSweep();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.clock.clearTimeout(this.timer);
    for (const u of this.unsubscribe.splice(0)) u();
    this.pending.clear();
    await Promise.all([this.sweeping, this.draining]);
  }

  private scheduleSweep(): void {
    if (!this.running) return;
    this.timer = this.clock.setTimeout(() => {
      this.sweep();
      this.scheduleSweep();
    }, this.options.backfillSweepMs);
  }

  /** Reads the RUNNING backfills and advances each (one sweep at a time). */
  sweep(): void {
    if (!this.running || this.sweeping) return;
    this.sweeping = this.sweepOnce().finally(() => (this.sweeping = undefined));
  }

  private async sweepOnce(): Promise<void> {
    if (!this.session.canStartWork()) return;
    let list: Array<{ id: number; workflowCode: string }>;
    try {
      list = await this.backfills.running();
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger.error(`reading running backfills failed: ${(err as Error).message}`);
      this.failing = true;
      return;
    }
    this.byCode.clear();
    for (const b of list) this.remember(b.workflowCode, b.id);
    this.wake(list.map((b) => b.id));
  }

  private remember(code: string, id: number): void {
    let ids = this.byCode.get(code);
    if (!ids) this.byCode.set(code, (ids = new Set()));
    ids.add(id);
  }

  private forget(id: number): void {
    for (const [code, ids] of this.byCode) {
      if (ids.delete(id) && ids.size === 0) this.byCode.delete(code);
    }
  }

  private wake(ids: readonly number[]): void {
    if (!this.running) return;
    for (const id of ids) this.pending.add(id);
    if (this.draining || this.pending.size === 0) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      // Woken while the last advance ran: go on.
      if (this.pending.size > 0) this.wake([]);
    });
  }

  private async drain(): Promise<void> {
    for (const id of this.pending) {
      if (!this.running) return;
      this.pending.delete(id);
      // The sweep after the session is usable again picks these up.
      if (!this.session.canStartWork()) continue;
      try {
        const outcome = await this.backfills.advance(id, this.identity.address);
        for (const run of outcome.createdRuns) {
          this.logger.log(
            `backfill ${id}: run ${run.seq} for ${run.scheduleTime.toISOString()} is instance ${run.workflowInstanceId}`,
          );
        }
        if (outcome.ended) this.logger.log(`backfill ${id} ended ${outcome.state ?? ''}`);
        if (outcome.state !== 'RUNNING') this.forget(id);
      } catch (err) {
        // The transaction rolled back: nothing was created; the next wake or sweep tries again.
        this.logger.warn(`advancing backfill ${id} failed: ${(err as Error).message}`);
      }
    }
  }
}

function parsePayload(payload: string): { id: number; code: string } | undefined {
  try {
    const value = JSON.parse(payload) as { id?: unknown; code?: unknown };
    const id = Number(value.id);
    if (!Number.isSafeInteger(id) || typeof value.code !== 'string') return undefined;
    return { id, code: value.code };
  } catch {
    return undefined;
  }
}
