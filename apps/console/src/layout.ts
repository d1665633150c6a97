import dagre from '@dagrejs/dagre';
import type { Edge } from './types';

export const NODE_WIDTH = 170;
export const NODE_HEIGHT = 48;

/** Top-left positions of the tasks, left to right in dependency order (dagre's layered layout). */
export function layoutDag(
  names: readonly string[],
  edges: readonly Edge[],
): Map<string, { x: number; y: number }> {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 60, marginx: 10, marginy: 10 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const name of names) g.setNode(name, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const e of edges) if (names.includes(e.from) && names.includes(e.to)) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const positions = new Map<string, { x: number; y: number }>();
  for (const name of names) {
    const n = g.node(name) as { x: number; y: number };
    positions.set(name, { x: n.x - NODE_WIDTH / 2, y: n.y - NODE_HEIGHT / 2 });
  }
  return positions;
}
