/**
 * Which pending tasks may start (DESIGN.md invariant 6: never before all its upstream tasks
 * succeeded) and which are skipped (section 9: a task only reachable through SKIPPED tasks is
 * SKIPPED too).
 */
import { priorityRank } from '@porpoise/common';
import type { RunGraph, RunTaskDef, SlotStatus } from './run-state';

/**
 * Items in task-priority order (DESIGN.md section 10), keeping the given order among equals (a
 * stable sort; the graph's order puts upstream tasks first). Without any priority set, the
 * array itself, unsorted.
 */
export function inPriorityOrder<T>(
  items: readonly T[],
  defOf: (item: T) => RunTaskDef | undefined,
): readonly T[] {
  if (items.length < 2 || !items.some((i) => defOf(i)?.priority !== undefined)) return items;
  return [...items].sort((a, b) => priorityRank(defOf(a)?.priority) - priorityRank(defOf(b)?.priority));
}

/** Where an upstream task stands for its downstream tasks. */
export type UpstreamProgress = 'success' | 'skipped' | 'failed' | 'open';

export function progressOf(status: SlotStatus): UpstreamProgress {
  switch (status.kind) {
    case 'ended':
      return status.state === 'SUCCESS' ? 'success' : 'failed';
    case 'skipped':
      return 'skipped';
    case 'pending':
    case 'creating':
    case 'submitted':
    case 'queued':
    case 'unsent':
    case 'dispatching':
    case 'onWorker':
    case 'resolving':
    case 'delayed':
    case 'onMaster':
      return 'open';
  }
}

export interface Startable {
  /** Every upstream task succeeded (or was skipped, with at least one success). */
  readonly ready: string[];
  /** Every upstream task was skipped. */
  readonly skip: string[];
}

/**
 * The pending tasks that start now (highest task priority first, then in the graph's order) and
 * those that are skipped (in the graph's order). A task with
 * a failed upstream task never starts (under CONTINUE it is simply left pending). Skips carry
 * down the whole branch in one pass: the order puts upstream tasks first.
 */
export function startable(
  graph: RunGraph,
  statusOf: (name: string) => SlotStatus | undefined,
  /** The targets a CONDITIONS / SWITCH task that ended did not take: SKIPPED for them. */
  notTaken: (name: string) => readonly string[] = () => [],
): Startable {
  const ready: string[] = [];
  const skip: string[] = [];
  const skipping = new Set<string>();
  const progress = (name: string): UpstreamProgress => {
    if (skipping.has(name)) return 'skipped';
    const s = statusOf(name);
    return s === undefined ? 'open' : progressOf(s);
  };
  for (const name of graph.order) {
    if (statusOf(name)?.kind !== 'pending') continue;
    const ups = graph.upstream.get(name) ?? [];
    // A CONDITIONS task waits for its upstream tasks to end, however they end.
    const anyEnd = graph.tasks.get(name)?.type === 'CONDITIONS';
    let skipped = 0;
    let blocked = false;
    for (const up of ups) {
      const p = notTaken(up).includes(name) ? 'skipped' : progress(up);
      if (p === 'skipped') skipped++;
      else if (p !== 'success' && !(anyEnd && p === 'failed')) {
        blocked = true;
        break;
      }
    }
    if (blocked) continue;
    if (ups.length > 0 && skipped === ups.length) {
      skip.push(name);
      skipping.add(name);
    } else ready.push(name);
  }
  return { ready: [...inPriorityOrder(ready, (name) => graph.tasks.get(name))], skip };
}
