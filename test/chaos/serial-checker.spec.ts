import { checkSerialRuns, type SerialRun } from './serial-checker';

const run = (id: number, startMs: number | null, endMs: number | null, state = 'SUCCESS'): SerialRun => ({
  id,
  state,
  startMs,
  endMs,
});

describe('checkSerialRuns', () => {
  it('accepts runs one after the other, in trigger order, a start at the very end of the one before included', () => {
    expect(checkSerialRuns([run(1, 0, 10), run(2, 10, 20), run(3, 25, 30)], [1, 2, 3])).toEqual([]);
  });

  it('reports two runs at once', () => {
    expect(checkSerialRuns([run(1, 0, 10), run(2, 5, 20)], [1, 2])).toEqual([
      { kind: 'overlap', detail: expect.stringMatching(/^2 runs at .* \(max 1\): 1, 2$/) },
    ]);
  });

  it('reports a start out of trigger order', () => {
    expect(checkSerialRuns([run(1, 20, 30), run(2, 0, 10)], [1, 2])).toEqual([
      { kind: 'order', detail: 'started in order 2, 1, triggered in order 1, 2' },
    ]);
  });

  it('ignores discarded runs (never started) and reports runs not finished', () => {
    expect(
      checkSerialRuns(
        [run(1, 0, 10), run(2, null, 5, 'STOP'), run(3, 12, null, 'RUNNING_EXECUTION')],
        [1, 2, 3],
      ),
    ).toEqual([{ kind: 'unfinished', detail: 'instance 3 is RUNNING_EXECUTION' }]);
  });

  it('allows maxRuns at once, not more', () => {
    const runs = [run(1, 0, 10), run(2, 1, 10), run(3, 2, 10)];
    expect(checkSerialRuns(runs, [1, 2, 3], 3)).toEqual([]);
    expect(checkSerialRuns(runs, [1, 2, 3], 2).map((p) => p.kind)).toEqual(['overlap']);
  });
});
