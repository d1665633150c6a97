/**
 * A definition's tasks and edges, indexed for whoever walks them (the parser's checks, the
 * master's engine). Every walk is iterative and linear in tasks + edges: a 100,000-task chain
 * must neither overflow the stack nor take quadratic time.
 */
import type { EdgeDefinition, TaskDefinition } from './definition-types';

export interface WorkflowGraph {
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  /** Direct upstream tasks of each task, in edge order (every task has an entry). */
  readonly upstream: ReadonlyMap<string, readonly string[]>;
  /** Direct downstream tasks of each task, in edge order (every task has an entry). */
  readonly downstream: ReadonlyMap<string, readonly string[]>;
  /**
   * Every task name in a topological order: upstream before downstream; among tasks free at the
   * same time, the order of the definition (so dispatch order is deterministic).
   */
  readonly order: readonly string[];
}

/** Why a graph cannot be built; `cycle` is set when the edges form one (a closed path). */
export class GraphError extends Error {
  constructor(
    message: string,
    readonly cycle?: readonly string[],
  ) {
    super(message);
    this.name = 'GraphError';
  }
}

/**
 * Indexes tasks and edges. Throws GraphError for a duplicate task name, an edge naming an unknown
 * task, or a cycle. A repeated edge counts once.
 */
export function buildWorkflowGraph(
  tasks: readonly TaskDefinition[],
  edges: readonly EdgeDefinition[],
): WorkflowGraph {
  const byName = new Map<string, TaskDefinition>();
  const upstream = new Map<string, string[]>();
  const downstream = new Map<string, string[]>();
  for (const t of tasks) {
    if (byName.has(t.name)) throw new GraphError(`duplicate task name ${JSON.stringify(t.name)}`);
    byName.set(t.name, t);
    upstream.set(t.name, []);
    downstream.set(t.name, []);
  }
  const seen = new Set<string>();
  for (const e of edges) {
    const ups = upstream.get(e.to);
    const downs = downstream.get(e.from);
    if (ups === undefined || downs === undefined) {
      const unknown = downs === undefined ? e.from : e.to;
      throw new GraphError(
        `edge ${JSON.stringify(e.from)} -> ${JSON.stringify(e.to)}: unknown task ${JSON.stringify(unknown)}`,
      );
    }
    // JSON of the pair is an unambiguous key (names may contain any character).
    const key = JSON.stringify([e.from, e.to]);
    if (seen.has(key)) continue;
    seen.add(key);
    ups.push(e.from);
    downs.push(e.to);
  }
  const order = topologicalOrder(
    tasks.map((t) => t.name),
    downstream,
    upstream,
  );
  if (order === null) {
    const cycle = findCycle(
      tasks.map((t) => t.name),
      edges,
    );
    throw new GraphError(
      cycle ? `cycle: ${describeCycle(cycle)}` : 'the edges form a cycle',
      cycle ?? undefined,
    );
  }
  return { tasks: byName, upstream, downstream, order };
}

/** Kahn's algorithm; null when some tasks are on or behind a cycle. */
function topologicalOrder(
  names: readonly string[],
  downstream: ReadonlyMap<string, readonly string[]>,
  upstream: ReadonlyMap<string, readonly string[]>,
): string[] | null {
  const indegree = new Map<string, number>(names.map((n) => [n, upstream.get(n)?.length ?? 0]));
  const order = names.filter((n) => indegree.get(n) === 0);
  // `order` is also the queue: the next task to release is order[head].
  for (let head = 0; head < order.length; head++) {
    for (const d of downstream.get(order[head] ?? '') ?? []) {
      const left = (indegree.get(d) ?? 0) - 1;
      indegree.set(d, left);
      if (left === 0) order.push(d);
    }
  }
  return order.length === names.length ? order : null;
}

/**
 * One cycle of the graph as a closed path (first name repeated at the end), or null for a DAG.
 * Iterative depth-first search; tasks and edges are visited in the order given, so the answer is
 * deterministic. Edges naming unknown tasks are ignored.
 */
export function findCycle(taskNames: readonly string[], edges: readonly EdgeDefinition[]): string[] | null {
  const next = new Map<string, string[]>(taskNames.map((n) => [n, []]));
  for (const e of edges) {
    if (next.has(e.to)) next.get(e.from)?.push(e.to);
  }
  const WHITE = 0;
  const GREY = 1;
  const BLACK = 2;
  const color = new Map<string, number>(taskNames.map((n) => [n, WHITE]));
  const enter = (node: string): PathStep => {
    color.set(node, GREY);
    return { node, successors: next.get(node) ?? [], tried: 0 };
  };
  for (const root of taskNames) {
    if (color.get(root) !== WHITE) continue;
    // The path from root to the current node.
    const path: PathStep[] = [enter(root)];
    for (let top = path.at(-1); top !== undefined; top = path.at(-1)) {
      const to = top.successors[top.tried];
      if (to === undefined) {
        // Every successor tried: the node is done.
        color.set(top.node, BLACK);
        path.pop();
        continue;
      }
      top.tried++;
      const c = color.get(to);
      if (c === GREY) {
        const names = path.map((step) => step.node);
        return [...names.slice(names.indexOf(to)), to];
      }
      if (c === WHITE) path.push(enter(to));
    }
  }
  return null;
}

/** A node on the depth-first path, with how many of its successors were tried so far. */
interface PathStep {
  readonly node: string;
  readonly successors: readonly string[];
  tried: number;
}

/** `a -> b -> a`; a long cycle keeps its ends (a message must stay readable and bounded). */
export function describeCycle(cycle: readonly string[], max = 20): string {
  if (cycle.length <= max) return cycle.join(' -> ');
  const head = cycle.slice(0, max - 3);
  const tail = cycle.slice(-2);
  return `${head.join(' -> ')} -> … ${cycle.length - head.length - tail.length} more … -> ${tail.join(' -> ')}`;
}

/** Every task downstream of `name`, transitively (not `name` itself unless on a cycle). */
export function descendants(graph: WorkflowGraph, name: string): Set<string> {
  const seen = new Set<string>();
  const stack = [...(graph.downstream.get(name) ?? [])];
  for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
    if (seen.has(n)) continue;
    seen.add(n);
    for (const d of graph.downstream.get(n) ?? []) stack.push(d);
  }
  return seen;
}

/**
 * The tasks only reachable through the given ones (DESIGN.md section 9: "a task that is SKIPPED
 * skips every task only reachable through it"): those, other than the given ones, with at least
 * one upstream task and every upstream task given or itself only reachable through the given
 * ones; equivalently, every path from a task without upstream to them passes through a given one.
 * A task that also hangs on another branch (a join) is not among them. Topological order.
 */
export function onlyReachableThrough(graph: WorkflowGraph, names: Iterable<string>): string[] {
  const cut = new Set(names);
  // Everything downstream of the given tasks, in one walk.
  const candidates = new Set<string>();
  const stack = [...cut].flatMap((n) => graph.downstream.get(n) ?? []);
  for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
    if (candidates.has(n)) continue;
    candidates.add(n);
    for (const d of graph.downstream.get(n) ?? []) stack.push(d);
  }
  const result: string[] = [];
  for (const n of graph.order) {
    if (cut.has(n) || !candidates.has(n)) continue;
    const ups = graph.upstream.get(n) ?? [];
    if (ups.length > 0 && ups.every((u) => cut.has(u))) {
      // Processing in topological order, so every upstream has been decided already.
      cut.add(n);
      result.push(n);
    }
  }
  return result;
}
