import type { Clock, TimerHandle } from '@porpoise/common';

/**
 * A Clock for unit tests: time moves only when advance() is called, and every timer due by then
 * fires, in due order. sleep() resolves when its time has been advanced past.
 */
export class ManualClock implements Clock {
  private readonly timers = new Map<number, { at: number; every?: number; fn: () => void }>();
  private seq = 0;
  private t: number;

  constructor(start = 0) {
    this.t = start;
  }

  now = (): number => this.t;

  /** The same time as now(): it only moves forward, by advance(). */
  monotonic = (): number => this.t;

  setTimeout = (fn: () => void, ms: number): TimerHandle => this.add(fn, ms, undefined);

  setInterval = (fn: () => void, ms: number): TimerHandle => this.add(fn, ms, Math.max(1, ms));

  clearTimeout = (handle: TimerHandle | undefined): void => {
    if (handle !== undefined) this.timers.delete(handle as unknown as number);
  };

  clearInterval = (handle: TimerHandle | undefined): void => this.clearTimeout(handle);

  sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => this.setTimeout(resolve, ms));

  /** How many timers are set. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by ms, firing every timer due on the way, earliest first. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; every?: number; fn: () => void }] | undefined;
      for (const entry of this.timers) {
        if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      }
      if (!next) break;
      const [id, timer] = next;
      this.t = Math.max(this.t, timer.at);
      if (timer.every === undefined) this.timers.delete(id);
      else timer.at += timer.every;
      timer.fn();
    }
    this.t = end;
  }

  private add(fn: () => void, ms: number, every: number | undefined): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), every, fn });
    return id as unknown as TimerHandle;
  }
}
