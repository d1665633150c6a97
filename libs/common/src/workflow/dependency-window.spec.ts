import type { DependentInterval } from '../definition/definition-types';
import { dependencyWindow } from './dependency-window';

const ms = (iso: string) => Date.parse(iso);
const iso = (n: number) => new Date(n).toISOString();

describe('dependencyWindow', () => {
  // [what, schedule time, zone, interval, offset, from, to] (UTC instants; the comment says the local time)
  const cases: Array<[string, string, string, DependentInterval, number, string, string]> = [
    ['a day', '2026-12-01T10:00:00Z', 'UTC', 'day', 0, '2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z'],
    [
      'the day before',
      '2026-12-01T10:00:00Z',
      'UTC',
      'day',
      -1,
      '2026-11-30T00:00:00Z',
      '2026-12-01T00:00:00Z',
    ],
    [
      'the day after',
      '2026-12-31T23:59:59Z',
      'UTC',
      'day',
      1,
      '2027-01-01T00:00:00Z',
      '2027-01-02T00:00:00Z',
    ],
    [
      'midnight opens its day',
      '2026-12-01T00:00:00Z',
      'UTC',
      'day',
      0,
      '2026-12-01T00:00:00Z',
      '2026-12-02T00:00:00Z',
    ],
    [
      'a day is local: 01:00 in Tokyo is the 2nd there',
      '2026-12-01T16:00:00Z',
      'Asia/Tokyo',
      'day',
      0,
      '2026-12-01T15:00:00Z',
      '2026-12-02T15:00:00Z',
    ],
    // Berlin springs forward on 2024-03-31 (02:00 CET -> 03:00 CEST): a 23-hour day.
    [
      'spring-forward day (23 h)',
      '2024-03-31T10:00:00Z',
      'Europe/Berlin',
      'day',
      0,
      '2024-03-30T23:00:00Z',
      '2024-03-31T22:00:00Z',
    ],
    [
      'the spring-forward day, from the day after',
      '2024-04-01T08:00:00Z',
      'Europe/Berlin',
      'day',
      -1,
      '2024-03-30T23:00:00Z',
      '2024-03-31T22:00:00Z',
    ],
    // Berlin falls back on 2024-10-27 (03:00 CEST -> 02:00 CET): a 25-hour day.
    [
      'fall-back day (25 h)',
      '2024-10-27T12:00:00Z',
      'Europe/Berlin',
      'day',
      0,
      '2024-10-26T22:00:00Z',
      '2024-10-27T23:00:00Z',
    ],
    [
      'the hour before the spring-forward gap (03:30 CEST, -1 h: 01:00-02:00 CET)',
      '2024-03-31T01:30:00Z',
      'Europe/Berlin',
      'hour',
      -1,
      '2024-03-31T00:00:00Z',
      '2024-03-31T01:00:00Z',
    ],
    // New York falls back on 2024-11-03: 01:00-02:00 happens twice (EDT, then EST).
    [
      '01:30 EDT: the first 01:00 hour',
      '2024-11-03T05:30:00Z',
      'America/New_York',
      'hour',
      0,
      '2024-11-03T05:00:00Z',
      '2024-11-03T06:00:00Z',
    ],
    [
      '01:30 EST: the second 01:00 hour',
      '2024-11-03T06:30:00Z',
      'America/New_York',
      'hour',
      0,
      '2024-11-03T06:00:00Z',
      '2024-11-03T07:00:00Z',
    ],
    [
      '01:30 EST, -1 h: the first 01:00 hour (a real hour earlier)',
      '2024-11-03T06:30:00Z',
      'America/New_York',
      'hour',
      -1,
      '2024-11-03T05:00:00Z',
      '2024-11-03T06:00:00Z',
    ],
    [
      'an hour in a half-hour zone',
      '2026-12-01T10:10:00Z',
      'Asia/Kolkata',
      'hour',
      0,
      '2026-12-01T09:30:00Z',
      '2026-12-01T10:30:00Z',
    ],
    // Month ends and leap years.
    ['a month', '2026-12-15T12:00:00Z', 'UTC', 'month', 0, '2026-12-01T00:00:00Z', '2027-01-01T00:00:00Z'],
    [
      'from March 31st, the month before is a leap February (29 days)',
      '2024-03-31T12:00:00Z',
      'UTC',
      'month',
      -1,
      '2024-02-01T00:00:00Z',
      '2024-03-01T00:00:00Z',
    ],
    [
      'from January 31st, the month after is February (no clamping)',
      '2025-01-31T12:00:00Z',
      'UTC',
      'month',
      1,
      '2025-02-01T00:00:00Z',
      '2025-03-01T00:00:00Z',
    ],
    [
      'twelve months before February 28th 2025',
      '2025-02-28T12:00:00Z',
      'UTC',
      'month',
      -12,
      '2024-02-01T00:00:00Z',
      '2024-03-01T00:00:00Z',
    ],
    [
      'February 29th',
      '2024-02-29T23:30:00Z',
      'UTC',
      'day',
      0,
      '2024-02-29T00:00:00Z',
      '2024-03-01T00:00:00Z',
    ],
    [
      'the day after February 29th',
      '2024-02-29T23:30:00Z',
      'UTC',
      'day',
      1,
      '2024-03-01T00:00:00Z',
      '2024-03-02T00:00:00Z',
    ],
    [
      '365 days before March 1st 2025 (across February 29th)',
      '2025-03-01T06:00:00Z',
      'UTC',
      'day',
      -365,
      '2024-03-01T00:00:00Z',
      '2024-03-02T00:00:00Z',
    ],
    [
      'a month is local: 01:00 on Feb 1st in Tokyo',
      '2024-01-31T16:00:00Z',
      'Asia/Tokyo',
      'month',
      0,
      '2024-01-31T15:00:00Z',
      '2024-02-29T15:00:00Z',
    ],
    [
      'a month with a daylight-saving change (Berlin, March 2024)',
      '2024-03-10T12:00:00Z',
      'Europe/Berlin',
      'month',
      0,
      '2024-02-29T23:00:00Z',
      '2024-03-31T22:00:00Z',
    ],
    // Weeks start on Monday.
    [
      'a week (Friday January 1st 2021: from Monday December 28th)',
      '2021-01-01T12:00:00Z',
      'UTC',
      'week',
      0,
      '2020-12-28T00:00:00Z',
      '2021-01-04T00:00:00Z',
    ],
    [
      'the week before',
      '2021-01-01T12:00:00Z',
      'UTC',
      'week',
      -1,
      '2020-12-21T00:00:00Z',
      '2020-12-28T00:00:00Z',
    ],
    [
      'a Sunday ends its week',
      '2026-12-06T23:00:00Z',
      'UTC',
      'week',
      0,
      '2026-11-30T00:00:00Z',
      '2026-12-07T00:00:00Z',
    ],
    [
      'a Monday opens its week',
      '2026-11-30T00:00:00Z',
      'UTC',
      'week',
      0,
      '2026-11-30T00:00:00Z',
      '2026-12-07T00:00:00Z',
    ],
    [
      'a week with the spring-forward Sunday (167 h)',
      '2024-03-27T12:00:00Z',
      'Europe/Berlin',
      'week',
      0,
      '2024-03-24T23:00:00Z',
      '2024-03-31T22:00:00Z',
    ],
  ];

  it.each(cases)('%s', (_what, at, zone, interval, offset, from, to) => {
    const w = dependencyWindow(ms(at), zone, interval, offset);
    expect({ from: iso(w.fromMs), to: iso(w.toMs) }).toEqual({
      from: from.replace('Z', '.000Z'),
      to: to.replace('Z', '.000Z'),
    });
  });

  it('refuses an unknown time zone', () => {
    expect(() => dependencyWindow(0, 'Mars/Olympus', 'day', 0)).toThrow(/invalid time zone "Mars\/Olympus"/);
  });
});
