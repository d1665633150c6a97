/** Small named errors of the worker, so callers and logs can tell them from bugs. */

export class WorkerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** /bin/sh could not be started for a task. */
export class SpawnFailedError extends WorkerError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`spawn failed: ${reason}`, options);
  }
}

/** A file under DATA_DIR (outbox, running marker) that does not hold what the worker wrote there. */
export class CorruptRecordError extends WorkerError {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}
