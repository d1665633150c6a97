import { mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { PORPOISE_CONFIG, type WorkerConfig } from '@porpoise/common';
import type { ReadLogResponse } from '@porpoise/rpc';
import type { TaskLogSink } from '../task-types/task-type';

const NUMERIC = /^[1-9]\d{0,14}$/;
const LOG_FILE = /^([1-9]\d{0,14})\.log$/;
/** How many instance directories openForAppend remembers as existing. */
const KNOWN_DIRS = 512;

/**
 * Task logs: DATA_DIR/logs/{workflowInstanceId}/{taskInstanceId}.log. ReadLog names only the
 * task, so an index taskInstanceId → path is kept in memory, rebuilt at start by scanning the
 * logs directory (the layout itself is the index: nothing to keep consistent after a crash).
 * The index also tells Dispatch which tasks this worker has run before.
 */
@Injectable()
export class TaskLogStore {
  readonly root: string;
  private readonly logger = new Logger('WorkerTaskLogs');
  /** taskInstanceId → workflowInstanceId (the path follows from both; numbers keep the index small). */
  private readonly index = new Map<number, number>();
  /** Instance directories known to exist (the latest few hundred: a bounded cache). */
  private readonly dirs = new Set<number>();

  constructor(@Inject(PORPOISE_CONFIG) config: WorkerConfig) {
    this.root = join(resolve(config.dataDir), 'logs');
  }

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    for (const dir of await readdir(this.root, { withFileTypes: true })) {
      if (!dir.isDirectory() || !NUMERIC.test(dir.name)) continue;
      for (const name of await readdir(join(this.root, dir.name))) {
        const m = LOG_FILE.exec(name);
        if (m) this.index.set(Number(m[1]), Number(dir.name));
      }
    }
  }

  private rememberDir(workflowInstanceId: number): void {
    if (this.dirs.has(workflowInstanceId)) return;
    if (this.dirs.size >= KNOWN_DIRS) this.dirs.delete(this.dirs.values().next().value as number);
    this.dirs.add(workflowInstanceId);
  }

  get size(): number {
    return this.index.size;
  }

  has(taskInstanceId: number): boolean {
    return this.index.has(taskInstanceId);
  }

  pathOf(workflowInstanceId: number, taskInstanceId: number): string {
    return join(this.root, String(workflowInstanceId), `${taskInstanceId}.log`);
  }

  /** Creates (or reopens) the task's log for appending and records it in the index. */
  async openForAppend(workflowInstanceId: number, taskInstanceId: number): Promise<TaskLogFile> {
    const path = this.pathOf(workflowInstanceId, taskInstanceId);
    const dir = join(path, '..');
    let handle: FileHandle;
    // The instance's directory is made once (every task of the instance after the first saves
    // a call), and again when it went away meanwhile (someone cleaned the logs).
    if (!this.dirs.has(workflowInstanceId)) await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      handle = await open(path, 'a', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdir(dir, { recursive: true, mode: 0o700 });
      handle = await open(path, 'a', 0o600);
    }
    this.rememberDir(workflowInstanceId);
    this.index.set(taskInstanceId, workflowInstanceId);
    try {
      return new TaskLogFile(path, handle, (await handle.stat()).size, this.logger);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /**
   * Up to `limit` bytes from `offset`. eof is true when the answer reaches the end of what the file
   * holds now (a running task may write more later).
   */
  async read(taskInstanceId: number, offset: number, limit: number): Promise<ReadLogResponse> {
    const workflowInstanceId = this.index.get(taskInstanceId);
    const notFound: ReadLogResponse = { found: false, content: Buffer.alloc(0), nextOffset: 0, eof: true };
    if (workflowInstanceId === undefined) return notFound;
    const path = this.pathOf(workflowInstanceId, taskInstanceId);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return notFound;
      throw err;
    }
    try {
      const { size } = await handle.stat();
      const length = Math.max(0, Math.min(limit, size - offset));
      const content = Buffer.alloc(length);
      let read = 0;
      while (read < length) {
        const { bytesRead } = await handle.read(content, read, length - read, offset + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      const nextOffset = offset + read;
      return { found: true, content: content.subarray(0, read), nextOffset, eof: nextOffset >= size };
    } finally {
      await handle.close();
    }
  }
}

/** Bytes read at a time when scanning a log for lines. */
const SCAN_CHUNK_BYTES = 64 * 1024;

/**
 * One run's open log: the descriptor a child writes to, ordered appends from the worker, and a
 * line scanner over what the run wrote (from the size the file had when the run began).
 */
export class TaskLogFile implements TaskLogSink {
  private queue: Promise<void> = Promise.resolve();
  private writeFailed = false;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly startOffset: number,
    private readonly logger: Pick<Logger, 'error'>,
  ) {}

  get fd(): number {
    return this.handle.fd;
  }

  write(text: string | Uint8Array): Promise<void> {
    // FileHandle writes must not overlap: each waits for the one before.
    this.queue = this.queue.then(async () => {
      try {
        await this.handle.write(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
      } catch (err) {
        if (!this.writeFailed) this.logger.error(`cannot write to ${this.path}: ${(err as Error).message}`);
        this.writeFailed = true;
      }
    });
    return this.queue;
  }

  /**
   * Reads the file in chunks, so memory stays bounded whatever the task printed: a line longer
   * than maxLineBytes is dropped as it grows, never held whole.
   */
  async *lines(maxLineBytes: number): AsyncIterable<string> {
    await this.queue;
    // Most runs print nothing: one stat instead of opening the file to read nothing.
    if ((await this.handle.stat()).size <= this.startOffset) return;
    const reader = await open(this.path, 'r');
    try {
      const chunk = Buffer.alloc(SCAN_CHUNK_BYTES);
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let skipping = false;
      let position = this.startOffset;
      for (;;) {
        const { bytesRead } = await reader.read(chunk, 0, chunk.length, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        let from = 0;
        while (from < bytesRead) {
          const nl = chunk.indexOf(0x0a, from);
          const end = nl === -1 || nl >= bytesRead ? bytesRead : nl;
          if (!skipping) {
            pending.push(Buffer.from(chunk.subarray(from, end)));
            pendingBytes += end - from;
            if (pendingBytes > maxLineBytes) {
              skipping = true;
              pending = [];
              pendingBytes = 0;
            }
          }
          if (end === bytesRead) break;
          if (!skipping) yield lineText(pending);
          pending = [];
          pendingBytes = 0;
          skipping = false;
          from = end + 1;
        }
      }
      if (!skipping && pendingBytes > 0) yield lineText(pending);
    } finally {
      await reader.close();
    }
  }

  /** Waits for the writes queued so far, then closes the file. */
  async close(): Promise<void> {
    await this.queue;
    await this.handle.close();
  }
}

function lineText(parts: Buffer[]): string {
  const line = Buffer.concat(parts).toString('utf8');
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
