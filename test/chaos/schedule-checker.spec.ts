/**
 * The schedule checker must really fail on a broken history: a clean synthetic history passes,
 * and each way of breaking "every fire time exactly one run" is reported under its kind.
 */
import {
  checkSchedule,
  fireTimesBetween,
  parseScheduleWitness,
  type ScheduleHistory,
  type ScheduleViolationKind,
} from './schedule-checker';

const T0 = Date.parse('2024-06-01T10:00:00Z');
const S = (n: number) => T0 + n * 1000;

/** Every second from T0 to T0 + 9 s, each run once by instance 100 + n, witnessed. */
function clean(over: Partial<ScheduleHistory> = {}): ScheduleHistory {
  const n = [...Array(10).keys()];
  return {
    schedule: { cron: '* * * * * *', timezone: 'UTC', misfirePolicy: 'RUN_ALL' },
    cutoffMs: S(9),
    ledger: n.map((i) => ({ fireMs: S(i), outcome: 'FIRED' as const, instanceId: 100 + i })),
    runs: n.map((i) => ({ id: 100 + i, scheduleMs: S(i), commandType: 'SCHEDULER', state: 'SUCCESS' })),
    witness: n.map((i) => ({ instanceId: 100 + i, scheduleMs: S(i) })),
    requireFinal: true,
    ...over,
  };
}

const kinds = (h: ScheduleHistory): ScheduleViolationKind[] => [
  ...new Set(checkSchedule(h).map((v) => v.kind)),
];

describe('schedule checker', () => {
  it('passes a clean history', () => {
    expect(checkSchedule(clean())).toEqual([]);
  });

  it('passes a RUN_ONCE history with skipped misfires', () => {
    const h = clean({ schedule: { cron: '* * * * * *', timezone: 'UTC', misfirePolicy: 'RUN_ONCE' } });
    const ledger = h.ledger.map((e, i) =>
      i >= 3 && i <= 5 ? { ...e, outcome: 'MISFIRE_SKIPPED' as const, instanceId: null } : e,
    );
    const runs = h.runs.filter((r) => r.id < 103 || r.id > 105);
    expect(
      checkSchedule({
        ...h,
        ledger,
        runs,
        witness: h.witness.filter((w) => runs.some((r) => r.id === w.instanceId)),
      }),
    ).toEqual([]);
  });

  it.each<[string, (h: ScheduleHistory) => Partial<ScheduleHistory>, ScheduleViolationKind[]]>([
    [
      'a fire time with no ledger row and no run (a gap)',
      (h) => ({
        ledger: h.ledger.filter((e) => e.fireMs !== S(4)),
        runs: h.runs.filter((r) => r.scheduleMs !== S(4)),
        witness: h.witness.filter((w) => w.scheduleMs !== S(4)),
      }),
      ['gap'],
    ],
    ['nothing after a point up to the cutoff (a gap at the end)', () => ({ cutoffMs: S(12) }), ['gap']],
    [
      'a FIRED row whose run is missing',
      (h) => ({
        runs: h.runs.filter((r) => r.id !== 105),
        witness: h.witness.filter((w) => w.instanceId !== 105),
      }),
      ['gap'],
    ],
    [
      'two runs for one fire time (a duplicate)',
      (h) => ({
        runs: [...h.runs, { id: 200, scheduleMs: S(3), commandType: 'SCHEDULER', state: 'SUCCESS' }],
        witness: [...h.witness, { instanceId: 200, scheduleMs: S(3) }],
      }),
      ['duplicate'],
    ],
    [
      'two ledger rows for one fire time',
      (h) => ({ ledger: [...h.ledger, { fireMs: S(2), outcome: 'FIRED', instanceId: 102 }] }),
      ['duplicate'],
    ],
    [
      'a run off the cron grid',
      (h) => ({
        runs: [...h.runs, { id: 201, scheduleMs: S(3) + 500, commandType: 'SCHEDULER', state: 'SUCCESS' }],
        witness: [...h.witness, { instanceId: 201, scheduleMs: S(3) + 500 }],
      }),
      ['off-grid'],
    ],
    ['a run before startTime', (h) => ({ schedule: { ...h.schedule, startMs: S(1) } }), ['out-of-bounds']],
    ['a run after endTime', (h) => ({ schedule: { ...h.schedule, endMs: S(8) } }), ['out-of-bounds']],
    [
      'a skipped time under RUN_ALL',
      (h) => ({
        ledger: h.ledger.map((e) =>
          e.fireMs === S(6) ? { ...e, outcome: 'MISFIRE_SKIPPED', instanceId: null } : e,
        ),
        runs: h.runs.filter((r) => r.id !== 106),
        witness: h.witness.filter((w) => w.instanceId !== 106),
      }),
      ['not-run'],
    ],
    [
      'a run that never ended',
      (h) => ({ runs: h.runs.map((r) => (r.id === 107 ? { ...r, state: 'RUNNING_EXECUTION' } : r)) }),
      ['wrong-run'],
    ],
    [
      'a run that is not SCHEDULER',
      (h) => ({ runs: h.runs.map((r) => (r.id === 107 ? { ...r, commandType: 'START_PROCESS' } : r)) }),
      ['wrong-run'],
    ],
    [
      'a successful run whose task left no witness',
      (h) => ({ witness: h.witness.filter((w) => w.instanceId !== 101) }),
      ['wrong-run'],
    ],
    [
      'a task that saw another schedule time',
      (h) => ({ witness: h.witness.map((w) => (w.instanceId === 102 ? { ...w, scheduleMs: S(7) } : w)) }),
      ['wrong-witness'],
    ],
  ])('reports %s', (_what, change, expected) => {
    const h = clean();
    expect(kinds({ ...h, ...change(h) })).toEqual(expected);
  });

  it('enumerates fire times inclusively, in the time zone', () => {
    expect(
      fireTimesBetween(
        { cron: '0 * * * *', timezone: 'Europe/Berlin', misfirePolicy: 'RUN_ALL' },
        Date.parse('2024-10-27T00:00:00Z'),
        Date.parse('2024-10-27T02:00:00Z'),
      ).map((t) => new Date(t).toISOString()),
    ).toEqual(['2024-10-27T00:00:00.000Z', '2024-10-27T01:00:00.000Z', '2024-10-27T02:00:00.000Z']);
  });

  it('parses the witness lines of the scheduled task', () => {
    expect(
      parseScheduleWitness('sched 12 2024-06-01T10:00:01.000Z\nnoise\nsched 13 2024-06-01T10:00:02.000Z\n'),
    ).toEqual([
      { instanceId: 12, scheduleMs: S(1) },
      { instanceId: 13, scheduleMs: S(2) },
    ]);
  });
});
