import type { EdgeDefinition, TaskDefinition } from './definition-types';
import {
  GraphError,
  buildWorkflowGraph,
  descendants,
  describeCycle,
  findCycle,
  onlyReachableThrough,
  type WorkflowGraph,
} from './workflow-graph';

const e = (from: string, to: string): EdgeDefinition => ({ from, to });
const t = (name: string): TaskDefinition => ({
  name,
  type: 'EMPTY',
  retries: 0,
  retryIntervalMs: 1000,
  timeoutMs: 0,
  workerGroup: 'default',
});
const graph = (names: string, edges: string): WorkflowGraph =>
  buildWorkflowGraph(
    names.split(' ').map(t),
    edges === ''
      ? []
      : edges.split(' ').map((pair) => {
          const [from = '', to = ''] = pair.split('>');
          return e(from, to);
        }),
  );
const chain = (n: number) => {
  const names = Array.from({ length: n }, (_, i) => `t${i}`);
  return { names, edges: names.slice(1).map((name, i) => e(`t${i}`, name)) };
};

describe('findCycle', () => {
  it('is null for a DAG, an empty graph and isolated tasks', () => {
    expect(findCycle([], [])).toBeNull();
    expect(findCycle(['a', 'b', 'c'], [])).toBeNull();
    expect(findCycle(['a', 'b', 'c', 'd'], [e('a', 'b'), e('a', 'c'), e('b', 'd'), e('c', 'd')])).toBeNull();
  });

  it('names the cycle as a closed path', () => {
    expect(findCycle(['a', 'b'], [e('a', 'b'), e('b', 'a')])).toEqual(['a', 'b', 'a']);
    expect(findCycle(['a', 'b', 'c'], [e('a', 'b'), e('b', 'c'), e('c', 'a')])).toEqual(['a', 'b', 'c', 'a']);
  });

  it('finds a cycle that does not include the first task', () => {
    expect(findCycle(['x', 'a', 'b', 'c'], [e('x', 'a'), e('a', 'b'), e('b', 'c'), e('c', 'b')])).toEqual([
      'b',
      'c',
      'b',
    ]);
  });

  it('finds a cycle reached only through an already finished part of the graph', () => {
    expect(findCycle(['a', 'd', 'e', 'f'], [e('a', 'd'), e('e', 'f'), e('f', 'e')])).toEqual(['e', 'f', 'e']);
  });

  it('handles a 100 000-task chain without overflowing the stack', () => {
    const { names, edges } = chain(100_000);
    expect(findCycle(names, edges)).toBeNull();
    const cycle = findCycle(names, [...edges, e('t99999', 't0')]);
    expect(cycle).toHaveLength(100_001);
    expect(cycle?.[0]).toBe('t0');
    expect(cycle?.[100_000]).toBe('t0');
  });
});

describe('describeCycle', () => {
  it('shows a short cycle whole and a long one by its ends', () => {
    expect(describeCycle(['a', 'b', 'a'])).toBe('a -> b -> a');
    const long = [...Array.from({ length: 30 }, (_, i) => `t${i}`), 't0'];
    expect(describeCycle(long)).toBe(`${long.slice(0, 17).join(' -> ')} -> … 12 more … -> t29 -> t0`);
  });
});

describe('buildWorkflowGraph', () => {
  it('indexes upstream and downstream tasks and orders them topologically, stable by definition order', () => {
    // d is first in the definition but depends on b and c.
    const g = graph('d a b c', 'a>b a>c b>d c>d');
    expect(g.order).toEqual(['a', 'b', 'c', 'd']);
    expect(Object.fromEntries(g.upstream)).toEqual({ d: ['b', 'c'], a: [], b: ['a'], c: ['a'] });
    expect(Object.fromEntries(g.downstream)).toEqual({ d: [], a: ['b', 'c'], b: ['d'], c: ['d'] });
    expect(g.tasks.get('a')?.type).toBe('EMPTY');
    // Independent tasks keep the definition's order.
    expect(graph('z y x', '').order).toEqual(['z', 'y', 'x']);
  });

  it('counts a repeated edge once', () => {
    expect(graph('a b', 'a>b a>b').upstream.get('b')).toEqual(['a']);
  });

  it('throws a GraphError for a cycle, an unknown task and a duplicate name', () => {
    const cycle = (() => {
      try {
        graph('a b c', 'a>b b>c c>b');
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(cycle).toBeInstanceOf(GraphError);
    expect(cycle).toMatchObject({ message: 'cycle: b -> c -> b', cycle: ['b', 'c', 'b'] });
    expect(() => graph('a', 'a>x')).toThrow(new GraphError('edge "a" -> "x": unknown task "x"'));
    expect(() => buildWorkflowGraph([t('a'), t('a')], [])).toThrow(new GraphError('duplicate task name "a"'));
  });

  it('orders a 100 000-task chain in linear time', () => {
    const { names, edges } = chain(100_000);
    const g = buildWorkflowGraph([...names].reverse().map(t), edges);
    expect(g.order).toEqual(names);
    expect(descendants(g, 't0').size).toBe(99_999);
    // Skipping the head skips the whole chain.
    expect(onlyReachableThrough(g, ['t0'])).toHaveLength(99_999);
  });
});

describe('descendants', () => {
  it('is every task downstream, transitively', () => {
    const g = graph('a b c d e', 'a>b b>c a>d');
    expect([...descendants(g, 'a')].sort()).toEqual(['b', 'c', 'd']);
    expect(descendants(g, 'c').size).toBe(0);
    expect(descendants(g, 'e').size).toBe(0);
  });
});

describe('onlyReachableThrough', () => {
  it.each([
    ['a chain below the skipped task', 'a b c d', 'a>b b>c c>d', ['b'], ['c', 'd']],
    ['nothing for a task without downstream', 'a b', 'a>b', ['b'], []],
    ['not a join that also hangs on another branch', 'c s f j', 'c>s c>f s>j f>j', ['f'], []],
    [
      'a join when every branch into it is skipped',
      'c s f j k',
      'c>s c>f s>j f>j j>k',
      ['s', 'f'],
      ['j', 'k'],
    ],
    [
      'a diamond below the skipped task, but not what also has an unskipped upstream',
      'x b c d e y',
      'x>b x>c b>d c>d d>e y>e',
      ['x'],
      ['b', 'c', 'd'],
    ],
    ['not the given tasks themselves, even when below each other', 'a b c', 'a>b b>c', ['a', 'b'], ['c']],
    ['nothing for an empty set', 'a b', 'a>b', [], []],
  ])('%s', (_what, names, edges, skipped, expected) => {
    expect(onlyReachableThrough(graph(names, edges), skipped)).toEqual(expected);
  });

  it('answers in topological order', () => {
    const g = graph('s d c b', 's>b b>c c>d');
    expect(onlyReachableThrough(g, ['s'])).toEqual(['b', 'c', 'd']);
  });
});
