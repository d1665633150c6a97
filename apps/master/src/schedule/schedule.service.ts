import { CLOCK, type Clock, type TimerHandle } from '@porpoise/common';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { MASTER_OPTIONS, type MasterOptions } from '../master.constants';
import { SessionStateService } from '../registry/session-state.service';
import { nextFireTime } from './next-fire';
import { ScheduleRepository, type DueSchedule } from './schedule.repository';

const BATCH = 50;

/**
 * Cron schedules. Every master looks for due schedules once per tick; each due fire is a
 * compare-and-set on next_fire_time, so exactly one master creates the run. Fire times missed
 * while no master ran are not replayed: the schedule fires once for the oldest missed time and
 * continues from the next time after now. A schedule with a bad cron or timezone is logged once
 * and left out from then on (schedules are not edited in place; a new one replaces it).
 */
@Injectable()
export class ScheduleService {
  private readonly logger = new Logger('Schedules');
  private timer: TimerHandle | undefined;
  private running = false;
  private tick: Promise<void> | undefined;
  private readonly badSchedules = new Map<number, string>();
  private failing = false;

  constructor(
    @Inject(MASTER_OPTIONS) private readonly options: MasterOptions,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(ScheduleRepository) private readonly schedules: ScheduleRepository,
    @Inject(SessionStateService) private readonly session: SessionStateService,
  ) {}

  start(): void {
    this.running = true;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.clock.clearTimeout(this.timer);
    await this.tick;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = this.clock.setTimeout(() => {
      this.tick = this.fireDue().finally(() => {
        this.tick = undefined;
        this.schedule();
      });
    }, this.options.scheduleTickMs);
  }

  /** One pass; exported for tests through the service. */
  async fireDue(): Promise<void> {
    if (!this.session.canStartWork()) return;
    let due: DueSchedule[];
    try {
      due = await this.schedules.due(BATCH, [...this.badSchedules.keys()]);
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger.error(`reading schedules failed: ${(err as Error).message}`);
      this.failing = true;
      return;
    }
    for (const s of due) {
      if (!this.running) return;
      let next: Date;
      try {
        const after = new Date(Math.max(this.clock.now(), s.nextFireTime?.getTime() ?? 0));
        next = nextFireTime(s.cron, s.timezone, after);
        this.badSchedules.delete(s.id);
      } catch (err) {
        const message = `schedule ${s.id} (${JSON.stringify(s.cron)}, ${s.timezone}) cannot be evaluated: ${(err as Error).message}`;
        if (this.badSchedules.get(s.id) !== message) this.logger.warn(message);
        this.badSchedules.set(s.id, message);
        continue;
      }
      try {
        if (s.nextFireTime === null || s.nextFireText === null) {
          await this.schedules.initialize(s.id, next);
          continue;
        }
        const instanceId = await this.schedules.fire(s.id, s.nextFireText, next);
        if (instanceId !== undefined) {
          this.logger.log(
            `schedule ${s.id} fired for ${s.nextFireTime.toISOString()}: instance ${instanceId}; next ${next.toISOString()}`,
          );
        }
      } catch (err) {
        this.logger.error(`firing schedule ${s.id} failed: ${(err as Error).message}`);
      }
    }
  }
}
