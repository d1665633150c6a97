/**
 * Time as a node sees it: the one clock every service and lib is given, so timers and
 * timestamps can be replaced in tests (see ManualClock in the test harness). Only local
 * durations and timer scheduling come from here; ownership and registry liveness are judged by
 * the database's or the registry's clock, never this one.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Milliseconds on a clock that never jumps (for measuring gaps; its origin means nothing). */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
  /** Resolves after ms; never keeps the process alive by itself. */
  sleep(ms: number): Promise<void>;
}

export type TimerHandle = ReturnType<typeof setTimeout>;

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => {
    if (handle !== undefined) clearTimeout(handle);
  },
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => {
    if (handle !== undefined) clearInterval(handle);
  },
  sleep: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref()),
};

/** Injection token of the node's Clock (systemClock unless a test provides another). */
export const CLOCK = Symbol('CLOCK');

/**
 * Lets the process exit while the timer is pending (housekeeping timers must not keep a node
 * alive). Returns the handle. A test clock's handles are plain ids with nothing to unref.
 */
export function unrefTimer(handle: TimerHandle): TimerHandle {
  if (typeof handle === 'object') handle.unref();
  return handle;
}
