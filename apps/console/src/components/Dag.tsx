import { Background, Controls, MarkerType, ReactFlow, type Edge as FlowEdge, type Node } from '@xyflow/react';
import { useMemo } from 'react';
import { layoutDag, NODE_HEIGHT, NODE_WIDTH } from '../layout';
import type { Edge, TaskDefinition } from '../types';

export interface DagProps {
  tasks: readonly Pick<TaskDefinition, 'name' | 'type'>[];
  edges: readonly Edge[];
  /** A task's state (the latest attempt's), which colours its node; none: not started. */
  states?: ReadonlyMap<string, string>;
  /** Names drawn as the problem (a validation message that names them). */
  flagged?: ReadonlySet<string>;
  selected?: string;
  onSelect?: (name: string) => void;
}

/** The workflow's DAG, laid out automatically; nodes carry data-state for styling and tests. */
export function Dag({ tasks, edges, states, flagged, selected, onSelect }: DagProps) {
  // A new shape (tasks or edges changed while editing) is laid out and fitted anew; a new state
  // only recolours the nodes.
  const shape = useMemo(
    () => JSON.stringify([tasks.map((t) => t.name), edges.map((e) => [e.from, e.to])]),
    [tasks, edges],
  );
  const { nodes, flowEdges } = useMemo(() => {
    const names = tasks.map((t) => t.name);
    const positions = layoutDag(names, edges);
    const nodes: Node[] = tasks.map((t) => {
      const state = states?.get(t.name) ?? 'NOT_STARTED';
      const classes = ['dag-node', `state-${state}`];
      if (flagged?.has(t.name)) classes.push('flagged');
      if (selected === t.name) classes.push('selected-task');
      return {
        id: t.name,
        position: positions.get(t.name) ?? { x: 0, y: 0 },
        data: {
          label: (
            <div
              data-testid={`dag-node-${t.name}`}
              data-state={state}
              title={`${t.name} (${t.type}): ${state}`}
            >
              <strong>{t.name}</strong>
              <span className="dag-node-sub">{states ? state.replace(/_/g, ' ').toLowerCase() : t.type}</span>
            </div>
          ),
        },
        className: classes.join(' '),
        width: NODE_WIDTH,
        height: NODE_HEIGHT,
        sourcePosition: 'right' as Node['sourcePosition'],
        targetPosition: 'left' as Node['targetPosition'],
        connectable: false,
        draggable: false,
      };
    });
    const flowEdges: FlowEdge[] = edges.map((e) => ({
      id: `${e.from}->${e.to}`,
      source: e.from,
      target: e.to,
      animated: states?.get(e.from) === 'RUNNING_EXECUTION',
      markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16 },
    }));
    return { nodes, flowEdges };
  }, [tasks, edges, states, flagged, selected]);

  return (
    <div className="dag" data-testid="dag">
      <ReactFlow
        key={shape}
        nodes={nodes}
        edges={flowEdges}
        fitView
        fitViewOptions={{ maxZoom: 1.1, padding: 0.15 }}
        nodesConnectable={false}
        nodesDraggable={false}
        elementsSelectable={onSelect !== undefined}
        onNodeClick={(_e, node) => onSelect?.(node.id)}
        proOptions={{ hideAttribution: true }}
        minZoom={0.2}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
