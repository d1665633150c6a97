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
  for (const root of taskNames) {
    if (color.get(root) !== WHITE) continue;
    // The path from root to the current node, with how many successors each has tried.
    const path: string[] = [root];
    const tried: number[] = [0];
    color.set(root, GREY);
    while (path.length > 0) {
      const top = path.length - 1;
      const node = path[top];
      const succ = next.get(node) ?? [];
      if (tried[top] < succ.length) {
        const to = succ[tried[top]++];
        const c = color.get(to);
        if (c === GREY) return [...path.slice(path.indexOf(to)), to];
        if (c === WHITE) {
          color.set(to, GREY);
          path.push(to);
          tried.push(0);
        }
      } else {
        color.set(node, BLACK);
        path.pop();
        tried.pop();
      }
    }
  }
  return null;
}
