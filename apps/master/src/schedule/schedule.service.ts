import { CLOCK, type Clock, type TimerHandle } from '@porpoise/common';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { ScheduleRepository, type DueSchedule } from '@porpoise/dao';
import { PgNotificationListener } from '../db/pg-notification-listener.service';
import { MASTER_OPTIONS, SCHEDULE_CHANNEL, type MasterOptions } from '../master.constants';
import { SessionStateService } from '../registry/session-state.service';
import { planFires } from './fire-plan';
import { nextFireTime } from './next-fire';

const BATCH = 50;
/** A fire time this near (ms) is waited for instead of the whole tick. */
const WAKE_MARGIN_MS = 5;

/**
 * Cron schedules (DESIGN.md section 10). Every master looks for due schedules at least once per
 * tick, by the database's clock only; each fire is one statement (ScheduleRepository.fire): a
 * compare-and-set of the cursor and the revision, then the fire times claimed in the schedule_fire
 * ledger, whose primary key makes each (schedule, fire time) run at most once, whichever masters
 * race. Fire times missed while no master ran are handled by the schedule's misfire policy
 * (fire-plan.ts). The process clock only times the sleep between ticks. A schedule whose cron or
 * timezone cannot be evaluated is logged once and left out until it is changed (a new revision).
 */
@Injectable()
export class ScheduleService {
  private readonly logger = new Logger('Schedules');
  private timer: TimerHandle | undefined;
  private running = false;
  /** Set by stop(): a pass under way fires nothing more. */
  private stopping = false;
  private tick: Promise<void> | undefined;
  /** `${id}:${revision}` → why it cannot be evaluated. */
  private readonly badSchedules = new Map<string, { id: number; revision: number; message: string }>();
  private failing = false;
  /** A change arrived during a pass: look again at once after it. */
  private woken = false;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(
    @Inject(MASTER_OPTIONS) private readonly options: MasterOptions,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(ScheduleRepository) private readonly schedules: ScheduleRepository,
    @Inject(SessionStateService) private readonly session: SessionStateService,
    @Inject(PgNotificationListener) private readonly listener?: PgNotificationListener,
  ) {}

  start(): void {
    this.running = true;
    this.stopping = false;
    if (this.listener) {
      this.unsubscribe.push(
        this.listener.on(SCHEDULE_CHANNEL, () => this.wake()),
        this.listener.onConnected(() => this.wake()),
      );
    }
    this.schedule(this.options.scheduleTickMs);
  }

  /** A schedule was created or changed: look now rather than at the next tick. */
  private wake(): void {
    if (!this.running) return;
    if (this.tick) {
      this.woken = true;
      return;
    }
    this.clock.clearTimeout(this.timer);
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping = true;
    for (const u of this.unsubscribe.splice(0)) u();
    this.clock.clearTimeout(this.timer);
    await this.tick;
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = this.clock.setTimeout(() => {
      this.tick = this.fireDue()
        .catch((): number => this.options.scheduleTickMs)
        .then((next) => {
          this.tick = undefined;
          const now = this.woken ? 0 : next;
          this.woken = false;
          this.schedule(now);
        });
    }, ms);
  }

  /**
   * One pass over the due schedules. Returns how long to sleep before the next: the tick, or
   * less when a cursor comes sooner by the database's clock, or 0 when a capped fire left more.
   */
  async fireDue(): Promise<number> {
    const tickMs = this.options.scheduleTickMs;
    if (!this.session.canStartWork()) return tickMs;
    let due;
    try {
      due = await this.schedules.due(BATCH, [...this.badSchedules.values()]);
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger.error(`reading schedules failed: ${(err as Error).message}`);
      this.failing = true;
      return tickMs;
    }
    let again = due.schedules.length === BATCH;
    for (const s of due.schedules) {
      if (this.stopping || !this.session.canStartWork()) return tickMs;
      try {
        again = (await this.fireOne(s, due.dbNowMs)) || again;
      } catch (err) {
        this.logger.error(`firing schedule ${s.id} failed: ${(err as Error).message}`);
      }
    }
    if (again) return 0;
    if (due.nextDueMs === null) return tickMs;
    return Math.max(0, Math.min(tickMs, due.nextDueMs - due.dbNowMs + WAKE_MARGIN_MS));
  }

  /** True when more fire times of it are due at once (a capped fire). */
  private async fireOne(s: DueSchedule, dbNowMs: number): Promise<boolean> {
    const key = `${s.id}:${s.revision}`;
    // Evaluating the cron: a failure here is the schedule's, not the database's.
    let plan: ReturnType<typeof planFires> | undefined;
    let first: Date | undefined;
    try {
      if (s.nextFireTime === null) {
        const from = Math.max(dbNowMs, (s.startTime?.getTime() ?? 0) - 1);
        first = nextFireTime(s.cron, s.timezone, new Date(from));
      } else {
        plan = planFires({
          cron: s.cron,
          timezone: s.timezone,
          cursorMs: s.nextFireTime.getTime(),
          dbNowMs,
          startTimeMs: s.startTime?.getTime() ?? null,
          endTimeMs: s.endTime?.getTime() ?? null,
          policy: s.misfirePolicy,
          misfireThresholdMs: this.options.scheduleMisfireThresholdMs,
          maxRunsPerFire: this.options.scheduleMaxRunsPerFire,
          maxRecordsPerFire: this.options.scheduleMaxRecordsPerFire,
        });
      }
      this.badSchedules.delete(key);
    } catch (err) {
      const message = `schedule ${s.id} (${JSON.stringify(s.cron)}, ${s.timezone}) cannot be evaluated: ${(err as Error).message}`;
      if (this.badSchedules.get(key)?.message !== message) this.logger.warn(message);
      this.badSchedules.set(key, { id: s.id, revision: s.revision, message });
      return false;
    }
    if (first !== undefined) {
      await this.schedules.initialize(s.id, s.revision, first);
      return false;
    }
    if (plan === undefined || s.nextFireText === null) return false;
    const outcome = await this.schedules.fire({
      scheduleId: s.id,
      revision: s.revision,
      cursorText: s.nextFireText,
      cursorNew: new Date(plan.cursorNewMs),
      decidedAtMs: dbNowMs,
      fires: plan.fires.map((f) => ({ time: new Date(f.timeMs), run: f.run })),
    });
    if (!outcome.applied) return false;
    for (const f of outcome.fired) {
      this.logger.log(`schedule ${s.id} fired for ${f.time.toISOString()}: instance ${f.instanceId}`);
    }
    if (outcome.skipped > 0) {
      this.logger.log(
        `schedule ${s.id}: ${outcome.skipped} missed fire time(s) recorded MISFIRE_SKIPPED (${s.misfirePolicy})`,
      );
    }
    return plan.more;
  }
}
