/** The median and the maximum of a benchmark's timings; null for both when it has none. */
export interface SampleStats {
  readonly medianMs: number | null;
  readonly maxMs: number | null;
}

export function sampleStats(samplesMs: readonly number[]): SampleStats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)] ?? null, maxMs: sorted.at(-1) ?? null };
}
