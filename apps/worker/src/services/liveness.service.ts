import { closeSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  CLOCK,
  PORPOISE_CONFIG,
  type Clock,
  type TimerHandle,
  type WorkerConfig,
  unrefTimer,
} from '@porpoise/common';
import { TaskWatchdog } from '../adapters/task-watchdog';
import { parseUptimeCentis, type LivenessTimings } from '../domain/liveness';
import { aliveFilePath } from '../worker.config';
import { WorkerError } from '../worker.errors';
import { AdmissionService } from './admission.service';

/** Width of the in-place fallback record: space-padded, so the watchdog's `read` strips it. */
const RECORD_WIDTH = 20;

/**
 * The worker's proof of life for the task watchdogs: DATA_DIR/worker.alive holds the
 * CLOCK_BOOTTIME time (centiseconds since boot, read from /proc/uptime) of the latest touch,
 * rewritten every touch interval from the event loop itself, synchronously (a touch queued behind a
 * busy thread pool would look like a stall). A watchdog kills its task's process group when the
 * file is older than the deadline (see domain/liveness.ts): the event loop that should have
 * touched it is frozen, and the registry session it also keeps alive may expire soon.
 *
 * The file is replaced atomically (tmp + rename), so a watchdog never reads half a record; when
 * that fails (a full disk) the record is overwritten in place at a fixed width, which needs no
 * new blocks.
 */
@Injectable()
export class LivenessService {
  private readonly logger = new Logger('WorkerLiveness');
  readonly file: string;
  private readonly tmp: string;
  readonly timings: LivenessTimings;
  private timer: TimerHandle | undefined;
  private failing = false;
  private enabled = false;

  constructor(
    @Inject(PORPOISE_CONFIG) config: WorkerConfig,
    private readonly watchdog: TaskWatchdog,
    private readonly admission: AdmissionService,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.file = aliveFilePath(config);
    this.tmp = `${this.file}.tmp`;
    this.timings = watchdog.timings;
  }

  /**
   * Prepares the watchdogs, touches the file once (throwing when it cannot: every watchdog would
   * then kill its task at the deadline) and then every touch interval.
   */
  start(): void {
    this.enabled = this.watchdog.init();
    const t = this.timings;
    if (!this.enabled) {
      this.logger.error(
        'no /proc/uptime or /proc/self/stat: tasks run WITHOUT watchdogs, so a frozen worker cannot end them',
      );
    } else {
      if (!this.touch()) {
        throw new WorkerError(`cannot write the liveness file ${this.file}: the task watchdogs need it`);
      }
      this.logger.log(
        `task watchdogs: a task dies ${t.deadlineMs} ms after the worker's last sign of life ` +
          `(session timeout ${t.sessionTimeoutMs} ms - margin ${t.marginMs} ms); touched every ` +
          `${t.touchIntervalMs} ms, polled every ${t.pollMs} ms`,
      );
    }
    // The ticks also let Dispatch see a stall of the event loop (AdmissionService), watchdogs or not.
    this.admission.loopStarted();
    this.timer = unrefTimer(this.clock.setInterval(() => this.tick(), t.touchIntervalMs));
  }

  /** Whether tasks are supervised by watchdogs on this host. */
  get watchdogs(): boolean {
    return this.enabled;
  }

  stop(): void {
    this.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * A stall longer than the deadline is logged by the admission check (which may see it first,
   * when a queued Dispatch runs before this timer on waking) and refuses Dispatch until the registry
   * session is confirmed alive again.
   */
  private tick(): void {
    this.admission.observeLoop();
    if (this.enabled) this.touch();
  }

  /** Writes the current boot time; false when neither way of writing worked. */
  private touch(): boolean {
    let centis: number | null;
    try {
      centis = parseUptimeCentis(readFileSync('/proc/uptime', 'utf8'));
    } catch {
      centis = null;
    }
    if (centis === null) return this.failed(new Error('/proc/uptime is unreadable'));
    const record = `${String(centis).padStart(RECORD_WIDTH)}\n`;
    try {
      writeFileSync(this.tmp, record, { mode: 0o600 });
      renameSync(this.tmp, this.file);
    } catch (err) {
      try {
        const fd = openSync(this.file, 'r+');
        try {
          writeSync(fd, record, 0);
        } finally {
          closeSync(fd);
        }
      } catch {
        return this.failed(err as Error);
      }
    }
    if (this.failing) this.logger.log(`liveness file ${this.file} is written again`);
    this.failing = false;
    return true;
  }

  private failed(err: Error): false {
    if (!this.failing) {
      this.logger.error(
        `cannot touch the liveness file ${this.file}: ${err.message}; ` +
          `the watchdogs kill running tasks ${this.timings.deadlineMs} ms after the last touch`,
      );
    }
    this.failing = true;
    return false;
  }
}
