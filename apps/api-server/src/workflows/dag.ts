import type { EdgeDefinition } from '@porpoise/common';

/**
 * Pure checks of a workflow's edges against its task names: every edge names two known,
 * distinct tasks, no edge repeats, and the graph has no cycle. Returns the problems found
 * (empty when the graph is a DAG); the cycle check runs only on an otherwise valid edge list.
 */
export function dagProblems(taskNames: readonly string[], edges: readonly EdgeDefinition[]): string[] {
  const known = new Set(taskNames);
  const problems: string[] = [];
  const seen = new Set<string>();
  edges.forEach((edge, i) => {
    const label = `edge ${i} (${JSON.stringify(edge.from)} -> ${JSON.stringify(edge.to)})`;
    for (const end of [edge.from, edge.to]) {
      if (!known.has(end)) problems.push(`${label}: unknown task ${JSON.stringify(end)}`);
    }
    if (edge.from === edge.to) problems.push(`${label}: a task cannot depend on itself`);
    // JSON of the pair is an unambiguous key (names may contain any character).
    const key = JSON.stringify([edge.from, edge.to]);
    if (seen.has(key)) problems.push(`${label}: duplicate edge`);
    seen.add(key);
  });
  if (problems.length > 0) return problems;
  const cycle = findCycle(taskNames, edges);
  return cycle ? [`cycle: ${cycle.join(' -> ')}`] : [];
}

/**
 * One cycle of the graph as a closed path (first name repeated at the end), or null for a
 * DAG. Iterative depth-first search (a long chain must not overflow the stack); tasks and
 * edges are visited in the order given, so the answer is deterministic.
 */
export function findCycle(taskNames: readonly string[], edges: readonly EdgeDefinition[]): string[] | null {
  const next = new Map<string, string[]>(taskNames.map((n) => [n, []]));
  for (const e of edges) next.get(e.from)?.push(e.to);
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
