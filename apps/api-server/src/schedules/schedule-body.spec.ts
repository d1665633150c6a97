import { BadRequestError } from '../common/api-errors';
import { isTimeZone, parseScheduleBody } from './schedule-body';

const problem = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof BadRequestError) return err.message;
    throw err;
  }
  throw new Error('no BadRequestError');
};

describe('parseScheduleBody', () => {
  const now = new Date('2024-03-30T12:00:00Z');

  it('computes the next fire time in the time zone (across a DST change)', () => {
    // Berlin moves to summer time on 2024-03-31: 02:30 local does not exist that day.
    const s = parseScheduleBody({ workflowCode: 'wf_x', cron: '0 9 * * *', timezone: 'Europe/Berlin' }, now);
    expect(s.nextFireTime.toISOString()).toBe('2024-03-31T07:00:00.000Z');
    const utc = parseScheduleBody({ workflowCode: 'wf_x', cron: '*/15 * * * *' }, now);
    expect(utc).toMatchObject({ timezone: 'UTC' });
    expect(utc.nextFireTime.toISOString()).toBe('2024-03-30T12:15:00.000Z');
  });

  it.each([
    [{ workflowCode: 'wf_x', cron: '* * *' }, /invalid cron expression "\* \* \*"/],
    [{ workflowCode: 'wf_x', cron: '0 0 31 4 *' }, /never fires/],
    [{ workflowCode: 'wf_x', cron: '0 0 * * *', timezone: 'UTC+2' }, /unknown timezone "UTC\+2"/],
    [{ workflowCode: 'wf_x', cron: '0 0 * * *', timezone: '' }, /"timezone" must not be empty/],
    [{ workflowCode: 'wf x', cron: '0 0 * * *' }, /"workflowCode" "wf x" is invalid/],
    [{ workflowCode: 'wf_x', cron: 5 }, /"cron" must be a string, got a number/],
  ])('rejects %j', (body, message) => {
    expect(problem(() => parseScheduleBody(body, now))).toMatch(message);
  });

  it('knows IANA zones', () => {
    expect(isTimeZone('America/New_York')).toBe(true);
    expect(isTimeZone('Nowhere/Special')).toBe(false);
  });
});
