import type { BackfillOrder } from '@porpoise/dao';
import { CronTime } from 'cron';
import { DateTime, IANAZone } from 'luxon';
import { BadRequestError } from '../common/api-errors';
import {
  describeType,
  isPlainObject,
  optionalInteger,
  quote,
  rejectUnknownFields,
  requiredString,
  type JsonObject,
} from '../common/input';
import { parseParams } from '../workflows/run-body';
import { fireTimes } from './fire-times';

export const BACKFILL_LIMITS = {
  /** Fire times (runs) in one backfill. */
  runs: 10_000,
  parallelism: 100,
  /** From start to end (the fire-time search looks at the zone's offsets across the whole range). */
  rangeYears: 100,
} as const;

const WHERE = 'backfill';
const FIELDS = ['start', 'end', 'cron', 'timezone', 'params', 'parallelism', 'order'] as const;

/** A POST /workflows/{code}/backfill body, checked field by field (cron and dates not resolved yet). */
export interface BackfillRequest {
  readonly start: string;
  readonly end: string;
  readonly cron?: string;
  readonly timezone?: string;
  readonly params: Record<string, string>;
  readonly parallelism: number;
  readonly order: BackfillOrder;
}

/** What a backfill runs: the cron and zone it used, the range as instants, every fire time in `order`. */
export interface BackfillPlan {
  readonly cron: string;
  readonly timezone: string;
  readonly start: Date;
  readonly end: Date;
  readonly times: Date[];
}

/** Validates the body's shape; every problem is a 400 naming the field. Pure. */
export function parseBackfillBody(body: unknown): BackfillRequest {
  if (!isPlainObject(body)) {
    throw new BadRequestError(
      `request body must be a JSON object (Content-Type: application/json), got ${describeType(body)}`,
    );
  }
  rejectUnknownFields(body, FIELDS, WHERE);
  const start = requiredString(body, 'start', WHERE, { maxLength: 64 }).trim();
  const end = requiredString(body, 'end', WHERE, { maxLength: 64 }).trim();
  const cron = optional(body, 'cron', 200);
  const timezone = optional(body, 'timezone', 100);
  const params = body.params === undefined ? {} : parseParams(body.params, WHERE);
  const parallelism = optionalInteger(body, 'parallelism', WHERE, 1, BACKFILL_LIMITS.parallelism, 1);
  let order: BackfillOrder = 'ASC';
  if (body.order !== undefined) {
    if (body.order !== 'ASC' && body.order !== 'DESC') {
      throw new BadRequestError(`${WHERE}: "order" must be "ASC" or "DESC", got ${quote(body.order)}`);
    }
    order = body.order;
  }
  return {
    start,
    end,
    ...(cron === undefined ? {} : { cron }),
    ...(timezone === undefined ? {} : { timezone }),
    params,
    parallelism,
    order,
  };
}

function optional(body: JsonObject, field: string, maxLength: number): string | undefined {
  if (body[field] === undefined) return undefined;
  return requiredString(body, field, WHERE, { maxLength }).trim();
}

/**
 * Resolves the cron (the body's, else the workflow's schedule's: 400 when there is none, or
 * more than one to choose from) and the time zone (the body's, else the schedule's when the cron
 * came from it, else UTC), reads start and end, and enumerates the fire times in [start, end]:
 * 400 when there are none or more than BACKFILL_LIMITS.runs. Pure (the schedules are read by
 * the caller).
 */
export function planBackfill(
  request: BackfillRequest,
  workflowCode: string,
  schedules: ReadonlyArray<{ cron: string; timezone: string }>,
): BackfillPlan {
  let cron = request.cron;
  let timezone = request.timezone;
  if (cron === undefined) {
    const [only, ...others] = schedules;
    if (only === undefined) {
      throw new BadRequestError(
        `${WHERE}: "cron" is required: workflow ${quote(workflowCode)} has no schedule to take it from`,
      );
    }
    if (others.length > 0) {
      throw new BadRequestError(
        `${WHERE}: "cron" is required: workflow ${quote(workflowCode)} has ${schedules.length} schedules, ` +
          'so which one to follow is not clear',
      );
    }
    cron = only.cron;
    timezone ??= only.timezone;
  }
  timezone ??= 'UTC';
  if (!IANAZone.isValidZone(timezone)) {
    throw new BadRequestError(
      `${WHERE}: unknown timezone ${quote(timezone)} (an IANA name such as Europe/Berlin)`,
    );
  }
  try {
    new CronTime(cron, timezone);
  } catch (err) {
    throw new BadRequestError(`${WHERE}: invalid cron expression ${quote(cron)}: ${errorMessage(err)}`);
  }
  const start = parseInstant(request.start, 'start', timezone);
  const end = parseInstant(request.end, 'end', timezone);
  if (end.getTime() < start.getTime()) {
    throw new BadRequestError(
      `${WHERE}: "end" (${end.toISOString()}) is before "start" (${start.toISOString()})`,
    );
  }
  if (end.getTime() - start.getTime() > BACKFILL_LIMITS.rangeYears * 366 * 86_400_000) {
    throw new BadRequestError(
      `${WHERE}: the range from ${start.toISOString()} to ${end.toISOString()} is longer than ` +
        `${BACKFILL_LIMITS.rangeYears} years`,
    );
  }
  let found;
  try {
    found = fireTimes(cron, timezone, start, end, BACKFILL_LIMITS.runs);
  } catch (err) {
    throw new BadRequestError(
      `${WHERE}: no fire times for cron expression ${quote(cron)}: ${errorMessage(err)}`,
    );
  }
  if (found.kind === 'tooMany') {
    throw new BadRequestError(
      `${WHERE}: cron ${quote(cron)} fires about ${found.estimate} times between ${start.toISOString()} and ` +
        `${end.toISOString()}; a backfill may have at most ${BACKFILL_LIMITS.runs} runs (split the range)`,
    );
  }
  if (found.times.length === 0) {
    throw new BadRequestError(
      `${WHERE}: cron ${quote(cron)} (${timezone}) never fires between ${start.toISOString()} and ${end.toISOString()}`,
    );
  }
  const times = request.order === 'DESC' ? found.times.reverse() : found.times;
  return { cron, timezone, start, end, times };
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const WITH_OFFSET = /(?:Z|[+-]\d{2}(?::?\d{2})?)$/i;

/**
 * `yyyy-MM-dd` is that day's midnight in the time zone; otherwise an ISO 8601 date-time with
 * its UTC offset (`Z` or `+hh:mm`). A date-time without an offset is refused: which instant it
 * means would depend on a zone the client did not name.
 */
export function parseInstant(text: string, field: 'start' | 'end', timezone: string): Date {
  const shape =
    `(yyyy-MM-dd, midnight in the timezone, or an ISO 8601 date-time with an offset such as ` +
    `2024-01-31T00:00:00Z)`;
  if (DATE_ONLY.test(text)) {
    const day = DateTime.fromISO(text, { zone: timezone });
    if (!day.isValid) throw new BadRequestError(`${WHERE}: "${field}" ${quote(text)} is not a date ${shape}`);
    return day.startOf('day').toJSDate();
  }
  if (!/^\d{4}-\d{2}-\d{2}T/i.test(text)) {
    throw new BadRequestError(`${WHERE}: "${field}" ${quote(text)} is not a date or a date-time ${shape}`);
  }
  if (!WITH_OFFSET.test(text)) {
    throw new BadRequestError(
      `${WHERE}: "${field}" ${quote(text)} has no UTC offset; add one (Z, +02:00) or give a date ` +
        `(yyyy-MM-dd, midnight in the timezone)`,
    );
  }
  const instant = DateTime.fromISO(text, { setZone: true });
  if (!instant.isValid) {
    throw new BadRequestError(`${WHERE}: "${field}" ${quote(text)} is not a valid date-time ${shape}`);
  }
  return instant.toJSDate();
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
