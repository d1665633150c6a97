import { TASK_TYPES, type EdgeDefinition, type TaskDefinition } from '@porpoise/common';
import { InvalidDefinitionError } from '../master.errors';

/** A workflow version's tasks and edges, indexed for the engine. */
export interface Dag {
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  readonly upstream: ReadonlyMap<string, readonly string[]>;
  readonly downstream: ReadonlyMap<string, readonly string[]>;
  /** Task names in a topological order (dispatch order among tasks ready together). */
  readonly order: readonly string[];
}

/**
 * Where a task stands for readiness purposes:
 * - pending: must (still) run and has no live attempt;
 * - active: an attempt exists that is not final (created, dispatched, running, waiting to retry);
 * - success / failed: its current attempt is final.
 */
export type TaskProgress = 'pending' | 'active' | 'success' | 'failed';

const nonNegativeInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/**
 * Builds and re-validates a stored definition (jsonb read from the database is a boundary too:
 * the API validated it when it was written, but a master must not crash or loop on a bad row).
 */
export function buildDag(tasksJson: unknown, edgesJson: unknown): Dag {
  if (!Array.isArray(tasksJson) || tasksJson.length === 0) {
    throw new InvalidDefinitionError('tasks must be a non-empty array');
  }
  if (!Array.isArray(edgesJson)) throw new InvalidDefinitionError('edges must be an array');
  const tasks = new Map<string, TaskDefinition>();
  tasksJson.forEach((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null) {
      throw new InvalidDefinitionError(`tasks[${i}] is not an object`);
    }
    const t = raw as Record<string, unknown>;
    if (typeof t.name !== 'string' || t.name === '') {
      throw new InvalidDefinitionError(`tasks[${i}].name is missing`);
    }
    if (tasks.has(t.name)) throw new InvalidDefinitionError(`duplicate task name ${JSON.stringify(t.name)}`);
    if (!(TASK_TYPES as readonly unknown[]).includes(t.type)) {
      throw new InvalidDefinitionError(`task ${t.name}: unknown type ${JSON.stringify(t.type)}`);
    }
    if (typeof t.command !== 'string') {
      throw new InvalidDefinitionError(`task ${t.name}: command must be a string`);
    }
    for (const field of ['retries', 'retryIntervalMs', 'timeoutMs'] as const) {
      if (!nonNegativeInt(t[field])) {
        throw new InvalidDefinitionError(`task ${t.name}: ${field} must be a whole number >= 0`);
      }
    }
    if (typeof t.workerGroup !== 'string' || t.workerGroup === '') {
      throw new InvalidDefinitionError(`task ${t.name}: workerGroup must be a non-empty string`);
    }
    tasks.set(t.name, t as unknown as TaskDefinition);
  });

  const upstream = new Map<string, string[]>([...tasks.keys()].map((n) => [n, []]));
  const downstream = new Map<string, string[]>([...tasks.keys()].map((n) => [n, []]));
  edgesJson.forEach((raw: unknown, i) => {
    const e = raw as Partial<EdgeDefinition> | null;
    if (typeof e !== 'object' || e === null || typeof e.from !== 'string' || typeof e.to !== 'string') {
      throw new InvalidDefinitionError(`edges[${i}] must be { from, to }`);
    }
    if (!tasks.has(e.from)) {
      throw new InvalidDefinitionError(`edges[${i}]: unknown task ${JSON.stringify(e.from)}`);
    }
    if (!tasks.has(e.to)) {
      throw new InvalidDefinitionError(`edges[${i}]: unknown task ${JSON.stringify(e.to)}`);
    }
    if (e.from === e.to) throw new InvalidDefinitionError(`edges[${i}]: ${e.from} depends on itself`);
    const ups = upstream.get(e.to)!;
    if (!ups.includes(e.from)) {
      ups.push(e.from);
      downstream.get(e.from)!.push(e.to);
    }
  });

  // Kahn's algorithm: also proves there is no cycle.
  const indegree = new Map([...upstream].map(([n, ups]) => [n, ups.length]));
  const queue = [...tasks.keys()].filter((n) => indegree.get(n) === 0);
  const order: string[] = [];
  while (queue.length > 0) {
    const n = queue.shift()!;
    order.push(n);
    for (const d of downstream.get(n)!) {
      const left = indegree.get(d)! - 1;
      indegree.set(d, left);
      if (left === 0) queue.push(d);
    }
  }
  if (order.length !== tasks.size) throw new InvalidDefinitionError('the edges form a cycle');
  return { tasks, upstream, downstream, order };
}

/**
 * The tasks that may start now: pending, with every upstream task succeeded (DESIGN.md
 * invariant 6). Tasks downstream of a failed task therefore never become ready.
 */
export function readyTasks(dag: Dag, progress: (name: string) => TaskProgress): string[] {
  return dag.order.filter(
    (name) => progress(name) === 'pending' && dag.upstream.get(name)!.every((u) => progress(u) === 'success'),
  );
}

/** Every task downstream of name (transitively), for messages and tests. */
export function descendants(dag: Dag, name: string): Set<string> {
  const seen = new Set<string>();
  const stack = [...dag.downstream.get(name)!];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...dag.downstream.get(n)!);
  }
  return seen;
}
