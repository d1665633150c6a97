import type { MisfirePolicy, ScheduleFields, ScheduleRecord } from '@porpoise/dao';
import { MISFIRE_POLICIES } from '@porpoise/dao';
import { CronTime } from 'cron';
import { BadRequestError } from '../common/api-errors';
import {
  WORKFLOW_CODE_PATTERN,
  describeType,
  isPlainObject,
  quote,
  rejectUnknownFields,
  requiredString,
  type JsonObject,
} from '../common/input';
import { parseParams } from '../workflows/run-body';

/** The fields of POST /schedules; PATCH accepts any of them. */
export const SCHEDULE_FIELDS = [
  'workflowCode',
  'cron',
  'timezone',
  'params',
  'startTime',
  'endTime',
  'enabled',
  'misfirePolicy',
] as const;

/** A schedule's settings as a client gave them (PATCH: only those given). */
export interface ScheduleSettings {
  readonly workflowCode: string;
  readonly cron: string;
  readonly timezone: string;
  readonly params: Record<string, string>;
  readonly startTime: Date | null;
  readonly endTime: Date | null;
  readonly enabled: boolean;
  readonly misfirePolicy: MisfirePolicy;
}

export type ScheduleInput = ScheduleSettings;
export type SchedulePatch = Partial<ScheduleSettings>;

/** ISO 8601 with a date, a time and an offset (Z or ±hh:mm): a schedule bound is an instant. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

const where = 'schedule';

/**
 * Validates a POST /schedules body: a workflow code, a cron expression the `cron` package (which
 * the masters fire with) accepts, an IANA time zone (default UTC), and the optional params,
 * startTime/endTime (ISO 8601 instants), enabled (default true) and misfirePolicy (default
 * RUN_ONCE). Pure; the first fire time is computed later, from the database's clock
 * (scheduleFields).
 */
export function parseScheduleBody(body: unknown): ScheduleInput {
  const obj = bodyObject(body);
  const patch = readFields(obj, false);
  const workflowCode = requiredString(obj, 'workflowCode', where, {
    maxLength: 200,
    pattern: WORKFLOW_CODE_PATTERN,
    patternText: 'not a workflow code',
  });
  if (patch.cron === undefined) throw new BadRequestError(`${where}: missing field "cron"`);
  const input: ScheduleInput = {
    workflowCode,
    cron: patch.cron,
    timezone: patch.timezone ?? 'UTC',
    params: patch.params ?? {},
    startTime: patch.startTime ?? null,
    endTime: patch.endTime ?? null,
    enabled: patch.enabled ?? true,
    misfirePolicy: patch.misfirePolicy ?? 'RUN_ONCE',
  };
  checkSettings(input);
  return input;
}

/** Validates a PATCH /schedules/{id} body: any of the POST fields (null clears startTime/endTime). */
export function parseSchedulePatch(body: unknown): SchedulePatch {
  const patch = readFields(bodyObject(body), true);
  if (Object.keys(patch).length === 0) {
    throw new BadRequestError(`${where}: nothing to change (give any of ${SCHEDULE_FIELDS.join(', ')})`);
  }
  return patch;
}

/** The merged settings of a PATCH, validated as a whole (a cron that never fires, endTime < startTime). */
export function mergeSchedule(current: ScheduleRecord, patch: SchedulePatch): ScheduleSettings {
  const merged: ScheduleSettings = {
    workflowCode: patch.workflowCode ?? current.workflowCode,
    cron: patch.cron ?? current.cron,
    timezone: patch.timezone ?? current.timezone,
    params: patch.params ?? current.params,
    startTime: patch.startTime === undefined ? current.startTime : patch.startTime,
    endTime: patch.endTime === undefined ? current.endTime : patch.endTime,
    enabled: patch.enabled ?? current.enabled,
    misfirePolicy: patch.misfirePolicy ?? current.misfirePolicy,
  };
  checkSettings(merged);
  return merged;
}

/**
 * The fields to store. The cursor (next fire time) is computed from the database's clock `dbNow`
 * for a new schedule and whenever a PATCH changes what it depends on (cron, timezone, startTime,
 * or enabling): the first fire time after max(dbNow, startTime - 1 ms). Fire times passed while a
 * schedule was disabled are not misfires: they are never due. Disabled: no cursor. Otherwise the
 * cursor stays (a PATCH of params, endTime or misfirePolicy loses no due fire time).
 */
export function scheduleFields(
  settings: ScheduleSettings,
  dbNow: Date,
  current?: ScheduleRecord,
): ScheduleFields {
  const recompute =
    current === undefined ||
    current.cron !== settings.cron ||
    current.timezone !== settings.timezone ||
    (current.startTime?.getTime() ?? null) !== (settings.startTime?.getTime() ?? null) ||
    current.enabled !== settings.enabled ||
    current.nextFireTime === null;
  let nextFireTime: Date | null = null;
  if (settings.enabled && !recompute && current !== undefined) nextFireTime = current.nextFireTime;
  else if (settings.enabled) {
    const after = new Date(Math.max(dbNow.getTime(), (settings.startTime?.getTime() ?? 0) - 1));
    try {
      nextFireTime = firstFireTime(settings.cron, settings.timezone, after);
    } catch (err) {
      // The cron package looks 8 years ahead of now, no further.
      if (settings.startTime === null || after.getTime() === dbNow.getTime()) throw err;
      throw new BadRequestError(
        `${where}: "startTime" ${settings.startTime.toISOString()} is too far ahead (no fire time within 8 years from now)`,
      );
    }
  }
  return {
    cron: settings.cron,
    timezone: settings.timezone,
    params: settings.params,
    startTime: settings.startTime,
    endTime: settings.endTime,
    enabled: settings.enabled,
    misfirePolicy: settings.misfirePolicy,
    nextFireTime,
  };
}

function bodyObject(body: unknown): JsonObject {
  if (!isPlainObject(body)) {
    throw new BadRequestError(
      `request body must be a JSON object (Content-Type: application/json), got ${describeType(body)}`,
    );
  }
  rejectUnknownFields(body, SCHEDULE_FIELDS, where);
  return body;
}

/** The fields present in obj, each checked on its own. */
function readFields(obj: JsonObject, patch: boolean): SchedulePatch {
  const has = (f: string) => f in obj && obj[f] !== undefined;
  const out: { -readonly [K in keyof ScheduleSettings]?: ScheduleSettings[K] } = {};
  if (patch && has('workflowCode')) {
    out.workflowCode = requiredString(obj, 'workflowCode', where, {
      maxLength: 200,
      pattern: WORKFLOW_CODE_PATTERN,
      patternText: 'not a workflow code',
    });
  }
  if (has('cron')) out.cron = requiredString(obj, 'cron', where, { maxLength: 200 }).trim();
  if (has('timezone')) {
    const timezone = requiredString(obj, 'timezone', where, { maxLength: 100 }).trim();
    if (!isTimeZone(timezone)) {
      throw new BadRequestError(
        `${where}: unknown timezone ${quote(timezone)} (an IANA name such as Europe/Berlin)`,
      );
    }
    out.timezone = timezone;
  }
  if (has('params')) out.params = parseParams(obj.params, where);
  if (has('startTime')) out.startTime = instant(obj, 'startTime');
  if (has('endTime')) out.endTime = instant(obj, 'endTime');
  if (has('enabled')) {
    if (typeof obj.enabled !== 'boolean') {
      throw new BadRequestError(
        `${where}: "enabled" must be true or false, got ${describeType(obj.enabled)}`,
      );
    }
    out.enabled = obj.enabled;
  }
  if (has('misfirePolicy')) {
    const policy = obj.misfirePolicy;
    if (typeof policy !== 'string' || !(MISFIRE_POLICIES as readonly string[]).includes(policy)) {
      throw new BadRequestError(
        `${where}: "misfirePolicy" must be one of ${MISFIRE_POLICIES.join(', ')}, got ${quote(policy)}`,
      );
    }
    out.misfirePolicy = policy as MisfirePolicy;
  }
  return out;
}

function instant(obj: JsonObject, field: 'startTime' | 'endTime'): Date | null {
  const value = obj[field];
  if (value === null) return null;
  if (typeof value !== 'string' || !INSTANT.test(value.trim()) || Number.isNaN(Date.parse(value))) {
    throw new BadRequestError(
      `${where}: "${field}" must be an ISO 8601 date-time with an offset (such as 2025-01-01T00:00:00Z) or null, got ${quote(value)}`,
    );
  }
  return new Date(Date.parse(value));
}

/** Whole-schedule checks: the cron in its time zone, and the window. */
function checkSettings(s: ScheduleSettings): void {
  try {
    new CronTime(s.cron, s.timezone);
  } catch (err) {
    throw new BadRequestError(`${where}: invalid cron expression ${quote(s.cron)}: ${errorMessage(err)}`);
  }
  if (s.startTime !== null && s.endTime !== null && s.endTime.getTime() < s.startTime.getTime()) {
    throw new BadRequestError(
      `${where}: "endTime" ${s.endTime.toISOString()} is before "startTime" ${s.startTime.toISOString()}`,
    );
  }
  // A cron that never fires (February 30th) is refused whatever the clock says.
  firstFireTime(s.cron, s.timezone, new Date(0));
}

/** The first fire time strictly after `after`; 400 when the cron never fires. */
function firstFireTime(cron: string, timezone: string, after: Date): Date {
  let next: Date;
  try {
    next = new CronTime(cron, timezone).getNextDateFrom(after, timezone).toJSDate();
  } catch (err) {
    // cron gives up after searching 8 years ahead (February 30th and the like).
    throw new BadRequestError(
      /No execution date/.test(errorMessage(err))
        ? `${where}: cron expression ${quote(cron)} never fires`
        : `${where}: no next fire time for cron expression ${quote(cron)}: ${errorMessage(err)}`,
    );
  }
  if (Number.isNaN(next.getTime())) {
    throw new BadRequestError(`${where}: cron expression ${quote(cron)} never fires`);
  }
  return next;
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
