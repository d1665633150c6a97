import { computeSlot, sortAddresses } from '../../src/registry/slot';

describe('command slots', () => {
  it('is the index of this master in the sorted live list', () => {
    const live = ['10.0.0.2:5678', '10.0.0.1:5678', '10.0.0.10:5678'];
    // Plain code-unit order ("0" < ":"), not numeric: what matters is that every master agrees.
    expect(computeSlot(live, '10.0.0.10:5678')).toEqual({ slot: 0, count: 3 });
    expect(computeSlot(live, '10.0.0.1:5678')).toEqual({ slot: 1, count: 3 });
    expect(computeSlot(live, '10.0.0.2:5678')).toEqual({ slot: 2, count: 3 });
  });

  it('gives every master a different slot and covers every id', () => {
    const live = ['b:1', 'a:1', 'c:1', 'a:2'];
    const slots = live.map((m) => computeSlot(live, m)!);
    expect(new Set(slots.map((s) => s.slot)).size).toBe(live.length);
    for (let id = 1; id <= 100; id++) expect(slots.filter((s) => id % s.count === s.slot)).toHaveLength(1);
  });

  it('is undefined for a master that is not in the list (it must not consume)', () => {
    expect(computeSlot(['a:1'], 'b:1')).toBeUndefined();
    expect(computeSlot([], 'b:1')).toBeUndefined();
  });

  it('ignores duplicates and is independent of the input order', () => {
    expect(sortAddresses(['b:1', 'a:1', 'b:1'])).toEqual(['a:1', 'b:1']);
    expect(computeSlot(['b:1', 'a:1', 'b:1'], 'b:1')).toEqual({ slot: 1, count: 2 });
  });
});
