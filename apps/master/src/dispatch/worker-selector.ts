/**
 * Worker selection (DESIGN.md section 6). The strategy is chosen in code through
 * MasterOptions.workerSelection (MasterModule.forRoot's second argument); LOWEST_LOAD is the
 * default.
 * - LOWEST_LOAD: lowest (runningTasks + tasks this master sent since that heartbeat) / capacity,
 *   then lowest loadAverage, then address (deterministic). Counting our own recent dispatches
 *   keeps a burst of ready tasks from piling onto the worker that looked idlest a second ago.
 * - RANDOM: uniform among the candidates.
 * - ROUND_ROBIN: the next candidate after the previous pick of this group, in address order.
 */
export type WorkerSelectionStrategy = 'LOWEST_LOAD' | 'RANDOM' | 'ROUND_ROBIN';

export interface WorkerCandidate {
  readonly address: string;
  readonly runningTasks: number;
  readonly capacity: number;
  readonly loadAverage: number;
  /** Tasks this master dispatched to it since its last heartbeat. */
  readonly recentlyAssigned: number;
}

export class WorkerSelector {
  private readonly cursors = new Map<string, number>();

  constructor(
    private readonly strategy: WorkerSelectionStrategy,
    private readonly random: () => number = Math.random,
  ) {}

  /** Picks one of candidates (already filtered to live, serving, untried workers of the group). */
  select(group: string, candidates: readonly WorkerCandidate[]): WorkerCandidate | undefined {
    if (candidates.length === 0) return undefined;
    const ordered = [...candidates].sort((a, b) =>
      a.address < b.address ? -1 : a.address > b.address ? 1 : 0,
    );
    switch (this.strategy) {
      case 'RANDOM':
        return ordered[Math.min(ordered.length - 1, Math.floor(this.random() * ordered.length))];
      case 'ROUND_ROBIN': {
        const next = ((this.cursors.get(group) ?? -1) + 1) % ordered.length;
        this.cursors.set(group, next);
        return ordered[next];
      }
      case 'LOWEST_LOAD':
        return lowestLoad(ordered);
    }
  }
}

export function loadOf(c: WorkerCandidate): number {
  return (c.runningTasks + c.recentlyAssigned) / Math.max(1, c.capacity);
}

export function lowestLoad(candidates: readonly WorkerCandidate[]): WorkerCandidate | undefined {
  let best: WorkerCandidate | undefined;
  for (const c of candidates) {
    if (!best) {
      best = c;
      continue;
    }
    const d = loadOf(c) - loadOf(best);
    if (d < 0 || (d === 0 && c.loadAverage < best.loadAverage)) best = c;
  }
  return best;
}
