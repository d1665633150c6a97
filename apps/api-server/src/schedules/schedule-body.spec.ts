import type { ScheduleRecord } from '@porpoise/dao';
import { BadRequestError } from '../common/api-errors';
import {
  isTimeZone,
  mergeSchedule,
  parseScheduleBody,
  parseSchedulePatch,
  scheduleFields,
} from './schedule-body';

const problem = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof BadRequestError) return err.message;
    throw err;
  }
  throw new Error('no BadRequestError');
};

const first = (body: unknown, now: Date) => scheduleFields(parseScheduleBody(body), now).nextFireTime;

const stored = (over: Partial<ScheduleRecord> = {}): ScheduleRecord => ({
  id: 7,
  workflowCode: 'wf_x',
  cron: '0 * * * *',
  timezone: 'UTC',
  params: { A: '1' },
  startTime: null,
  endTime: null,
  enabled: true,
  misfirePolicy: 'RUN_ONCE',
  revision: 3,
  nextFireTime: new Date('2024-05-01T11:00:00Z'),
  createdAt: new Date('2024-01-01T00:00:00Z'),
  updatedAt: new Date('2024-01-01T00:00:00Z'),
  ...over,
});

describe('parseScheduleBody', () => {
  const now = new Date('2024-03-30T12:00:00Z');

  it('computes the next fire time in the time zone (across a DST change), from the given (database) now', () => {
    // Berlin moves to summer time on 2024-03-31: 09:00 local is 07:00Z that day.
    expect(
      first({ workflowCode: 'wf_x', cron: '0 9 * * *', timezone: 'Europe/Berlin' }, now)?.toISOString(),
    ).toBe('2024-03-31T07:00:00.000Z');
    const utc = parseScheduleBody({ workflowCode: 'wf_x', cron: '*/15 * * * *' });
    expect(utc).toEqual({
      workflowCode: 'wf_x',
      cron: '*/15 * * * *',
      timezone: 'UTC',
      params: {},
      startTime: null,
      endTime: null,
      enabled: true,
      misfirePolicy: 'RUN_ONCE',
    });
    expect(scheduleFields(utc, now).nextFireTime?.toISOString()).toBe('2024-03-30T12:15:00.000Z');
  });

  it('accepts every field; a startTime in the future starts the cursor there (inclusive)', () => {
    const body = {
      workflowCode: 'wf_x',
      cron: '0 * * * *',
      timezone: 'UTC',
      params: { REGION: 'eu' },
      startTime: '2024-04-01T10:00:00+02:00',
      endTime: '2024-04-02T00:00:00Z',
      enabled: true,
      misfirePolicy: 'RUN_ALL',
    };
    const input = parseScheduleBody(body);
    expect(input).toMatchObject({
      params: { REGION: 'eu' },
      startTime: new Date('2024-04-01T08:00:00Z'),
      endTime: new Date('2024-04-02T00:00:00Z'),
      misfirePolicy: 'RUN_ALL',
    });
    expect(scheduleFields(input, now).nextFireTime?.toISOString()).toBe('2024-04-01T08:00:00.000Z');
    // Disabled: no cursor.
    expect(first({ ...body, enabled: false }, now)).toBeNull();
  });

  it.each([
    [{ workflowCode: 'wf_x', cron: '* * *' }, /invalid cron expression "\* \* \*"/],
    [{ workflowCode: 'wf_x', cron: '0 0 31 4 *' }, /never fires/],
    [{ workflowCode: 'wf_x', cron: '0 0 * * *', timezone: 'UTC+2' }, /unknown timezone "UTC\+2"/],
    [{ workflowCode: 'wf_x', cron: '0 0 * * *', timezone: '' }, /"timezone" must not be empty/],
    [{ workflowCode: 'wf x', cron: '0 0 * * *' }, /"workflowCode" "wf x" is invalid/],
    [{ workflowCode: 'wf_x', cron: 5 }, /"cron" must be a string, got a number/],
    [{ workflowCode: 'wf_x' }, /missing field "cron"/],
    [{ cron: '0 0 * * *' }, /missing field "workflowCode"/],
    [
      { workflowCode: 'wf_x', cron: '0 0 * * *', params: ['a'] },
      /^schedule: "params" must be an object of strings/,
    ],
    [{ workflowCode: 'wf_x', cron: '0 0 * * *', params: { A: 1 } }, /^schedule: param "A" must be a string/],
    [
      { workflowCode: 'wf_x', cron: '0 0 * * *', params: { '1A': 'x' } },
      /^schedule: param name "1A" is invalid/,
    ],
    [{ workflowCode: 'wf_x', cron: '0 0 * * *', startTime: '2024-01-01' }, /"startTime" must be an ISO 8601/],
    [
      { workflowCode: 'wf_x', cron: '0 0 * * *', startTime: '2024-01-01T00:00:00' },
      /"startTime" must be an ISO 8601 date-time with an offset/,
    ],
    [{ workflowCode: 'wf_x', cron: '0 0 * * *', endTime: 17 }, /"endTime" must be an ISO 8601/],
    [
      {
        workflowCode: 'wf_x',
        cron: '0 0 * * *',
        startTime: '2024-02-01T00:00:00Z',
        endTime: '2024-01-01T00:00:00Z',
      },
      /"endTime" 2024-01-01T00:00:00.000Z is before "startTime" 2024-02-01T00:00:00.000Z/,
    ],
    [
      { workflowCode: 'wf_x', cron: '0 0 * * *', enabled: 'no' },
      /"enabled" must be true or false, got a string/,
    ],
    [
      { workflowCode: 'wf_x', cron: '0 0 * * *', misfirePolicy: 'ONCE' },
      /"misfirePolicy" must be one of RUN_ONCE, SKIP, RUN_ALL, got "ONCE"/,
    ],
    [{ workflowCode: 'wf_x', cron: '0 0 * * *', every: 1 }, /unknown field "every"/],
  ])('rejects %j', (body, message) => {
    expect(problem(() => scheduleFields(parseScheduleBody(body), now))).toMatch(message);
  });

  it('knows IANA zones', () => {
    expect(isTimeZone('America/New_York')).toBe(true);
    expect(isTimeZone('Nowhere/Special')).toBe(false);
  });
});

describe('PATCH /schedules/{id} body', () => {
  const dbNow = new Date('2024-05-01T10:30:00Z');
  const patched = (body: unknown, current = stored()) =>
    scheduleFields(mergeSchedule(current, parseSchedulePatch(body)), dbNow, current);

  it('changes only what it names; params, endTime and misfirePolicy keep the cursor', () => {
    expect(patched({ params: { B: '2' }, misfirePolicy: 'SKIP', endTime: '2025-01-01T00:00:00Z' })).toEqual({
      cron: '0 * * * *',
      timezone: 'UTC',
      params: { B: '2' },
      startTime: null,
      endTime: new Date('2025-01-01T00:00:00Z'),
      enabled: true,
      misfirePolicy: 'SKIP',
      nextFireTime: new Date('2024-05-01T11:00:00Z'),
    });
  });

  it('recomputes the cursor from the database clock when cron, timezone, startTime or enabling change', () => {
    expect(patched({ cron: '*/10 * * * *' }).nextFireTime?.toISOString()).toBe('2024-05-01T10:40:00.000Z');
    expect(patched({ timezone: 'Asia/Kolkata' }).nextFireTime?.toISOString()).toBe(
      '2024-05-01T11:30:00.000Z',
    );
    expect(patched({ startTime: '2024-06-01T00:00:00Z' }).nextFireTime?.toISOString()).toBe(
      '2024-06-01T00:00:00.000Z',
    );
    // Paused: no cursor. Enabled again: the next time after now; the hours in between are not misfires.
    const paused = { ...stored(), ...patched({ enabled: false }) };
    expect(paused.nextFireTime).toBeNull();
    expect(patched({ enabled: true }, paused).nextFireTime?.toISOString()).toBe('2024-05-01T11:00:00.000Z');
  });

  it('clears a bound with null and refuses an empty or unknown change', () => {
    const bounded = stored({ startTime: new Date('2024-01-01T00:00:00Z') });
    expect(patched({ startTime: null }, bounded).startTime).toBeNull();
    expect(problem(() => parseSchedulePatch({}))).toMatch(/nothing to change/);
    expect(problem(() => parseSchedulePatch({ nextFireTime: 'x' }))).toMatch(/unknown field "nextFireTime"/);
    expect(problem(() => parseSchedulePatch({ workflowCode: 'a b' }))).toMatch(
      /"workflowCode" "a b" is invalid/,
    );
    expect(problem(() => patched({ endTime: '2023-01-01T00:00:00Z' }, bounded))).toMatch(
      /"endTime" .* is before/,
    );
    expect(problem(() => patched({ cron: '0 0 30 2 *' }))).toMatch(/never fires/);
    expect(problem(() => patched({ startTime: '2099-01-01T00:00:00Z' }))).toMatch(
      /"startTime" .* is too far ahead/,
    );
  });
});
