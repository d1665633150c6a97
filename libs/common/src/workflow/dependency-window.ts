/**
 * The window a DEPENDENT task looks in (DESIGN.md section 9): the hour, day, week or month that
 * holds a run's schedule time, in the run's time zone, shifted by `offset` such intervals. Pure.
 *
 * - Calendar intervals follow the zone's wall clock: a day is local midnight to local midnight
 *   (23 or 25 hours long on a daylight-saving change), a month starts on its first day at
 *   midnight, a week on Monday at midnight (ISO 8601, as `$[week_first_day(...)]`).
 * - Hours are real hours: on a fall-back night the repeated hour is two windows, one per offset.
 * - The window is half-open, [fromMs, toMs): a run scheduled at exactly midnight belongs to the
 *   day that starts then.
 */
import { DateTime } from 'luxon';
import type { DependentInterval } from '../definition/definition-types';

export interface DependencyWindow {
  /** Inclusive, epoch ms. */
  readonly fromMs: number;
  /** Exclusive, epoch ms. */
  readonly toMs: number;
}

export function dependencyWindow(
  scheduleTimeMs: number,
  timezone: string,
  interval: DependentInterval,
  offset: number,
): DependencyWindow {
  const at = DateTime.fromMillis(scheduleTimeMs, { zone: timezone });
  if (!at.isValid) throw new RangeError(`invalid time zone ${JSON.stringify(timezone)}`);
  // luxon's startOf('week') is the ISO week (Monday) unless locale weeks are asked for.
  const start = at.startOf(interval);
  const unit = `${interval}s` as const;
  return {
    fromMs: start.plus({ [unit]: offset }).toMillis(),
    toMs: start.plus({ [unit]: offset + 1 }).toMillis(),
  };
}
