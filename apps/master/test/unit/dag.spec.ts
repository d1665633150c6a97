import { buildDag, descendants, readyTasks, type TaskProgress } from '../../src/engine/dag';
import { InvalidDefinitionError } from '../../src/master.errors';
import { task } from '../support/tasks';

const diamond = () =>
  buildDag(
    [task('d'), task('c'), task('b'), task('a')],
    [
      { from: 'a', to: 'b' },
      { from: 'a', to: 'c' },
      { from: 'b', to: 'd' },
      { from: 'c', to: 'd' },
    ],
  );

const progressOf =
  (states: Record<string, TaskProgress>) =>
  (name: string): TaskProgress =>
    states[name] ?? 'pending';

describe('DAG readiness', () => {
  it('orders tasks topologically', () => {
    const order = diamond().order;
    expect(order.indexOf('a')).toBeLessThan(order.indexOf('b'));
    expect(order.indexOf('a')).toBeLessThan(order.indexOf('c'));
    expect(order.indexOf('b')).toBeLessThan(order.indexOf('d'));
    expect(order.indexOf('c')).toBeLessThan(order.indexOf('d'));
  });

  it('starts with the roots only', () => {
    expect(readyTasks(diamond(), progressOf({}))).toEqual(['a']);
  });

  it('makes a task ready only when every upstream task succeeded', () => {
    const dag = diamond();
    expect(readyTasks(dag, progressOf({ a: 'active' }))).toEqual([]);
    expect(readyTasks(dag, progressOf({ a: 'success' })).sort()).toEqual(['b', 'c']);
    expect(readyTasks(dag, progressOf({ a: 'success', b: 'success', c: 'active' }))).toEqual([]);
    expect(readyTasks(dag, progressOf({ a: 'success', b: 'success', c: 'success' }))).toEqual(['d']);
  });

  it('never readies a task downstream of a failure', () => {
    const dag = diamond();
    expect(readyTasks(dag, progressOf({ a: 'success', b: 'failed', c: 'success' }))).toEqual([]);
    expect([...descendants(dag, 'b')]).toEqual(['d']);
  });

  it('does not offer a task that is already active or finished', () => {
    const dag = diamond();
    expect(readyTasks(dag, progressOf({ a: 'success', b: 'active', c: 'success' }))).toEqual([]);
  });

  it.each([
    [[], [], /non-empty/],
    [[task('a'), task('a')], [], /duplicate task name "a"/],
    [[task('a')], [{ from: 'a', to: 'x' }], /unknown task "x"/],
    [
      [task('a'), task('b')],
      [
        { from: 'a', to: 'b' },
        { from: 'b', to: 'a' },
      ],
      /cycle/,
    ],
    [[task('a')], [{ from: 'a', to: 'a' }], /depends on itself/],
    [[{ ...task('a'), type: 'PYTHON' }], [], /unknown type "PYTHON"/],
    [[{ ...task('a'), retries: -1 }], [], /retries must be a whole number/],
    [[{ ...task('a'), workerGroup: '' }], [], /workerGroup/],
    [[task('a')], 'nope', /edges must be an array/],
  ])('rejects a bad stored definition (%#)', (tasks, edges, message) => {
    expect(() => buildDag(tasks, edges)).toThrow(InvalidDefinitionError);
    expect(() => buildDag(tasks, edges)).toThrow(message);
  });

  it('ignores a repeated edge', () => {
    const dag = buildDag(
      [task('a'), task('b')],
      [
        { from: 'a', to: 'b' },
        { from: 'a', to: 'b' },
      ],
    );
    expect(dag.upstream.get('b')).toEqual(['a']);
  });
});
