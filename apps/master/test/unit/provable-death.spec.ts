import { judgeDeath, type DeathEvidence, type ProbeOutcome } from '../../src/registry/provable-death';

const CONFIRM = 100;
const seen = { key: '/nodes/worker/default/h:1', startTime: 1000, serving: true };
const refusedTwice: DeathEvidence = {
  seen,
  first: 'refused',
  second: 'refused',
  gapMs: CONFIRM,
  current: { startTime: 1000, serving: true },
};
const kind = (e: DeathEvidence) => judgeDeath(e, CONFIRM).kind;

describe('judgeDeath (provable death)', () => {
  it('a port refused twice, the interval apart, with the same registry entry: dead', () => {
    expect(judgeDeath(refusedTwice, CONFIRM)).toEqual({ kind: 'dead' });
    expect(kind({ ...refusedTwice, gapMs: 5 * CONFIRM })).toBe('dead');
  });

  it('a first refusal asks for the confirming probe, nothing more', () => {
    expect(judgeDeath({ seen, first: 'refused' }, CONFIRM)).toEqual({ kind: 'confirm' });
  });

  it.each<ProbeOutcome>(['accepted', 'timeout', 'error'])(
    'never dead when a probe gave %s (a frozen or slow process accepts; silence proves nothing)',
    (outcome) => {
      expect(judgeDeath({ seen, first: outcome }, CONFIRM)).toMatchObject({ kind: 'spared' });
      expect(kind({ ...refusedTwice, second: outcome })).toBe('spared');
      expect(kind({ ...refusedTwice, first: outcome })).toBe('spared');
    },
  );

  it('never dead for a draining (serving=false) node, before or after the probes', () => {
    expect(judgeDeath({ seen: { ...seen, serving: false }, first: 'refused' }, CONFIRM)).toMatchObject({
      kind: 'spared',
      why: expect.stringMatching(/draining/),
    });
    expect(kind({ ...refusedTwice, seen: { ...seen, serving: false } })).toBe('spared');
    expect(kind({ ...refusedTwice, current: { startTime: 1000, serving: false } })).toBe('spared');
  });

  it('not confirmed: a second probe sooner than the interval, or none', () => {
    expect(kind({ ...refusedTwice, gapMs: CONFIRM - 1 })).toBe('spared');
    expect(kind({ ...refusedTwice, gapMs: undefined })).toBe('spared');
  });

  it('a restart on the same address (another start time) or an unreadable entry is not the node probed', () => {
    expect(judgeDeath({ ...refusedTwice, current: { startTime: 2000, serving: true } }, CONFIRM)).toEqual({
      kind: 'spared',
      why: 'a new process registered at that address',
    });
    expect(kind({ ...refusedTwice, current: { startTime: undefined, serving: true } })).toBe('spared');
  });

  it('an entry already gone, or not read after the probes, is left to the registry', () => {
    expect(kind({ ...refusedTwice, current: null })).toBe('spared');
    expect(kind({ ...refusedTwice, current: undefined })).toBe('spared');
  });
});
