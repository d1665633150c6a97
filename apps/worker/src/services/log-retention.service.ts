import { Inject, Injectable, Logger } from '@nestjs/common';
import { CLOCK, PORPOISE_CONFIG, type Clock, type TimerHandle, type WorkerConfig } from '@porpoise/common';
import { TaskLogStore } from '../adapters/task-log-store';

/** How often the worker looks for task logs past the retention (and once at start). */
export const LOG_RETENTION_SWEEP_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Retention of task logs (DESIGN.md section 11, Bounds): the logs on this worker's disk last
 * written more than RETENTION_DAYS ago are deleted, at start and every hour. The masters prune the
 * instances and tasks on the same retention, so a log outlives its task by at most a sweep.
 */
@Injectable()
export class LogRetentionService {
  private readonly logger = new Logger('WorkerLogRetention');
  private timer: TimerHandle | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(
    private readonly logs: TaskLogStore,
    @Inject(PORPOISE_CONFIG) private readonly config: WorkerConfig,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /** Sweeps now (resolves when done) and every LOG_RETENTION_SWEEP_MS from now on. */
  async start(): Promise<void> {
    this.timer = this.clock.setInterval(() => void this.sweep(), LOG_RETENTION_SWEEP_MS);
    await this.sweep();
  }

  async stop(): Promise<void> {
    this.clock.clearInterval(this.timer);
    this.timer = undefined;
    await this.sweeping;
  }

  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        const cutoff = this.clock.now() - this.config.retentionDays * DAY_MS;
        const pruned = await this.logs.prune(cutoff);
        if (pruned > 0) {
          this.logger.log(`deleted ${pruned} task log(s) older than ${this.config.retentionDays} days`);
        }
      } catch (err) {
        this.logger.error(`task log retention failed: ${(err as Error).message}`);
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }
}
