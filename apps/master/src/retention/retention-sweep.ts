/** What one batch reports: whether it held the retention lock, and how many rows it deleted. */
export interface BatchOutcome {
  readonly locked: boolean;
  readonly deleted: number;
}

export interface SweepOutcome {
  readonly deleted: number;
  readonly batches: number;
  /** True when another master held the lock: it is sweeping, this one stopped. */
  readonly yielded: boolean;
}

/**
 * Runs batches until one deletes fewer than a full batch (nothing more is due), another master
 * holds the lock (it sweeps; two would only contend), or `keepGoing` says stop (shutdown).
 * Pure sequencing, so it is tested without a database.
 */
export async function sweepInBatches(
  batch: () => Promise<BatchOutcome>,
  batchSize: number,
  keepGoing: () => boolean,
): Promise<SweepOutcome> {
  let deleted = 0;
  let batches = 0;
  while (keepGoing()) {
    const outcome = await batch();
    batches++;
    if (!outcome.locked) return { deleted, batches, yielded: true };
    deleted += outcome.deleted;
    if (outcome.deleted < batchSize) break;
  }
  return { deleted, batches, yielded: false };
}
