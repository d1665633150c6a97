import { readFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { CLOCK, PORPOISE_CONFIG, type Clock, type WorkerConfig } from '@porpoise/common';
import { parseSupersededRecord, type SupersededRecord } from '../domain/records';
import { SUPERSEDED_MAX_AGE_MS, SUPERSEDED_MAX_ENTRIES } from '../worker.constants';
import { writeFileAtomic } from './json-record-store';

interface Entry {
  epoch: number;
  atMs: number;
}

/**
 * The epochs of the TakeOvers this worker answered UNKNOWN, per task instance id. A successor
 * master that hears UNKNOWN runs the task again as a new attempt (under a new task id); a Dispatch
 * of the old task that arrives afterwards from that epoch or an older one (its master froze while
 * sending it, or the call was cut mid-way and the master asked TakeOver) must not start a stale run
 * beside the re-run, so the executor refuses it as "superseded" (domain/admission.ts).
 *
 * Kept in memory (recorded synchronously, before TakeOver answers) and in
 * DATA_DIR/superseded.json (written before TakeOver answers, coalesced, atomically), so a worker
 * restart in between forgets nothing. Entries older than SUPERSEDED_MAX_AGE_MS, or beyond the
 * newest SUPERSEDED_MAX_ENTRIES, are dropped.
 */
@Injectable()
export class SupersededStore {
  private readonly logger = new Logger('WorkerSuperseded');
  private readonly entries = new Map<number, Entry>();
  readonly file: string;
  private chain: Promise<void> = Promise.resolve();
  /** A write queued but not yet serialised: a new record rides along with it. */
  private queued: Promise<void> | undefined;

  constructor(
    @Inject(PORPOISE_CONFIG) config: WorkerConfig,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.file = join(resolve(config.dataDir), 'superseded.json');
  }

  /** Reads what an earlier run recorded; an unreadable file is set aside (`.corrupt`) and reported. */
  async load(): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let record: SupersededRecord;
    try {
      record = parseSupersededRecord(this.file, text);
    } catch (err) {
      this.logger.error(`ignoring unreadable ${this.file}: ${(err as Error).message}`);
      await rename(this.file, `${this.file}.corrupt`).catch(() => undefined);
      return 0;
    }
    for (const e of [...record.entries].sort((a, b) => a.atMs - b.atMs)) {
      this.remember(e.taskInstanceId, e.epoch, e.atMs);
    }
    this.prune(this.clock.now());
    return this.entries.size;
  }

  /** The epoch of the newest TakeOver answered UNKNOWN for the task, if any. */
  epochOf(taskInstanceId: number): number | undefined {
    return this.entries.get(taskInstanceId)?.epoch;
  }

  /**
   * Records at once (later Dispatches see it from now on) and resolves once it is on disk. Never
   * rejects: a failed write is logged, and the entry still guards from memory.
   */
  record(taskInstanceId: number, epoch: number): Promise<void> {
    const known = this.entries.get(taskInstanceId);
    if (known && known.epoch >= epoch) return this.queued ?? this.chain;
    const now = this.clock.now();
    this.remember(taskInstanceId, epoch, now);
    this.prune(now);
    return this.save();
  }

  private remember(taskInstanceId: number, epoch: number, atMs: number): void {
    const known = this.entries.get(taskInstanceId);
    // Re-inserted, so the map's order is the order of the last record (oldest first).
    this.entries.delete(taskInstanceId);
    this.entries.set(taskInstanceId, { epoch: Math.max(epoch, known?.epoch ?? 0), atMs });
  }

  private prune(now: number): void {
    for (const [id, e] of this.entries) {
      if (this.entries.size <= SUPERSEDED_MAX_ENTRIES && now - e.atMs <= SUPERSEDED_MAX_AGE_MS) break;
      this.entries.delete(id);
    }
  }

  private save(): Promise<void> {
    if (this.queued) return this.queued;
    const write = this.chain.then(async () => {
      // Serialised now: everything recorded before this point is in this write, later ones queue.
      this.queued = undefined;
      const record: SupersededRecord = {
        version: 1,
        entries: [...this.entries].map(([taskInstanceId, e]) => ({ taskInstanceId, ...e })),
      };
      await writeFileAtomic(this.file, JSON.stringify(record)).catch((err: Error) => {
        this.logger.error(`${this.file} not written (kept in memory): ${err.message}`);
      });
    });
    this.queued = write;
    this.chain = write;
    return write;
  }
}
