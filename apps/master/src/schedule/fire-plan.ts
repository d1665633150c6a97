import type { MisfirePolicy } from '@porpoise/dao';
import { nextFireTime } from './next-fire';

export interface FirePlanInput {
  readonly cron: string;
  readonly timezone: string;
  /** The schedule's cursor (next_fire_time): the first fire time not handled yet. */
  readonly cursorMs: number;
  /** The database's now() (never a process clock). */
  readonly dbNowMs: number;
  readonly startTimeMs: number | null;
  readonly endTimeMs: number | null;
  readonly policy: MisfirePolicy;
  /** A due fire time older than dbNow - this is a misfire (SCHEDULE_MISFIRE_THRESHOLD_MS). */
  readonly misfireThresholdMs: number;
  /** RUN_ALL: at most this many runs per fire statement; the rest wait for the next one. */
  readonly maxRunsPerFire: number;
  /** Any policy: at most this many ledger rows (run or skipped) per fire statement. */
  readonly maxRecordsPerFire: number;
}

export interface PlannedFire {
  readonly timeMs: number;
  /** true: FIRED, one run; false: recorded MISFIRE_SKIPPED. */
  readonly run: boolean;
}

export interface FirePlan {
  /** The due fire times this fire handles, oldest first. */
  readonly fires: readonly PlannedFire[];
  /** The new cursor: the first fire time not handled (it may be past endTime: never due again). */
  readonly cursorNewMs: number;
  /** More fire times are already due after cursorNew (a capped fire): fire again at once. */
  readonly more: boolean;
}

/**
 * What one fire of a due schedule does, decided from the database's clock alone. Pure apart
 * from the `cron` package's arithmetic.
 *
 * The due fire times are the cursor and the cron's times after it, up to dbNow, inside
 * [startTime, endTime] (a time before startTime is passed over without a record; nothing after
 * endTime is due). A due time older than dbNow - misfireThresholdMs is late (a misfire: no master
 * ran then); the others are on time and always run. For the late ones:
 * - RUN_ALL: every late time runs, at most maxRunsPerFire per fire (oldest first; the cursor
 *   stops at the first one not handled, so the next fire goes on from there);
 * - SKIP: every late time is recorded MISFIRE_SKIPPED;
 * - RUN_ONCE: the latest late time runs, the others are recorded MISFIRE_SKIPPED.
 * A fire records at most maxRecordsPerFire times (a long outage of a frequent schedule is
 * handled over several fires); RUN_ONCE's run is then the latest late time of the last of them.
 */
export function planFires(input: FirePlanInput): FirePlan {
  const limit =
    input.policy === 'RUN_ALL'
      ? Math.max(1, Math.min(input.maxRunsPerFire, input.maxRecordsPerFire))
      : Math.max(1, input.maxRecordsPerFire);
  const inWindow = (t: number) => input.endTimeMs === null || t <= input.endTimeMs;
  const next = (t: number) => nextFireTime(input.cron, input.timezone, new Date(t)).getTime();
  // Due times, up to limit + 1 (the one past the limit tells whether more are due).
  const due: number[] = [];
  let t = input.cursorMs;
  // Times before startTime are passed over; bounded so that a far startTime cannot spin here.
  let passedOver = 0;
  while (t <= input.dbNowMs && inWindow(t) && due.length <= limit) {
    if (input.startTimeMs === null || t >= input.startTimeMs) due.push(t);
    else if (++passedOver > 100_000) break;
    t = next(t);
  }
  const more = due.length > limit;
  const taken = more ? due.slice(0, limit) : due;
  const cursorNewMs = more ? (due[limit] ?? t) : t;
  const lateBefore = input.dbNowMs - input.misfireThresholdMs;
  const late = (x: number) => x < lateBefore;
  let fires: PlannedFire[];
  switch (input.policy) {
    case 'RUN_ALL':
      fires = taken.map((timeMs) => ({ timeMs, run: true }));
      break;
    case 'SKIP':
      fires = taken.map((timeMs) => ({ timeMs, run: !late(timeMs) }));
      break;
    case 'RUN_ONCE': {
      // The latest late time overall: not in this fire if a later due time is late too.
      const laterLate = more && late(cursorNewMs);
      const lastLate = laterLate ? undefined : [...taken].reverse().find(late);
      fires = taken.map((timeMs) => ({ timeMs, run: !late(timeMs) || timeMs === lastLate }));
      break;
    }
  }
  return { fires, cursorNewMs, more };
}
