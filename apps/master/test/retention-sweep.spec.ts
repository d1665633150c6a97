import { sweepInBatches, type BatchOutcome } from '../src/retention/retention-sweep';

/** The sweep's sequencing over scripted batch outcomes. */
describe('sweepInBatches', () => {
  const scripted = (outcomes: BatchOutcome[]) => {
    let calls = 0;
    return {
      batch: () => Promise.resolve(outcomes[calls++] ?? { locked: true, deleted: 0 }),
      calls: () => calls,
    };
  };

  it('runs batches until one is not full', async () => {
    const s = scripted([
      { locked: true, deleted: 3 },
      { locked: true, deleted: 3 },
      { locked: true, deleted: 1 },
    ]);
    expect(await sweepInBatches(s.batch, 3, () => true)).toEqual({ deleted: 7, batches: 3, yielded: false });
    expect(s.calls()).toBe(3);
  });

  it('stops at once when another master holds the lock', async () => {
    const s = scripted([
      { locked: true, deleted: 3 },
      { locked: false, deleted: 0 },
      { locked: true, deleted: 3 },
    ]);
    expect(await sweepInBatches(s.batch, 3, () => true)).toEqual({ deleted: 3, batches: 2, yielded: true });
  });

  it('stops when told to (shutdown)', async () => {
    const s = scripted([{ locked: true, deleted: 3 }]);
    let go = true;
    const batch = async () => {
      go = false;
      return s.batch();
    };
    expect(await sweepInBatches(batch, 3, () => go)).toEqual({ deleted: 3, batches: 1, yielded: false });
  });
});
