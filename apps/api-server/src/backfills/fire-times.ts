import { CronTime } from 'cron';
import { IANAZone } from 'luxon';

const SECOND = 1000;
const HOUR = 3600 * SECOND;
const DAY = 24 * HOUR;
/** Around a fire time whose zone offset is the same this far before and after, wall time maps to one instant. */
const DST_MARGIN_MS = 3 * HOUR;

/** The allowed values of one cron field; null: every value (cron's "*"). */
type Field = ReadonlySet<number> | null;

interface CronFields {
  readonly second: Field;
  readonly minute: Field;
  readonly hour: Field;
  readonly dayOfMonth: Field;
  readonly month: Field;
  readonly dayOfWeek: Field;
}

export type FireTimes =
  | { readonly kind: 'times'; readonly times: Date[] }
  /** More than `limit` fire times; `estimate` extrapolates the total from the first ones. */
  | { readonly kind: 'tooMany'; readonly estimate: number };

/**
 * Every fire time of `cron` in `timezone` within [start, end] (both inclusive), ascending, or
 * 'tooMany' past `limit`. Throws on a bad expression or time zone (as `new CronTime` does).
 *
 * The times are exactly those the masters fire a schedule at (`cron` 4.4.0's
 * `getNextDateFrom`, DST rules included: a time in a spring-forward gap fires at the gap's end,
 * a repeated hour as cron decides), which costs a couple of milliseconds per time for a daily
 * expression (it steps through wall-clock minutes and hours with luxon). So the matching wall
 * times are found here with plain UTC arithmetic, field by field as cron's own loop does, and cron
 * itself is asked only near an offset change; elsewhere wall time minus the zone's offset is
 * the instant cron returns. 10,000 daily times take tens of milliseconds instead of 20 seconds.
 */
export function fireTimes(cron: string, timezone: string, start: Date, end: Date, limit: number): FireTimes {
  const cronTime = new CronTime(cron, timezone);
  const fields = cronFields(cronTime);
  const zone = IANAZone.create(timezone);
  if (!zone.isValid) throw new Error(`unknown timezone ${timezone}`);
  const endMs = end.getTime();
  const offsets = new ZoneOffsets(zone, start.getTime() - 2 * DAY, endMs + 4 * DAY);
  const offsetMs = (instant: number): number => offsets.at(instant);
  const times: Date[] = [];
  // Strictly after prev; one millisecond before start makes start itself a candidate.
  let prev = start.getTime() - 1;
  for (;;) {
    const wallPrev = prev + offsetMs(prev);
    // Past end in wall time by more than any offset: no later match can be in range.
    const wall = nextWallMatch(fields, wallPrev, endMs + offsetMs(endMs) + 2 * DAY);
    if (wall === null) break;
    const guess = wall - offsetMs(wall);
    const before = offsetMs(guess - DST_MARGIN_MS);
    const after = offsetMs(guess + DST_MARGIN_MS);
    // Near an offset change cron decides. It walks wall time from where it starts, a unit at a
    // time, so it starts a few hours before: no fire lies between prev and there (no wall time
    // matches before `wall`, and offsets change months apart), so its answer is the same.
    const next =
      before === after
        ? wall - before
        : cronTime
            .getNextDateFrom(new Date(Math.max(prev, guess - 3 * DST_MARGIN_MS)), timezone)
            .toJSDate()
            .getTime();
    if (next > endMs) break;
    if (next <= prev) throw new Error(`cron ${cron} did not advance after ${new Date(prev).toISOString()}`);
    if (times.length === limit) {
      const first = times[0]?.getTime() ?? next;
      const span = next - first;
      const estimate = span > 0 ? Math.round(((endMs - first) / span) * limit) + 1 : limit + 1;
      return { kind: 'tooMany', estimate: Math.max(estimate, limit + 1) };
    }
    times.push(new Date(next));
    prev = next;
  }
  return { kind: 'times', times };
}

/**
 * A zone's UTC offset (ms) at any instant of [from, to], from its offset changes found once:
 * sampled weekly, each change then bisected to the millisecond. Asking the zone (Intl) for
 * every instant costs tens of microseconds a call, several calls per fire time. Two changes
 * within one week would be missed; no zone's rules have them (a DST period lasts months).
 */
class ZoneOffsets {
  private static readonly STEP_MS = 7 * DAY;
  private readonly changes: Array<{ at: number; offsetMs: number }> = [];
  private readonly firstOffsetMs: number;

  constructor(
    private readonly zone: IANAZone,
    private readonly from: number,
    private readonly to: number,
  ) {
    const ask = (t: number) => zone.offset(t) * 60 * SECOND;
    this.firstOffsetMs = ask(from);
    let t = from;
    let offset = this.firstOffsetMs;
    while (t < to) {
      const next = Math.min(t + ZoneOffsets.STEP_MS, to);
      const nextOffset = ask(next);
      if (nextOffset !== offset) {
        let lo = t;
        let hi = next;
        while (hi - lo > 1) {
          const mid = Math.floor((lo + hi) / 2);
          if (ask(mid) === offset) lo = mid;
          else hi = mid;
        }
        this.changes.push({ at: hi, offsetMs: nextOffset });
      }
      t = next;
      offset = nextOffset;
    }
  }

  at(instant: number): number {
    if (instant < this.from || instant > this.to) return this.zone.offset(instant) * 60 * SECOND;
    let lo = 0;
    let hi = this.changes.length;
    // The number of changes at or before instant.
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.changes[mid]?.at ?? Infinity) <= instant) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? this.firstOffsetMs : (this.changes[lo - 1]?.offsetMs ?? this.firstOffsetMs);
  }
}

function cronFields(cronTime: CronTime): CronFields {
  // toJSON(): second, minute, hour, dayOfMonth, month, dayOfWeek; "*" or the values (cron's own parse).
  const [second, minute, hour, dayOfMonth, month, dayOfWeek] = cronTime
    .toJSON()
    .map((text): Field => (text === '*' ? null : new Set(text.split(',').map(Number))));
  return {
    second: second ?? null,
    minute: minute ?? null,
    hour: hour ?? null,
    dayOfMonth: dayOfMonth ?? null,
    month: month ?? null,
    dayOfWeek: dayOfWeek ?? null,
  };
}

const has = (field: Field, value: number): boolean => field === null || field.has(value);

/** The smallest allowed value >= v (v itself when the field allows everything), or undefined. */
function atOrAfter(
  field: Field,
  sorted: readonly number[] | null,
  v: number,
  max: number,
): number | undefined {
  if (field === null || sorted === null) return v <= max ? v : undefined;
  return sorted.find((x) => x >= v);
}

/**
 * The first wall-clock time (a UTC-encoded millisecond count) strictly after `afterWall`
 * (floored to the second) that matches every field, or null past `limitWall`. What cron's
 * getNextDateFrom walks to, field by field (month, then day: day of month OR day of week when
 * both are restricted, as cron does; then hour, minute, second), jumping straight to the next
 * allowed value of a field instead of one unit at a time.
 */
function nextWallMatch(f: CronFields, afterWall: number, limitWall: number): number | null {
  const sorted = {
    hour: f.hour && [...f.hour].sort((a, b) => a - b),
    minute: f.minute && [...f.minute].sort((a, b) => a - b),
    second: f.second && [...f.second].sort((a, b) => a - b),
  };
  const first = Math.floor(afterWall / SECOND) * SECOND;
  let t = first;
  while (t <= limitWall) {
    const d = new Date(t);
    const year = d.getUTCFullYear();
    const month0 = d.getUTCMonth();
    if (!has(f.month, month0 + 1)) {
      t = Date.UTC(year, month0 + 1, 1);
      continue;
    }
    const dom = d.getUTCDate();
    const dow = d.getUTCDay();
    const domOk = f.dayOfMonth !== null && f.dayOfMonth.has(dom);
    const dowOk = f.dayOfWeek !== null && f.dayOfWeek.has(dow);
    const dayOk =
      f.dayOfMonth === null && f.dayOfWeek === null
        ? true
        : f.dayOfMonth === null
          ? dowOk
          : f.dayOfWeek === null
            ? domOk
            : domOk || dowOk;
    if (!dayOk) {
      t = Date.UTC(year, month0, dom + 1);
      continue;
    }
    const hour = d.getUTCHours();
    const h = atOrAfter(f.hour, sorted.hour, hour, 23);
    if (h === undefined) {
      t = Date.UTC(year, month0, dom + 1);
      continue;
    }
    if (h !== hour) {
      t = Date.UTC(year, month0, dom, h);
      continue;
    }
    const minute = d.getUTCMinutes();
    const m = atOrAfter(f.minute, sorted.minute, minute, 59);
    if (m === undefined) {
      t = Date.UTC(year, month0, dom, hour + 1);
      continue;
    }
    if (m !== minute) {
      t = Date.UTC(year, month0, dom, hour, m);
      continue;
    }
    const second = d.getUTCSeconds();
    // The start itself is never a match (strictly after).
    const sec = atOrAfter(f.second, sorted.second, t === first ? second + 1 : second, 59);
    if (sec === undefined) {
      t = Date.UTC(year, month0, dom, hour, minute + 1);
      continue;
    }
    return Date.UTC(year, month0, dom, hour, minute, sec);
  }
  return null;
}
