import { CronTime } from 'cron';
import { BadRequestError } from '../common/api-errors';
import {
  WORKFLOW_CODE_PATTERN,
  describeType,
  isPlainObject,
  optionalString,
  quote,
  rejectUnknownFields,
  requiredString,
} from '../common/input';

export interface ScheduleInput {
  readonly workflowCode: string;
  readonly cron: string;
  readonly timezone: string;
  /** The first time it fires, computed from cron and timezone. */
  readonly nextFireTime: Date;
}

/**
 * Validates a POST /schedules body: a workflow code, a cron expression the `cron` package
 * (which the masters fire with) accepts, and an IANA time zone. Computes the first fire
 * time, so an expression that never fires (February 30th) is refused here. Pure, apart
 * from reading the clock (now is a parameter for tests).
 */
export function parseScheduleBody(body: unknown, now: Date = new Date()): ScheduleInput {
  if (!isPlainObject(body)) {
    throw new BadRequestError(
      `request body must be a JSON object (Content-Type: application/json), got ${describeType(body)}`,
    );
  }
  rejectUnknownFields(body, ['workflowCode', 'cron', 'timezone'], 'schedule');
  const workflowCode = requiredString(body, 'workflowCode', 'schedule', {
    maxLength: 200,
    pattern: WORKFLOW_CODE_PATTERN,
    patternText: 'not a workflow code',
  });
  const cron = requiredString(body, 'cron', 'schedule', { maxLength: 200 }).trim();
  const timezone = optionalString(body, 'timezone', 'schedule', { maxLength: 100 }, 'UTC').trim();
  if (!isTimeZone(timezone)) {
    throw new BadRequestError(
      `schedule: unknown timezone ${quote(timezone)} (an IANA name such as Europe/Berlin)`,
    );
  }
  let cronTime: CronTime;
  try {
    cronTime = new CronTime(cron, timezone);
  } catch (err) {
    throw new BadRequestError(`schedule: invalid cron expression ${quote(cron)}: ${errorMessage(err)}`);
  }
  let next: Date;
  try {
    next = cronTime.getNextDateFrom(now, timezone).toJSDate();
  } catch (err) {
    // cron gives up after searching 8 years ahead (February 30th and the like).
    throw new BadRequestError(
      /No execution date/.test(errorMessage(err))
        ? `schedule: cron expression ${quote(cron)} never fires`
        : `schedule: no next fire time for cron expression ${quote(cron)}: ${errorMessage(err)}`,
    );
  }
  if (Number.isNaN(next.getTime())) {
    throw new BadRequestError(`schedule: cron expression ${quote(cron)} never fires`);
  }
  return { workflowCode, cron, timezone, nextFireTime: next };
}

export function isTimeZone(name: string): boolean {
  if (name === '') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
