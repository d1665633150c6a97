import { Inject, Injectable, Logger } from '@nestjs/common';
import { CLOCK, type Clock, type TimerHandle, unrefTimer } from '@porpoise/common';
import type { TaskFinishedEvent, TaskStartedEvent } from '@porpoise/rpc';
import { MasterEvents } from '../adapters/master-events';
import { OutboxStore } from '../adapters/worker-stores';
import type { OutboxRecord } from '../domain/records';
import { retryDelayMs } from '../domain/task-result';
import { EVENT_DEADLINE_MS, OUTBOX_MAX_AGE_MS, STARTED_EVENT_ATTEMPTS } from '../worker.constants';
import { aboutTask } from '../domain/task-log-ids';

interface Held {
  record: OutboxRecord;
  /** Resolves once the latest version of the record is on disk (never rejects). */
  persisted: Promise<void>;
  /** Delivery waits for this first (the TaskStarted of the same run), so events arrive in order. */
  after: Promise<void>;
  failures: number;
  timer: TimerHandle | undefined;
  inFlight: boolean;
  /** Redirected while a call was in flight: try again at once. */
  again: boolean;
}

export interface StartedTarget {
  address: string;
  event: TaskStartedEvent;
}

/**
 * Delivers task events to the owning master.
 *
 * TaskFinished goes through an outbox: the result is written to DATA_DIR/outbox first and deleted
 * only when a master answers ACCEPTED (persisted) or OBSOLETE (not wanted). NOT_OWNER or a failed
 * call keeps it and retries with backoff; a TakeOver redirects it to the new owner. At start the
 * outbox is reloaded, so neither a restart nor a SIGKILL of the worker loses a result.
 *
 * TaskStarted is best effort: a few tries, then the result alone tells the master.
 */
@Injectable()
export class ResultDeliveryService {
  private readonly logger = new Logger('WorkerResults');
  private readonly held = new Map<number, Held>();
  private started = false;
  private closed = false;

  constructor(
    private readonly outbox: OutboxStore,
    private readonly masters: MasterEvents,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /** Reloads results left by an earlier run of this worker; delivery starts with start(). */
  async loadOutbox(): Promise<number> {
    await this.outbox.init();
    const records = await this.outbox.loadAll();
    for (const [id, record] of records) {
      if (id !== record.event.taskInstanceId) {
        this.logger.error(`outbox record ${id}.json holds task ${record.event.taskInstanceId}; ignoring it`);
        continue;
      }
      this.held.set(id, this.entry(record, Promise.resolve()));
    }
    return records.size;
  }

  start(): void {
    this.started = true;
    for (const entry of this.held.values()) this.kick(entry);
  }

  /** How many results wait for an acknowledgement. */
  get pending(): number {
    return this.held.size;
  }

  holds(taskInstanceId: number): boolean {
    return this.held.has(taskInstanceId);
  }

  /**
   * Holds a result until a master acknowledges it. Registered at once (TakeOver and Dispatch see it
   * from now on); the returned promise resolves once it is on disk (it never rejects: a result that
   * cannot be written is still delivered from memory, and the failure is logged).
   */
  hold(
    masterAddress: string,
    event: TaskFinishedEvent,
    after: Promise<void> = Promise.resolve(),
  ): Promise<void> {
    const id = event.taskInstanceId;
    const existing = this.held.get(id);
    if (existing) {
      this.logger.warn(aboutTask(event, `task ${id} already has a held result; keeping the first one`));
      return existing.persisted;
    }
    const entry = this.entry({ version: 1, masterAddress, createdAtMs: this.clock.now(), event }, after);
    this.held.set(id, entry);
    entry.persisted = this.persist(entry);
    this.kick(entry);
    return entry.persisted;
  }

  /**
   * Points a held result at a new owner (TakeOver, or a repeated Dispatch from a newer epoch).
   * Returns the result, or undefined when none is held. An older epoch never redirects.
   */
  redirect(taskInstanceId: number, masterAddress: string, epoch: number): TaskFinishedEvent | undefined {
    const entry = this.held.get(taskInstanceId);
    if (!entry) return undefined;
    const { record } = entry;
    if (epoch < record.event.epoch) {
      this.logger.warn(
        aboutTask(
          record.event,
          `task ${taskInstanceId}: ignoring redirect to ${masterAddress} with epoch ${epoch} < ${record.event.epoch}`,
        ),
      );
      return { ...record.event };
    }
    if (record.masterAddress !== masterAddress || record.event.epoch !== epoch) {
      entry.record = { ...record, masterAddress, event: { ...record.event, epoch } };
      entry.persisted = this.persist(entry);
      entry.failures = 0;
      this.logger.log(
        aboutTask(
          record.event,
          `task ${taskInstanceId}: result redirected to ${masterAddress} (epoch ${epoch})`,
        ),
      );
      this.kick(entry);
    }
    return { ...entry.record.event };
  }

  /**
   * Best-effort TaskStarted: STARTED_EVENT_ATTEMPTS tries, reading the target afresh each time (a
   * TakeOver may redirect meanwhile). OBSOLETE means the run is not wanted: onObsolete ends it.
   */
  async sendStarted(target: () => StartedTarget, onObsolete: () => void): Promise<void> {
    for (let attempt = 1; attempt <= STARTED_EVENT_ATTEMPTS && !this.closed; attempt++) {
      const { address, event } = target();
      try {
        const ack = await this.masters.taskStarted(address, event, EVENT_DEADLINE_MS);
        if (ack.status === 'OBSOLETE') {
          this.logger.warn(
            aboutTask(
              event,
              `task ${event.taskInstanceId}: master ${address} answered OBSOLETE to TaskStarted`,
            ),
          );
          onObsolete();
        }
        return;
      } catch (err) {
        if (attempt === STARTED_EVENT_ATTEMPTS) {
          this.logger.warn(
            aboutTask(
              event,
              `task ${event.taskInstanceId}: TaskStarted not delivered: ${(err as Error).message}`,
            ),
          );
        } else await this.clock.sleep(retryDelayMs(attempt));
      }
    }
  }

  /** Graceful stop: tries every held result now and waits until all are delivered or timeoutMs passed. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    for (const entry of this.held.values()) this.kick(entry);
    while (this.held.size > 0 && this.clock.now() < deadline && !this.closed) await this.clock.sleep(50);
    if (this.held.size > 0) {
      this.logger.warn(
        `${this.held.size} result(s) not yet acknowledged; kept in the outbox for the next start`,
      );
    }
  }

  /** Stops delivering (results stay on disk) and closes the channels to masters. */
  close(): void {
    this.closed = true;
    for (const entry of this.held.values()) this.clock.clearTimeout(entry.timer);
    this.masters.close();
  }

  private entry(record: OutboxRecord, after: Promise<void>): Held {
    return {
      record,
      persisted: Promise.resolve(),
      after,
      failures: 0,
      timer: undefined,
      inFlight: false,
      again: false,
    };
  }

  private persist(entry: Held): Promise<void> {
    const id = entry.record.event.taskInstanceId;
    return this.outbox.write(id, entry.record).catch((err: Error) => {
      this.logger.error(
        aboutTask(
          entry.record.event,
          `task ${id}: result not written to the outbox (delivering from memory): ${err.message}`,
        ),
      );
    });
  }

  private kick(entry: Held): void {
    if (!this.started || this.closed) return;
    if (entry.inFlight) {
      entry.again = true;
      return;
    }
    this.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.inFlight = true;
    void this.deliver(entry).finally(() => {
      entry.inFlight = false;
    });
  }

  private async deliver(entry: Held): Promise<void> {
    // Not after entry.persisted: the call and the fsync overlap. A master that accepted the result
    // needs no copy on disk; one that did not hear it gets it from the outbox after a restart, and
    // a worker killed before the write still has the task's running marker (removed only once the
    // result is on disk), so its restart reports the run KILL and the master runs it again. The
    // removal an acknowledgement queues runs after the write (the store orders them per task).
    await entry.after;
    const id = entry.record.event.taskInstanceId;
    for (;;) {
      if (this.closed || this.held.get(id) !== entry) return;
      if (this.clock.now() - entry.record.createdAtMs > OUTBOX_MAX_AGE_MS) {
        this.logger.error(
          aboutTask(
            entry.record.event,
            `task ${id}: no master acknowledged its ${entry.record.event.state} result in ${OUTBOX_MAX_AGE_MS} ms; dropping it`,
          ),
        );
        return this.forget(id, entry);
      }
      entry.again = false;
      const { masterAddress, event } = entry.record;
      let why: string;
      try {
        const ack = await this.masters.taskFinished(masterAddress, event, EVENT_DEADLINE_MS);
        if (ack.status === 'ACCEPTED' || ack.status === 'OBSOLETE') {
          if (ack.status === 'OBSOLETE') {
            this.logger.log(aboutTask(event, `task ${id}: master ${masterAddress} answered OBSOLETE`));
          }
          return this.forget(id, entry);
        }
        why = `${ack.status}${ack.reason ? ` (${ack.reason})` : ''}`;
      } catch (err) {
        why = (err as Error).message;
      }
      if (this.closed) return;
      entry.failures++;
      if (entry.failures === 1 || entry.failures % 50 === 0) {
        this.logger.warn(
          aboutTask(
            entry.record.event,
            `task ${id}: result not accepted by ${masterAddress} (try ${entry.failures}): ${why}; keeping it`,
          ),
        );
      }
      if (entry.again) continue;
      entry.timer = unrefTimer(this.clock.setTimeout(() => this.kick(entry), retryDelayMs(entry.failures)));
      return;
    }
  }

  private async forget(id: number, entry: Held): Promise<void> {
    if (this.held.get(id) === entry) this.held.delete(id);
    this.clock.clearTimeout(entry.timer);
    try {
      await this.outbox.remove(id);
    } catch (err) {
      this.logger.error(
        aboutTask(
          entry.record.event,
          `task ${id}: delivered, but its outbox file was not removed: ${(err as Error).message}`,
        ),
      );
    }
  }
}
