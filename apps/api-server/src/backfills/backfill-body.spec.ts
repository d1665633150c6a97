import { BadRequestError } from '../common/api-errors';
import { parseBackfillBody, parseInstant, planBackfill } from './backfill-body';

const problem = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof BadRequestError) return err.message;
    throw err;
  }
  throw new Error('no BadRequestError');
};

const plan = (body: Record<string, unknown>, schedules: Array<{ cron: string; timezone: string }> = []) =>
  planBackfill(parseBackfillBody(body), 'wf_x', schedules);

describe('parseBackfillBody', () => {
  it('fills the defaults', () => {
    expect(parseBackfillBody({ start: '2024-01-01', end: '2024-01-31' })).toEqual({
      start: '2024-01-01',
      end: '2024-01-31',
      params: {},
      parallelism: 1,
      order: 'ASC',
    });
    expect(
      parseBackfillBody({
        start: '2024-01-01',
        end: '2024-01-31',
        cron: '0 6 * * *',
        timezone: 'Europe/Berlin',
        params: { region: 'eu' },
        parallelism: 3,
        order: 'DESC',
      }),
    ).toEqual({
      start: '2024-01-01',
      end: '2024-01-31',
      cron: '0 6 * * *',
      timezone: 'Europe/Berlin',
      params: { region: 'eu' },
      parallelism: 3,
      order: 'DESC',
    });
  });

  it.each([
    [undefined, /request body must be a JSON object/],
    [[], /request body must be a JSON object .*got an array/],
    [{ end: '2024-01-01' }, /backfill: missing field "start"/],
    [{ start: '2024-01-01' }, /backfill: missing field "end"/],
    [{ start: 20240101, end: '2024-01-01' }, /"start" must be a string, got a number/],
    [{ start: '2024-01-01', end: '2024-01-02', cron: '' }, /"cron" must not be empty/],
    [
      { start: '2024-01-01', end: '2024-01-02', parallelism: 0 },
      /"parallelism" must be between 1 and 100, got 0/,
    ],
    [{ start: '2024-01-01', end: '2024-01-02', parallelism: 101 }, /"parallelism" must be between 1 and 100/],
    [{ start: '2024-01-01', end: '2024-01-02', parallelism: 1.5 }, /"parallelism" must be an integer/],
    [{ start: '2024-01-01', end: '2024-01-02', order: 'asc' }, /"order" must be "ASC" or "DESC", got "asc"/],
    [{ start: '2024-01-01', end: '2024-01-02', params: { a: 1 } }, /backfill: param "a" must be a string/],
    [{ start: '2024-01-01', end: '2024-01-02', params: [] }, /backfill: "params" must be an object/],
    [{ start: '2024-01-01', end: '2024-01-02', parralelism: 2 }, /backfill: unknown field "parralelism"/],
  ])('rejects %j', (body, message) => {
    expect(problem(() => parseBackfillBody(body))).toMatch(message);
  });
});

describe('planBackfill', () => {
  it('one run per fire time in [start, end], both inclusive, ascending by default', () => {
    const p = plan({ start: '2024-01-01', end: '2024-01-05', cron: '0 0 * * *' });
    expect(p.times.map((t) => t.toISOString())).toEqual([
      '2024-01-01T00:00:00.000Z',
      '2024-01-02T00:00:00.000Z',
      '2024-01-03T00:00:00.000Z',
      '2024-01-04T00:00:00.000Z',
      '2024-01-05T00:00:00.000Z',
    ]);
    expect(p).toMatchObject({ cron: '0 0 * * *', timezone: 'UTC' });
  });

  it('DESC creates the newest date first', () => {
    const p = plan({ start: '2024-01-01', end: '2024-01-03', cron: '0 0 * * *', order: 'DESC' });
    expect(p.times.map((t) => t.toISOString())).toEqual([
      '2024-01-03T00:00:00.000Z',
      '2024-01-02T00:00:00.000Z',
      '2024-01-01T00:00:00.000Z',
    ]);
  });

  it('reads dates as midnight in the time zone', () => {
    const p = plan({ start: '2024-07-01', end: '2024-07-02', cron: '0 0 * * *', timezone: 'Europe/Berlin' });
    expect(p.start.toISOString()).toBe('2024-06-30T22:00:00.000Z');
    expect(p.times.map((t) => t.toISOString())).toEqual([
      '2024-06-30T22:00:00.000Z',
      '2024-07-01T22:00:00.000Z',
    ]);
  });

  it('takes the cron and time zone of the workflow schedule when none is given', () => {
    const p = plan({ start: '2024-01-01', end: '2024-01-02' }, [
      { cron: '0 6 * * *', timezone: 'Asia/Tokyo' },
    ]);
    expect(p).toMatchObject({ cron: '0 6 * * *', timezone: 'Asia/Tokyo' });
    // 06:00 in Tokyo on Jan 1st; Jan 2nd's is after the end, Jan 2nd's midnight.
    expect(p.times.map((t) => t.toISOString())).toEqual(['2023-12-31T21:00:00.000Z']);
    // A time zone given in the body wins over the schedule's.
    expect(
      plan({ start: '2024-01-01', end: '2024-01-01', timezone: 'UTC' }, [
        { cron: '0 0 * * *', timezone: 'Asia/Tokyo' },
      ]).timezone,
    ).toBe('UTC');
  });

  it('accepts ISO 8601 date-times with an offset', () => {
    const p = plan({ start: '2024-01-01T06:00:00+01:00', end: '2024-01-01T07:00:00Z', cron: '0 * * * *' });
    expect(p.times.map((t) => t.toISOString())).toEqual([
      '2024-01-01T05:00:00.000Z',
      '2024-01-01T06:00:00.000Z',
      '2024-01-01T07:00:00.000Z',
    ]);
  });

  it.each([
    [{ start: '2024-01-01', end: '2024-01-02' }, [], /"cron" is required: workflow "wf_x" has no schedule/],
    [
      { start: '2024-01-01', end: '2024-01-02' },
      [
        { cron: '0 0 * * *', timezone: 'UTC' },
        { cron: '0 1 * * *', timezone: 'UTC' },
      ],
      /"cron" is required: workflow "wf_x" has 2 schedules/,
    ],
    [{ start: '2024-01-01', end: '2024-01-02', cron: '* * *' }, [], /invalid cron expression "\* \* \*"/],
    [
      { start: '2024-01-01', end: '2024-01-02', cron: '0 0 * * *', timezone: 'Mars/Base' },
      [],
      /unknown timezone "Mars\/Base"/,
    ],
    [
      { start: '2024-01-01T00:00:00', end: '2024-01-02', cron: '0 0 * * *' },
      [],
      /"start" "2024-01-01T00:00:00" has no UTC offset/,
    ],
    [
      { start: '2024-01-01', end: '2024-01-02T00:00', cron: '0 0 * * *' },
      [],
      /"end" "2024-01-02T00:00" has no UTC offset/,
    ],
    [
      { start: 'yesterday', end: '2024-01-02', cron: '0 0 * * *' },
      [],
      /"start" "yesterday" is not a date or a date-time/,
    ],
    [{ start: '2024-02-30', end: '2024-03-02', cron: '0 0 * * *' }, [], /"start" "2024-02-30" is not a date/],
    [
      { start: '2024-01-01T25:00:00Z', end: '2024-03-02', cron: '0 0 * * *' },
      [],
      /"start" .* is not a valid date-time/,
    ],
    [
      { start: '2024-01-02', end: '2024-01-01', cron: '0 0 * * *' },
      [],
      /"end" \(2024-01-01T00:00:00.000Z\) is before "start"/,
    ],
    [
      { start: '2024-01-01T01:00:00Z', end: '2024-01-01T02:00:00Z', cron: '0 0 * * *' },
      [],
      /never fires between/,
    ],
    [
      { start: '1900-01-01', end: '2024-12-31', cron: '0 0 1 1 *' },
      [],
      /the range from 1900-01-01T00:00:00.000Z to 2024-12-31T00:00:00.000Z is longer than 100 years/,
    ],
    [
      { start: '2024-01-01', end: '2024-12-31', cron: '* * * * *' },
      [],
      /fires about 525601 times between .*; a backfill may have at most 10000 runs/,
    ],
  ])('rejects %j (schedules %j)', (body, schedules, message) => {
    expect(problem(() => plan(body, schedules))).toMatch(message);
  });

  it('allows exactly 10,000 runs', () => {
    // 10,000 minutes from midnight: 00:00 .. 166:39 (6 days 22:39).
    const p = plan({ start: '2024-01-01', end: '2024-01-07T22:39:00Z', cron: '* * * * *' });
    expect(p.times).toHaveLength(10_000);
    expect(
      problem(() => plan({ start: '2024-01-01', end: '2024-01-07T22:40:00Z', cron: '* * * * *' })),
    ).toMatch(/fires about 10001 times/);
  });
});

describe('parseInstant', () => {
  it('a date is midnight in the zone, whatever DST does that day', () => {
    expect(parseInstant('2024-03-31', 'start', 'Europe/Berlin').toISOString()).toBe(
      '2024-03-30T23:00:00.000Z',
    );
    expect(parseInstant('2024-03-31', 'start', 'UTC').toISOString()).toBe('2024-03-31T00:00:00.000Z');
  });
});
