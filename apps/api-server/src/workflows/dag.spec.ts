import { dagProblems, findCycle } from './dag';

const e = (from: string, to: string) => ({ from, to });

describe('findCycle', () => {
  it('is null for a DAG, an empty graph and isolated tasks', () => {
    expect(findCycle([], [])).toBeNull();
    expect(findCycle(['a', 'b', 'c'], [])).toBeNull();
    // Diamond: a -> b, a -> c, b -> d, c -> d
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
    // d is explored (black) from a; the cycle e <-> f hangs off d and is found from root 'e'.
    const names = ['a', 'd', 'e', 'f'];
    expect(findCycle(names, [e('a', 'd'), e('e', 'f'), e('f', 'e')])).toEqual(['e', 'f', 'e']);
  });

  it('handles a 100 000-task chain without overflowing the stack', () => {
    const names = Array.from({ length: 100_000 }, (_, i) => `t${i}`);
    const edges = names.slice(1).map((n, i) => e(`t${i}`, n));
    expect(findCycle(names, edges)).toBeNull();
    const cycle = findCycle(names, [...edges, e('t99999', 't0')]);
    expect(cycle).toHaveLength(100_001);
    expect(cycle?.[0]).toBe('t0');
    expect(cycle?.[100_000]).toBe('t0');
  });
});

describe('dagProblems', () => {
  it('accepts a valid DAG', () => {
    expect(dagProblems(['a', 'b'], [e('a', 'b')])).toEqual([]);
  });

  it('names every unknown task, self edge and duplicate edge', () => {
    expect(
      dagProblems(['a', 'b'], [e('a', 'zzz'), e('b', 'b'), e('a', 'b'), e('a', 'b'), e('q', 'a')]),
    ).toEqual([
      'edge 0 ("a" -> "zzz"): unknown task "zzz"',
      'edge 1 ("b" -> "b"): a task cannot depend on itself',
      'edge 3 ("a" -> "b"): duplicate edge',
      'edge 4 ("q" -> "a"): unknown task "q"',
    ]);
  });

  it('reports a cycle only when the edges are otherwise valid', () => {
    expect(dagProblems(['a', 'b'], [e('a', 'b'), e('b', 'a')])).toEqual(['cycle: a -> b -> a']);
    expect(dagProblems(['a', 'b'], [e('a', 'b'), e('b', 'a'), e('a', 'x')])).toEqual([
      'edge 2 ("a" -> "x"): unknown task "x"',
    ]);
  });

  it('does not confuse names that contain the separator', () => {
    // "a,b" -> "c" and "a" -> "b,c" would collide under a naive "from,to" key.
    expect(dagProblems(['a,b', 'c', 'a', 'b,c'], [e('a,b', 'c'), e('a', 'b,c')])).toEqual([]);
  });
});
