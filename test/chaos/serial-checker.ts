/**
 * The run-concurrency checker (README "Run concurrency"): given the runs of one workflow with a
 * concurrency limit, from their rows, says where the limit was broken. Pure, so that it can be
 * tested on synthetic histories; the e2e and chaos tests feed it real rows.
 *
 * A run holds a slot from its start_time to its end_time (start_time is kept across failovers,
 * end_time is when it reached a final state). Discarded runs (never started) hold none.
 */
export interface SerialRun {
  readonly id: number;
  readonly state: string;
  readonly startMs: number | null;
  readonly endMs: number | null;
}

export interface SerialProblem {
  readonly kind: 'overlap' | 'order' | 'unfinished';
  readonly detail: string;
}

/**
 * Checks runs triggered in the order of `triggerOrder` (instance ids) against `maxRuns` (1 for
 * SERIAL_WAIT): at no moment more than maxRuns run, and with maxRuns 1 they start in trigger
 * order; every run reached a final state.
 */
export function checkSerialRuns(
  runs: readonly SerialRun[],
  triggerOrder: readonly number[],
  maxRuns = 1,
): SerialProblem[] {
  const problems: SerialProblem[] = [];
  for (const r of runs) {
    if (
      !['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'].includes(r.state) ||
      (r.startMs !== null && r.endMs === null)
    ) {
      problems.push({ kind: 'unfinished', detail: `instance ${r.id} is ${r.state}` });
    }
  }
  const started = runs.filter(
    (r): r is SerialRun & { startMs: number; endMs: number } => r.startMs !== null && r.endMs !== null,
  );
  // Sweep the start/end events; at equal times an end comes first (a run may start the moment
  // the one before it ended).
  const events = started
    .flatMap((r) => [
      { at: r.startMs, delta: 1, id: r.id },
      { at: r.endMs, delta: -1, id: r.id },
    ])
    .sort((a, b) => a.at - b.at || a.delta - b.delta);
  let running = 0;
  const now = new Set<number>();
  for (const e of events) {
    running += e.delta;
    if (e.delta > 0) now.add(e.id);
    else now.delete(e.id);
    if (running > maxRuns) {
      problems.push({
        kind: 'overlap',
        detail: `${running} runs at ${new Date(e.at).toISOString()} (max ${maxRuns}): ${[...now].join(', ')}`,
      });
    }
  }
  if (maxRuns === 1) {
    const byStart = [...started].sort((a, b) => a.startMs - b.startMs).map((r) => r.id);
    const expected = triggerOrder.filter((id) => byStart.includes(id));
    if (byStart.join(',') !== expected.join(',')) {
      problems.push({
        kind: 'order',
        detail: `started in order ${byStart.join(', ')}, triggered in order ${expected.join(', ')}`,
      });
    }
  }
  return problems;
}
