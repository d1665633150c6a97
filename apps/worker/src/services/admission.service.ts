import { Inject, Injectable, Logger } from '@nestjs/common';
import { CLOCK, PORPOISE_CONFIG, type Clock, type WorkerConfig } from '@porpoise/common';
import type { WorkerAddressee } from '@porpoise/rpc';
import { SessionConfirmation } from '../domain/admission';
import { livenessTimings } from '../domain/liveness';

export type SessionState = 'connected' | 'suspended' | 'lost';

const NOT_ADDRESSED: WorkerAddressee = { startTimeMs: 0, registration: 0 };

/**
 * Whether this worker may take new tasks. A worker whose registry session is suspended or lost
 * must not start work: the masters may already consider it dead and dispatch its tasks elsewhere
 * (DESIGN.md section 6, Fencing). Nor may a worker that has just woken from a stall longer than
 * the liveness deadline, until its session is confirmed alive again (domain/admission.ts): the
 * session may have expired while it was frozen, and the Dispatches that queued up meanwhile may be
 * attempts the masters have already run elsewhere. Draining (graceful stop) refuses too.
 */
@Injectable()
export class AdmissionService {
  private readonly logger = new Logger('WorkerAdmission');
  private session: SessionState = 'connected';
  private drainingSince: number | undefined;
  private registered = false;
  private readonly confirmation: SessionConfirmation;
  /**
   * This process's incarnation: the heartbeat's startTime, and told to masters in Dispatch and
   * TakeOver answers, so a master can tell a restarted worker on the same address from the
   * process that ran its task before.
   */
  readonly startTimeMs: number;
  private readonly stallListeners: (() => void)[] = [];
  /**
   * This process's registration: 1 at start, one more each time the masters may have written this
   * worker off and run its tasks elsewhere (the session was lost; a stall, or a suspension, past
   * the liveness deadline). Published in the heartbeat; a Dispatch a master addressed to an
   * earlier registration is refused (a master that froze before sending it must not start a task
   * its successor has already run again).
   */
  private registrationNo = 1;

  constructor(
    @Inject(PORPOISE_CONFIG) config: WorkerConfig,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.startTimeMs = clock.now();
    const { deadlineMs } = livenessTimings(
      config.registry.sessionTimeoutMs,
      config.registry.heartbeatIntervalMs,
    );
    // Stalls are measured on the monotonic clock (the Clock is wall time, which NTP may step).
    this.confirmation = new SessionConfirmation(deadlineMs, performance.now());
  }

  setSession(state: SessionState): void {
    if (state === 'lost' && this.session !== 'lost') this.endRegistration('the registry session was lost');
    this.session = state;
  }

  get registration(): number {
    return this.registrationNo;
  }

  /** The masters may have written this registration off: Dispatches addressed to it are stale. */
  endRegistration(why: string): void {
    this.registrationNo++;
    this.logger.warn(
      `${why}: registration ${this.registrationNo} begins (Dispatches addressed to earlier ones are refused)`,
    );
  }

  get sessionState(): SessionState {
    return this.session;
  }

  /** The liveness ticks begin: the time the worker took to start is no stall. */
  loopStarted(now = performance.now()): void {
    this.confirmation.restart(now);
  }

  /**
   * The event loop runs now (the liveness tick, and every admission check): a gap since it was
   * last seen longer than the deadline was a stall, and the session is unconfirmed from now on.
   * Returns the stall's length, or null.
   */
  observeLoop(now = performance.now()): number | null {
    const stall = this.confirmation.observe(now);
    if (stall !== null) {
      this.endRegistration(`stalled for ${Math.round(stall)} ms`);
      this.logger.warn(
        `the worker was stalled for ${Math.round(stall)} ms (deadline ${this.confirmation.deadlineMs} ms): ` +
          'the watchdogs have killed the tasks that were running, and its registry session may have ' +
          'expired: not taking tasks until the session is confirmed alive',
      );
      for (const listener of this.stallListeners) queueMicrotask(listener);
    }
    return stall;
  }

  /** Called (soon after, not inside the check) when a stall is detected: e.g. to heartbeat at once. */
  onStall(listener: () => void): () => void {
    this.stallListeners.push(listener);
    return () => {
      const i = this.stallListeners.indexOf(listener);
      if (i >= 0) this.stallListeners.splice(i, 1);
    };
  }

  /**
   * Proof, obtained at `proofAt` (performance.now()), that the session is alive: a registry
   * operation sent then succeeded while connected, or CONNECTED / RECONNECTED. True when it ended
   * an unconfirmed state.
   */
  confirmSession(proofAt: number): boolean {
    if (this.session !== 'connected' || !this.confirmation.confirm(proofAt)) return false;
    this.logger.log('registry session confirmed alive after the stall: taking tasks again');
    return true;
  }

  /**
   * The worker's registry key exists. Before that no Dispatch is taken: a master may still list
   * this address under a predecessor's key, and the removal of that key (when this process
   * replaces it) would make it re-run, elsewhere, a task this process had taken.
   */
  markRegistered(): void {
    this.registered = true;
  }

  startDraining(): void {
    this.drainingSince ??= this.clock.now();
  }

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  /**
   * Why the registry session does not allow starting a task now, or null. Checks the clock
   * synchronously: right after a stall the calls queued meanwhile run before any registry event.
   */
  sessionRefusal(now = performance.now()): string | null {
    this.observeLoop(now);
    if (this.session === 'suspended') return 'session suspended';
    if (this.session === 'lost') return 'session lost';
    if (this.confirmation.unconfirmed) return 'session unconfirmed';
    return null;
  }

  /**
   * Why a Dispatch is refused now, or null when the worker takes tasks. `to` is the registration
   * the master addressed (0s: not given).
   */
  refusal(now = performance.now(), to: WorkerAddressee = NOT_ADDRESSED): string | null {
    const refusal = this.servingRefusal(now);
    if (refusal === null && !this.registered) return 'not registered yet';
    return refusal ?? this.addressRefusal(to);
  }

  private addressRefusal(to: WorkerAddressee): string | null {
    if (to.startTimeMs !== 0 && to.startTimeMs !== this.startTimeMs) {
      return `stale registration: addressed to the process started at ${to.startTimeMs}, this one started at ${this.startTimeMs}`;
    }
    if (to.registration !== 0 && to.registration !== this.registrationNo) {
      return `stale registration: addressed to registration ${to.registration}, this worker is at ${this.registrationNo}`;
    }
    return null;
  }

  /** The heartbeat's `serving` flag (the first heartbeat, which registers, already says true). */
  get serving(): boolean {
    return this.servingRefusal() === null;
  }

  private servingRefusal(now = performance.now()): string | null {
    const session = this.sessionRefusal(now);
    if (this.draining) return 'draining';
    return session;
  }
}
