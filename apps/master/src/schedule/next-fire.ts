import { CronTime } from 'cron';

/**
 * The first fire time of a cron expression strictly after `after`, in the schedule's timezone
 * (5 fields, or 6 with seconds, as the `cron` package reads them). Throws on a bad expression or
 * timezone.
 */
export function nextFireTime(cron: string, timezone: string, after: Date): Date {
  const time = new CronTime(cron, timezone);
  return time.getNextDateFrom(after, timezone).toJSDate();
}
