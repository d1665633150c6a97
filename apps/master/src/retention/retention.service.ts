import { Inject, Injectable, Logger } from '@nestjs/common';
import { CLOCK, PORPOISE_CONFIG, type Clock, type MasterConfig, type TimerHandle } from '@porpoise/common';
import { RetentionRepository } from '@porpoise/dao';
import { sweepInBatches, type SweepOutcome } from './retention-sweep';

/** How often a master sweeps (and once at start). */
export const RETENTION_SWEEP_MS = 60 * 60 * 1000;
/** Rows per statement: short transactions, short row locks, whatever is due. */
export const RETENTION_BATCH_SIZE = 1000;

/**
 * Retention (DESIGN.md section 11, Bounds): deletes ended instances (their tasks, commands and
 * queue rows with them) older than RETENTION_DAYS, idempotency keys older than 24 hours and
 * audit rows older than AUDIT_RETENTION_DAYS, at start and every hour. Every master runs the sweep; each batch is one statement under a
 * transaction-level advisory lock (RetentionRepository), so one master deletes at a time and a
 * master that finds the lock taken leaves the sweep to the holder. Workers prune their task log
 * files on the same retention.
 */
@Injectable()
export class RetentionService {
  private readonly logger = new Logger('Retention');
  private timer: TimerHandle | undefined;
  private sweeping: Promise<void> | undefined;
  private running = false;

  constructor(
    @Inject(RetentionRepository) private readonly retention: RetentionRepository,
    @Inject(PORPOISE_CONFIG) private readonly config: MasterConfig,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  start(): void {
    this.running = true;
    this.timer = this.clock.setInterval(() => void this.sweep(), RETENTION_SWEEP_MS);
    void this.sweep();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.clock.clearInterval(this.timer);
    this.timer = undefined;
    await this.sweeping;
  }

  /** One sweep (a sweep already under way is joined, not doubled). */
  sweep(): Promise<void> {
    this.sweeping ??= this.runSweep().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async runSweep(): Promise<void> {
    const keepGoing = () => this.running;
    try {
      const instances = await sweepInBatches(
        () => this.retention.deleteEndedInstances(this.config.retentionDays, RETENTION_BATCH_SIZE),
        RETENTION_BATCH_SIZE,
        keepGoing,
      );
      const keys = await sweepInBatches(
        () => this.retention.deleteExpiredIdempotencyKeys(RETENTION_BATCH_SIZE),
        RETENTION_BATCH_SIZE,
        keepGoing,
      );
      const audit = await sweepInBatches(
        () => this.retention.deleteOldAuditEvents(this.config.auditRetentionDays, RETENTION_BATCH_SIZE),
        RETENTION_BATCH_SIZE,
        keepGoing,
      );
      this.report(instances, `ended instance(s) older than ${this.config.retentionDays} days`);
      this.report(keys, 'expired idempotency key(s)');
      this.report(audit, `audit row(s) older than ${this.config.auditRetentionDays} days`);
    } catch (err) {
      // The next sweep tries again; nothing is half-deleted (each batch is one statement).
      this.logger.warn(`retention sweep failed: ${(err as Error).message}`);
    }
  }

  private report(outcome: SweepOutcome, what: string): void {
    if (outcome.deleted > 0) {
      this.logger.log(`deleted ${outcome.deleted} ${what} in ${outcome.batches} batch(es)`);
    }
  }
}
