/** The median, 95th percentile and maximum of a benchmark's timings; null when it has none. */
export interface SampleStats {
  readonly medianMs: number | null;
  /** Nearest rank: the smallest sample at or above 95 % of them (the maximum below 20 samples). */
  readonly p95Ms: number | null;
  readonly maxMs: number | null;
}

export function sampleStats(samplesMs: readonly number[]): SampleStats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return {
    medianMs: sorted[Math.floor(sorted.length / 2)] ?? null,
    p95Ms: sorted[Math.max(0, Math.ceil(0.95 * sorted.length) - 1)] ?? null,
    maxMs: sorted.at(-1) ?? null,
  };
}
