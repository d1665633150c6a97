import { WorkerSelector, lowestLoad, type WorkerCandidate } from '../../src/dispatch/worker-selector';

const w = (
  address: string,
  runningTasks: number,
  capacity: number,
  loadAverage = 0,
  recentlyAssigned = 0,
): WorkerCandidate => ({
  address,
  runningTasks,
  capacity,
  loadAverage,
  recentlyAssigned,
});

describe('worker selection', () => {
  it('LOWEST_LOAD picks the lowest runningTasks / capacity', () => {
    const s = new WorkerSelector('LOWEST_LOAD');
    expect(s.select('g', [w('a:1', 4, 8), w('b:1', 3, 4), w('c:1', 1, 8)])?.address).toBe('c:1');
  });

  it('LOWEST_LOAD breaks ties by load average, then by address', () => {
    expect(lowestLoad([w('a:1', 1, 4, 2.5), w('b:1', 2, 8, 0.5)])?.address).toBe('b:1');
    const s = new WorkerSelector('LOWEST_LOAD');
    expect(s.select('g', [w('b:1', 0, 4), w('a:1', 0, 4)])?.address).toBe('a:1');
  });

  it('LOWEST_LOAD counts the tasks this master sent since the last heartbeat', () => {
    const s = new WorkerSelector('LOWEST_LOAD');
    expect(s.select('g', [w('a:1', 0, 4, 0, 3), w('b:1', 1, 4)])?.address).toBe('b:1');
  });

  it('ROUND_ROBIN cycles through the candidates per group', () => {
    const s = new WorkerSelector('ROUND_ROBIN');
    const all = [w('c:1', 0, 1), w('a:1', 9, 1), w('b:1', 0, 1)];
    expect([1, 2, 3, 4].map(() => s.select('g', all)?.address)).toEqual(['a:1', 'b:1', 'c:1', 'a:1']);
    expect(s.select('other', all)?.address).toBe('a:1');
  });

  it('RANDOM picks any candidate', () => {
    const values = [0, 0.5, 0.99];
    const s = new WorkerSelector('RANDOM', () => values.shift()!);
    const all = [w('a:1', 0, 1), w('b:1', 0, 1), w('c:1', 0, 1)];
    expect([1, 2, 3].map(() => s.select('g', all)?.address)).toEqual(['a:1', 'b:1', 'c:1']);
  });

  it('returns undefined without candidates', () => {
    expect(new WorkerSelector('LOWEST_LOAD').select('g', [])).toBeUndefined();
  });
});
