import { planFires, type FirePlanInput } from '../../src/schedule/fire-plan';

const T = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

/** An every-second schedule whose cursor is 00:00:00 and the database's now is `now`. */
const base = (over: Partial<FirePlanInput> = {}): FirePlanInput => ({
  cron: '* * * * * *',
  timezone: 'UTC',
  cursorMs: T('2024-01-01T00:00:00Z'),
  dbNowMs: T('2024-01-01T00:00:00.500Z'),
  startTimeMs: null,
  endTimeMs: null,
  policy: 'RUN_ONCE',
  misfireThresholdMs: 2000,
  maxRunsPerFire: 100,
  maxRecordsPerFire: 1000,
  ...over,
});

/** The plan as `HH:MM:SS run|skip` strings, the new cursor and whether more are due. */
const show = (input: FirePlanInput) => {
  const plan = planFires(input);
  return {
    fires: plan.fires.map((f) => `${iso(f.timeMs).slice(11, 19)} ${f.run ? 'run' : 'skip'}`),
    cursor: iso(plan.cursorNewMs),
    more: plan.more,
  };
};

describe('planFires: misfire policies (every second, threshold 2 s)', () => {
  // Down from 00:00:00 to 00:00:05.5: 00:00:00..00:00:03 are late (< now - 2 s), 04 and 05 on time.
  const outage = { dbNowMs: T('2024-01-01T00:00:05.500Z') };
  it.each([
    ['on time: the one due time runs under every policy', 'RUN_ONCE', {}, ['00:00:00 run']],
    ['on time', 'SKIP', {}, ['00:00:00 run']],
    ['on time', 'RUN_ALL', {}, ['00:00:00 run']],
    [
      'RUN_ONCE after an outage: the latest late time runs, the other late ones are skipped, the on-time ones run',
      'RUN_ONCE',
      outage,
      ['00:00:00 skip', '00:00:01 skip', '00:00:02 skip', '00:00:03 run', '00:00:04 run', '00:00:05 run'],
    ],
    [
      'SKIP after an outage: late times skipped, on-time ones run',
      'SKIP',
      outage,
      ['00:00:00 skip', '00:00:01 skip', '00:00:02 skip', '00:00:03 skip', '00:00:04 run', '00:00:05 run'],
    ],
    [
      'RUN_ALL after an outage: every time runs',
      'RUN_ALL',
      outage,
      ['00:00:00 run', '00:00:01 run', '00:00:02 run', '00:00:03 run', '00:00:04 run', '00:00:05 run'],
    ],
    [
      'RUN_ONCE, everything late (now far past): only the latest runs',
      'RUN_ONCE',
      {
        dbNowMs: T('2024-01-01T00:00:12.500Z'),
        cursorMs: T('2024-01-01T00:00:00Z'),
        endTimeMs: T('2024-01-01T00:00:03Z'),
      },
      ['00:00:00 skip', '00:00:01 skip', '00:00:02 skip', '00:00:03 run'],
    ],
    [
      'a due time exactly at now - threshold is on time',
      'SKIP',
      { dbNowMs: T('2024-01-01T00:00:02Z') },
      ['00:00:00 run', '00:00:01 run', '00:00:02 run'],
    ],
  ] as const)('%s (%s)', (_what, policy, over, fires) => {
    expect(show(base({ policy, ...over })).fires).toEqual(fires);
  });

  it('moves the cursor to the first time not handled', () => {
    expect(show(base({ dbNowMs: T('2024-01-01T00:00:05.500Z') }))).toMatchObject({
      cursor: '2024-01-01T00:00:06.000Z',
      more: false,
    });
  });
});

describe('planFires: caps', () => {
  const longOutage = { dbNowMs: T('2024-01-01T00:01:00.500Z') }; // 61 due times, 58 of them late

  it('RUN_ALL runs at most maxRunsPerFire per fire, oldest first; the cursor stops at the next', () => {
    expect(show(base({ policy: 'RUN_ALL', maxRunsPerFire: 10, ...longOutage }))).toEqual({
      fires: Array.from({ length: 10 }, (_, i) => `00:00:0${i} run`),
      cursor: '2024-01-01T00:00:10.000Z',
      more: true,
    });
  });

  it('RUN_ONCE in chunks: a chunk whose every late time has a later late one runs nothing', () => {
    const firstChunk = show(base({ maxRecordsPerFire: 20, ...longOutage }));
    expect(firstChunk.fires.every((f) => f.endsWith('skip'))).toBe(true);
    expect(firstChunk).toMatchObject({ cursor: '2024-01-01T00:00:20.000Z', more: true });
    // The last chunk holds the latest late time (00:00:58) and the on-time ones.
    const last = show(base({ maxRecordsPerFire: 20, cursorMs: T('2024-01-01T00:00:41Z'), ...longOutage }));
    expect(last.fires.filter((f) => f.endsWith('run'))).toEqual([
      '00:00:58 run',
      '00:00:59 run',
      '00:01:00 run',
    ]);
    expect(last).toMatchObject({ cursor: '2024-01-01T00:01:01.000Z', more: false });
  });

  it('RUN_ONCE: a chunk that ends on the latest late time runs it', () => {
    // 00:00:40 .. 00:00:58 (19 times, all late) then 00:00:59 on time: chunk of 19 ends at 58.
    const plan = show(base({ maxRecordsPerFire: 19, cursorMs: T('2024-01-01T00:00:40Z'), ...longOutage }));
    expect(plan.fires.at(-1)).toBe('00:00:58 run');
    expect(plan.fires.filter((f) => f.endsWith('run'))).toHaveLength(1);
    expect(plan.more).toBe(true);
  });
});

describe('planFires: startTime and endTime', () => {
  it('runs nothing after endTime; the cursor goes past it (never due again)', () => {
    const plan = show(
      base({
        policy: 'RUN_ALL',
        dbNowMs: T('2024-01-01T00:00:05.500Z'),
        endTimeMs: T('2024-01-01T00:00:02Z'),
      }),
    );
    expect(plan).toEqual({
      fires: ['00:00:00 run', '00:00:01 run', '00:00:02 run'],
      cursor: '2024-01-01T00:00:03.000Z',
      more: false,
    });
  });

  it('passes over times before startTime without a record', () => {
    const plan = show(
      base({
        policy: 'RUN_ALL',
        dbNowMs: T('2024-01-01T00:00:03.500Z'),
        startTimeMs: T('2024-01-01T00:00:02Z'),
      }),
    );
    expect(plan.fires).toEqual(['00:00:02 run', '00:00:03 run']);
  });

  it('a cursor off the cron grid (set by hand) is itself the first fire time', () => {
    const plan = show(
      base({
        cron: '0 0 1 1 *',
        cursorMs: T('2024-03-01T10:00:00.250Z'),
        dbNowMs: T('2024-03-01T10:00:01Z'),
      }),
    );
    expect(plan).toEqual({ fires: ['10:00:00 run'], cursor: '2025-01-01T00:00:00.000Z', more: false });
  });
});

/**
 * Daylight saving time, as the `cron` package (4.4.0) computes it: pinned, so that an upgrade
 * that changes it fails here. Each row enumerates the fire times in a window with RUN_ALL.
 */
describe('planFires: DST (cron 4.4.0 semantics)', () => {
  const fireTimes = (cron: string, timezone: string, from: string, to: string) =>
    planFires(
      base({
        cron,
        timezone,
        policy: 'RUN_ALL',
        cursorMs: Date.parse(from),
        dbNowMs: Date.parse(to),
        misfireThresholdMs: 7 * 86_400_000,
      }),
    ).fires.map((f) => iso(f.timeMs));

  it.each([
    [
      'Berlin spring forward (2024-03-31): 02:30 does not exist; it fires once, at 01:00Z = 03:00 CEST (not 03:30)',
      '30 2 * * *',
      'Europe/Berlin',
      '2024-03-30T01:30:00Z',
      '2024-04-01T12:00:00Z',
      ['2024-03-30T01:30:00.000Z', '2024-03-31T01:00:00.000Z', '2024-04-01T00:30:00.000Z'],
    ],
    [
      'Berlin fall back (2024-10-27): 02:30 happens twice; it fires once, at the first (00:30Z, CEST)',
      '30 2 * * *',
      'Europe/Berlin',
      '2024-10-26T00:30:00Z',
      '2024-10-28T12:00:00Z',
      ['2024-10-26T00:30:00.000Z', '2024-10-27T00:30:00.000Z', '2024-10-28T01:30:00.000Z'],
    ],
    [
      'Berlin fall back, hourly: 02:00 CEST and 02:00 CET both fire (every real hour)',
      '0 * * * *',
      'Europe/Berlin',
      '2024-10-26T23:00:00Z',
      '2024-10-27T02:00:00Z',
      [
        '2024-10-26T23:00:00.000Z',
        '2024-10-27T00:00:00.000Z',
        '2024-10-27T01:00:00.000Z',
        '2024-10-27T02:00:00.000Z',
      ],
    ],
    [
      'New York fall back (2024-11-03): */30 in hour 1 fires 01:00 and 01:30 EDT only',
      '*/30 1 * * *',
      'America/New_York',
      '2024-11-03T05:00:00Z',
      '2024-11-03T12:00:00Z',
      ['2024-11-03T05:00:00.000Z', '2024-11-03T05:30:00.000Z'],
    ],
  ] as const)('%s', (_what, cron, timezone, from, to, expected) => {
    expect(fireTimes(cron, timezone, from, to)).toEqual(expected);
  });
});
