/**
 * Runs async operations one at a time, in order. Each workflow runner owns one: every change to
 * an instance (an event from a worker, a dispatch result, a timer, a control request) is applied
 * after the previous one finished, so the in-memory view and the rows never race each other.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;

  run<T>(op: () => Promise<T>): Promise<T> {
    this.pending++;
    const result = this.tail.then(op);
    this.tail = result.then(
      () => this.pending--,
      () => this.pending--,
    );
    return result;
  }

  get size(): number {
    return this.pending;
  }

  /** Resolves once everything queued so far has run. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}
