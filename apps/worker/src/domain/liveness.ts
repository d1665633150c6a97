/**
 * How long a worker may go without proof of life before its tasks must die (DESIGN.md section 6:
 * a worker that loses its session kills its tasks before anyone re-dispatches them).
 *
 * The masters re-dispatch a worker's tasks once its registry session expires, which happens one
 * session timeout T after the last heartbeat the registry server saw. A worker that is frozen
 * (SIGSTOP, a long GC pause, a stuck event loop) or cut off from the registry cannot be trusted
 * to notice that in time, so its tasks are ended at a *deadline* D = T - margin after the last
 * proof of life, with margin = min(2 × heartbeat interval, 40 % of T): two heartbeats cover the
 * registry's own heartbeat having been up to one interval older than ours plus the time to notice
 * and kill; 40 % keeps a sensible share of T when the heartbeat interval is large.
 *
 * At the defaults (T = 10 s, heartbeat 2 s): margin 4 s, deadline 6 s, liveness file touched every
 * 2 s, watchdogs poll every 0.5 s, so a frozen worker's tasks are dead 6 to 6.5 s after its last
 * touch, while its session cannot expire earlier than 8 s after it.
 */
export interface LivenessTimings {
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** min(2 × heartbeat, 40 % of the session timeout). */
  readonly marginMs: number;
  /** Session timeout minus the margin: the longest a task may live after the last proof of life. */
  readonly deadlineMs: number;
  /**
   * How often the worker touches DATA_DIR/worker.alive: the heartbeat interval, or a third of the
   * deadline when that is shorter (a heartbeat so long that one missed touch would reach the
   * deadline would kill the tasks of a healthy worker).
   */
  readonly touchIntervalMs: number;
  /** How often a task's watchdog looks at the liveness file (a quarter of the margin, 50..500 ms). */
  readonly pollMs: number;
}

export const MIN_WATCHDOG_POLL_MS = 50;
export const MAX_WATCHDOG_POLL_MS = 500;

export function livenessTimings(sessionTimeoutMs: number, heartbeatIntervalMs: number): LivenessTimings {
  if (!Number.isFinite(sessionTimeoutMs) || sessionTimeoutMs <= 0) {
    throw new RangeError(`session timeout must be positive, got ${sessionTimeoutMs}`);
  }
  if (!Number.isFinite(heartbeatIntervalMs) || heartbeatIntervalMs <= 0) {
    throw new RangeError(`heartbeat interval must be positive, got ${heartbeatIntervalMs}`);
  }
  const marginMs = Math.floor(Math.min(2 * heartbeatIntervalMs, 0.4 * sessionTimeoutMs));
  const deadlineMs = sessionTimeoutMs - marginMs;
  const touchIntervalMs = Math.max(1, Math.min(heartbeatIntervalMs, Math.floor(deadlineMs / 3)));
  const pollMs = Math.min(MAX_WATCHDOG_POLL_MS, Math.max(MIN_WATCHDOG_POLL_MS, Math.round(marginMs / 4)));
  return { sessionTimeoutMs, heartbeatIntervalMs, marginMs, deadlineMs, touchIntervalMs, pollMs };
}

/**
 * When a suspended session's tasks must be killed: the deadline counted from the last proof that
 * the session was alive (the send time of the last heartbeat the registry accepted, or the moment
 * it said CONNECTED / RECONNECTED), not from the SUSPENDED event, which may come late (a silent
 * network is noticed only after a read timeout). Returns the delay from now, 0 when already due.
 */
export function suspendedKillDelayMs(lastAliveAtMs: number, nowMs: number, deadlineMs: number): number {
  return Math.max(0, lastAliveAtMs + deadlineMs - nowMs);
}

/**
 * /proc/uptime ("12345.67 54321.09"): seconds since boot with two decimals, as an integer number
 * of centiseconds (CLOCK_BOOTTIME: monotonic, counts suspend, the same clock the watchdog reads).
 * Null when the text is not in that form.
 */
export function parseUptimeCentis(text: string): number | null {
  const m = /^(\d+)\.(\d{2})\s/.exec(text);
  if (!m) return null;
  const centis = Number(m[1]) * 100 + Number(m[2]);
  return Number.isSafeInteger(centis) ? centis : null;
}
