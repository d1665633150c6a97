import { CronTime } from 'cron';
import { fireTimes } from './fire-times';

/** The reference: cron's own getNextDateFrom, one step at a time (what a master fires). */
function byCron(cron: string, timezone: string, start: Date, end: Date): string[] {
  const time = new CronTime(cron, timezone);
  const out: string[] = [];
  let prev = new Date(start.getTime() - 1);
  for (;;) {
    const next = time.getNextDateFrom(prev, timezone).toJSDate();
    if (next.getTime() > end.getTime()) return out;
    out.push(next.toISOString());
    prev = next;
  }
}

function iso(cron: string, timezone: string, start: string, end: string, limit = 10_000): string[] {
  const found = fireTimes(cron, timezone, new Date(start), new Date(end), limit);
  if (found.kind !== 'times') throw new Error(`too many: about ${found.estimate}`);
  return found.times.map((t) => t.toISOString());
}

describe('fireTimes', () => {
  it('includes both bounds', () => {
    expect(iso('0 0 * * *', 'UTC', '2024-01-01T00:00:00Z', '2024-01-03T00:00:00Z')).toEqual([
      '2024-01-01T00:00:00.000Z',
      '2024-01-02T00:00:00.000Z',
      '2024-01-03T00:00:00.000Z',
    ]);
    // One millisecond inside on each side leaves the bounds' own times out.
    expect(iso('0 0 * * *', 'UTC', '2024-01-01T00:00:00.001Z', '2024-01-02T23:59:59.999Z')).toEqual([
      '2024-01-02T00:00:00.000Z',
    ]);
    expect(iso('0 0 * * *', 'UTC', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')).toEqual([
      '2024-01-01T00:00:00.000Z',
    ]);
    expect(iso('0 0 * * *', 'UTC', '2024-01-01T01:00:00Z', '2024-01-01T23:00:00Z')).toEqual([]);
  });

  it('fires in the time zone: midnight in Berlin is 23:00 or 22:00 UTC', () => {
    expect(iso('0 0 * * *', 'Europe/Berlin', '2024-03-29T23:00:00Z', '2024-04-01T22:00:00Z')).toEqual([
      '2024-03-29T23:00:00.000Z',
      '2024-03-30T23:00:00.000Z',
      '2024-03-31T22:00:00.000Z',
      '2024-04-01T22:00:00.000Z',
    ]);
  });

  it.each([
    // Spring forward: 02:30 does not exist on 2024-03-31 in Berlin; cron fires at 03:00 CEST.
    ['30 2 * * *', 'Europe/Berlin', '2024-03-29T00:00:00Z', '2024-04-02T00:00:00Z'],
    // Fall back: 02:30 happens twice on 2024-10-27; cron fires once.
    ['30 2 * * *', 'Europe/Berlin', '2024-10-25T00:00:00Z', '2024-10-29T00:00:00Z'],
    // Every hour across the fall-back: both 02:00s.
    ['0 * * * *', 'Europe/Berlin', '2024-10-26T20:00:00Z', '2024-10-27T06:00:00Z'],
    ['0 * * * *', 'Europe/Berlin', '2024-03-30T20:00:00Z', '2024-03-31T06:00:00Z'],
    ['*/30 1 * * *', 'America/New_York', '2024-11-02T00:00:00Z', '2024-11-05T00:00:00Z'],
    ['*/20 * * * *', 'America/New_York', '2024-03-09T00:00:00Z', '2024-03-11T12:00:00Z'],
    ['0 0 * * *', 'Australia/Lord_Howe', '2024-03-30T00:00:00Z', '2024-04-12T00:00:00Z'],
    ['15 2 * * *', 'Australia/Lord_Howe', '2024-09-30T00:00:00Z', '2024-10-12T00:00:00Z'],
    ['0 9 * * MON-FRI', 'Asia/Kolkata', '2024-01-01T00:00:00Z', '2024-03-01T00:00:00Z'],
    ['0 0 1,15 * 1', 'UTC', '2024-01-01T00:00:00Z', '2024-06-01T00:00:00Z'],
    ['0 0 29 2 *', 'UTC', '2020-01-01T00:00:00Z', '2028-03-01T00:00:00Z'],
    ['0 0 31 * *', 'Europe/London', '2024-01-01T00:00:00Z', '2024-12-31T23:59:59Z'],
    ['*/7 */5 * * * *', 'Europe/Berlin', '2024-10-27T00:30:00Z', '2024-10-27T01:30:00Z'],
    ['0 30 1 * * *', 'Europe/London', '2024-03-01T00:00:00Z', '2024-11-30T00:00:00Z'],
  ])('matches cron getNextDateFrom for %s in %s', (cron, timezone, start, end) => {
    const expected = byCron(cron, timezone, new Date(start), new Date(end));
    expect(expected.length).toBeGreaterThan(0);
    expect(iso(cron, timezone, start, end)).toEqual(expected);
  });

  it('matches cron on a year of random expressions in DST zones', () => {
    // A fixed pseudo-random sequence: the test is the same every time.
    let seed = 11;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 20; i++) {
      const cron = `${rnd(60)} ${rnd(3) === 0 ? '*/' + (1 + rnd(6)) : rnd(24)} ${rnd(4) === 0 ? 1 + rnd(28) : '*'} * ${rnd(4) === 0 ? rnd(7) : '*'}`;
      const timezone = ['Europe/Berlin', 'America/New_York', 'Australia/Sydney', 'UTC'][rnd(4)] ?? 'UTC';
      const start = new Date(Date.UTC(2024, rnd(12), 1 + rnd(28), rnd(24)));
      const end = new Date(start.getTime() + 60 * 86_400_000);
      expect({ cron, timezone, times: iso(cron, timezone, start.toISOString(), end.toISOString()) }).toEqual({
        cron,
        timezone,
        times: byCron(cron, timezone, start, end),
      });
    }
  });

  it('stops past the limit with an estimate of the total', () => {
    const found = fireTimes(
      '* * * * *',
      'UTC',
      new Date('2024-01-01T00:00:00Z'),
      new Date('2024-12-31T00:00:00Z'),
      100,
    );
    expect(found.kind).toBe('tooMany');
    // 365 days of minutes, 366 * 1440 - 1439 = 525,601 minutes from the first to the last.
    expect(found.kind === 'tooMany' && found.estimate).toBe(525_601);
  });

  it('enumerates 10,000 daily times quickly enough for a request (no timing asserted: it returns)', () => {
    const found = fireTimes(
      '0 0 * * *',
      'Europe/Berlin',
      new Date('1990-01-01T00:00:00Z'),
      new Date('2017-05-19T00:00:00Z'),
      10_000,
    );
    expect(found.kind === 'times' && found.times.length).toBe(10_000);
  });

  it('returns nothing for an expression that never fires in the range', () => {
    expect(iso('0 0 30 2 *', 'UTC', '2024-01-01T00:00:00Z', '2026-01-01T00:00:00Z')).toEqual([]);
  });
});
