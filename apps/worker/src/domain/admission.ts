/**
 * Decisions about whether a Dispatch may start a task (pure: times are performance.now() values,
 * passed in, so the rules are testable without a clock).
 */

/**
 * A Dispatch of a task for which a TakeOver was answered UNKNOWN is stale unless its epoch is
 * strictly newer than that TakeOver's: the master that heard UNKNOWN runs the task again as a new
 * attempt with a new task id, so the same id at the same (or an older) epoch is never dispatched
 * legitimately. It is a Dispatch that was still in flight when the TakeOver was answered (a frozen
 * master, or a connection dropped mid-call that made the master ask TakeOver), and starting it
 * would run the task beside its re-run.
 */
export function isSuperseded(dispatchEpoch: number, unknownTakeOverEpoch: number | undefined): boolean {
  return unknownTakeOverEpoch !== undefined && dispatchEpoch <= unknownTakeOverEpoch;
}

/**
 * Whether the worker's registry session is confirmed alive as far as a stall of the worker itself
 * goes (SUSPENDED and LOST are tracked apart, from the registry's events).
 *
 * A worker frozen longer than the liveness deadline (SIGSTOP, a long GC pause, a stuck event loop)
 * may have lost its session without knowing it yet: on waking, the event loop handles the gRPC
 * calls that queued up while it was frozen before any registry event arrives. So the stall is
 * detected where it matters, synchronously: every admission check compares now with the last time
 * the event loop was seen running (a liveness tick, or an earlier check); a gap over the deadline
 * is a stall. From then on the session is unconfirmed until proof that it is alive again that was
 * obtained after the stall was detected: a registry operation sent after that moment succeeded
 * while connected, or CONNECTED / RECONNECTED arrived.
 */
export class SessionConfirmation {
  private lastLoopAt: number;
  private unconfirmedSince: number | undefined;

  constructor(
    readonly deadlineMs: number,
    nowMs: number,
  ) {
    this.lastLoopAt = nowMs;
  }

  /** The loop is known to run from now on (the worker starts): what came before is no stall. */
  restart(nowMs: number): void {
    this.lastLoopAt = nowMs;
  }

  /**
   * The event loop runs now. Returns the length of the stall that ended now (the gap since the
   * loop was last seen) when it exceeded the deadline, else null.
   */
  observe(nowMs: number): number | null {
    const gap = nowMs - this.lastLoopAt;
    this.lastLoopAt = Math.max(this.lastLoopAt, nowMs);
    if (gap <= this.deadlineMs) return null;
    this.unconfirmedSince ??= nowMs;
    return gap;
  }

  /** Whether the session counts as alive now (also detects a stall that has just ended). */
  confirmedAt(nowMs: number): boolean {
    this.observe(nowMs);
    return this.unconfirmedSince === undefined;
  }

  /** Unconfirmed since a stall: not re-checked against the clock (see confirmedAt). */
  get unconfirmed(): boolean {
    return this.unconfirmedSince !== undefined;
  }

  /**
   * Proof that the session is alive, obtained at `proofAtMs` (the send time of a registry
   * operation that succeeded, or the time of a CONNECTED / RECONNECTED). Proof from before the
   * stall was detected proves nothing (the answer may have waited in a socket buffer while the
   * worker was frozen). Returns true when this confirmed an unconfirmed session.
   */
  confirm(proofAtMs: number): boolean {
    if (this.unconfirmedSince === undefined || proofAtMs < this.unconfirmedSince) return false;
    this.unconfirmedSince = undefined;
    return true;
  }
}
