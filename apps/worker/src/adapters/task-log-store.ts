import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, open, readdir, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { PORPOISE_CONFIG, type Clock, type WorkerConfig } from '@porpoise/common';
import type { LogChunk, ReadLogResponse } from '@porpoise/rpc';
import type { ChildOutput, TaskLogSink } from '../task-types/task-type';

const NUMERIC = /^[1-9]\d{0,14}$/;
const LOG_FILE = /^([1-9]\d{0,14})\.log$/;
/** How many instance directories openForAppend remembers as existing. */
const KNOWN_DIRS = 512;
/** A Unix socket path longer than this does not fit in sockaddr_un (108 bytes with its NUL). */
const MAX_SOCKET_PATH = 100;

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
  /** TASK_LOG_MAX_BYTES. */
  readonly maxBytes: number;
  /** Tasks whose log is open for a run now: never pruned, however old their last write. */
  private readonly open = new Map<number, number>();
  /** Where the short-lived sockets of child output are made (a private directory, made once). */
  private socketDir: Promise<string> | undefined;

  constructor(@Inject(PORPOISE_CONFIG) config: WorkerConfig) {
    this.root = join(resolve(config.dataDir), 'logs');
    this.maxBytes = config.taskLogMaxBytes;
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

  /**
   * Removes the log of a run that never began (nothing was written to it) and forgets it, so a
   * Dispatch of that task is not taken for one that already ran. A log with content, or one open
   * again, is kept.
   */
  async discard(workflowInstanceId: number, taskInstanceId: number): Promise<void> {
    if (this.open.has(taskInstanceId)) return;
    const path = this.pathOf(workflowInstanceId, taskInstanceId);
    try {
      if ((await stat(path)).size > 0) return;
      await unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (!this.open.has(taskInstanceId)) this.index.delete(taskInstanceId);
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
    this.open.set(taskInstanceId, (this.open.get(taskInstanceId) ?? 0) + 1);
    const closed = () => {
      const n = (this.open.get(taskInstanceId) ?? 1) - 1;
      if (n > 0) this.open.set(taskInstanceId, n);
      else this.open.delete(taskInstanceId);
    };
    try {
      const size = (await handle.stat()).size;
      return new TaskLogFile(
        path,
        handle,
        size,
        this.maxBytes,
        this.logger,
        (id) => this.socketPair(id),
        closed,
      );
    } catch (err) {
      closed();
      await handle.close();
      throw err;
    }
  }

  /**
   * Retention (RETENTION_DAYS): deletes the task logs last written before `cutoffMs` (epoch ms,
   * by the file's mtime), except those open for a run, and the instance directories left empty.
   * Returns how many logs went. The index forgets them (ReadLog answers found=false; a Dispatch
   * of such an old task id would run it again, but its master pruned the task long before).
   */
  async prune(cutoffMs: number): Promise<number> {
    let pruned = 0;
    for (const dir of await readdir(this.root, { withFileTypes: true })) {
      if (!dir.isDirectory() || !NUMERIC.test(dir.name)) continue;
      const dirPath = join(this.root, dir.name);
      let names: string[];
      try {
        names = await readdir(dirPath);
      } catch {
        continue;
      }
      let left = names.length;
      for (const name of names) {
        const m = LOG_FILE.exec(name);
        if (!m || this.open.has(Number(m[1]))) continue;
        const path = join(dirPath, name);
        try {
          if ((await stat(path)).mtimeMs >= cutoffMs) continue;
          await unlink(path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
            this.logger.warn(`cannot prune ${path}: ${(err as Error).message}`);
            continue;
          }
        }
        this.index.delete(Number(m[1]));
        left--;
        pruned++;
      }
      if (left === 0) {
        this.dirs.delete(Number(dir.name));
        // A task that opened its log meanwhile keeps the directory (ENOTEMPTY): fine.
        await rmdir(dirPath).catch(() => undefined);
      }
    }
    return pruned;
  }

  /**
   * A connected pair of Unix stream sockets: [the child's end, the worker's end]. Node has no
   * pipe(2); a socket pair is what it gives children for 'pipe' stdio anyway. The listening socket
   * lives for one accept in a directory only the worker's user can enter (the logs directory, or
   * a private temporary one when that path is too long for a socket), so nobody else connects.
   */
  private async socketPair(taskInstanceId: number): Promise<[Socket, Socket]> {
    const dir = await (this.socketDir ??= this.makeSocketDir());
    const path = join(dir, `${taskInstanceId}-${randomBytes(4).toString('hex')}.sock`);
    const server = createServer();
    try {
      server.listen(path);
      await once(server, 'listening');
      const client = connect(path);
      const [[worker]] = await Promise.all([
        once(server, 'connection') as Promise<[Socket]>,
        once(client, 'connect'),
      ]);
      return [client, worker];
    } finally {
      server.close();
      await rm(path, { force: true });
    }
  }

  private async makeSocketDir(): Promise<string> {
    const inLogs = join(this.root, '.sockets');
    if (inLogs.length + 32 <= MAX_SOCKET_PATH) {
      await mkdir(inLogs, { recursive: true, mode: 0o700 });
      return inLogs;
    }
    return mkdtemp(join(tmpdir(), 'porpoise-output-'));
  }

  /**
   * The log from `offset` to its size now, as StreamLog sends it: a first message with the size,
   * then chunks read one at a time as the consumer pulls (one chunk in memory). undefined when
   * there is no such log. The file stays open until the iteration ends (or is returned early).
   */
  async stream(
    taskInstanceId: number,
    offset: number,
    chunkBytes: number,
  ): Promise<AsyncIterable<LogChunk> | undefined> {
    const workflowInstanceId = this.index.get(taskInstanceId);
    if (workflowInstanceId === undefined) return undefined;
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(workflowInstanceId, taskInstanceId), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let size: number;
    try {
      size = Math.max(0, (await handle.stat()).size - offset);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return (async function* chunks(): AsyncGenerator<LogChunk> {
      try {
        yield { size, content: Buffer.alloc(0) };
        let sent = 0;
        while (sent < size) {
          const buffer = Buffer.alloc(Math.min(chunkBytes, size - sent));
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset + sent);
          // Shorter than it was (deleted under us): the consumer sees fewer bytes than `size`.
          if (bytesRead === 0) return;
          sent += bytesRead;
          yield { size: 0, content: buffer.subarray(0, bytesRead) };
        }
      } finally {
        await handle.close();
      }
    })();
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

/** The line a log ends with once it reached TASK_LOG_MAX_BYTES. */
export function logCutMarker(maxBytes: number): string {
  return `\n[porpoise] log cut at ${maxBytes} bytes (TASK_LOG_MAX_BYTES); the rest of the output was dropped\n`;
}

/**
 * One run's open log: ordered appends (the worker's own and a child's output, drained from a
 * socket), cut at TASK_LOG_MAX_BYTES with one marker line, and a line scanner over what the run
 * wrote (from the size the file had when the run began).
 */
export class TaskLogFile implements TaskLogSink {
  private queue: Promise<void> = Promise.resolve();
  private writeFailed = false;
  /** What the file holds (or will, once the queued writes are done). */
  private size: number;
  private cut = false;
  private output: ChildOutputStream | undefined;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly startOffset: number,
    private readonly maxBytes: number,
    private readonly logger: Pick<Logger, 'error' | 'warn'>,
    private readonly socketPair: (taskInstanceId: number) => Promise<[Socket, Socket]>,
    private readonly onClosed: () => void = () => undefined,
  ) {
    this.size = startOffset;
  }

  write(text: string | Uint8Array): Promise<void> {
    // Past the cap everything is dropped, at once: a child's output keeps flowing.
    if (this.cut) return this.queue;
    let bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
    if (this.size + bytes.length > this.maxBytes) {
      this.cut = true;
      const head = bytes.subarray(0, Math.max(0, this.maxBytes - this.size));
      bytes = Buffer.concat([head, Buffer.from(logCutMarker(this.maxBytes), 'utf8')]);
    }
    this.size += bytes.length;
    const chunk = bytes;
    // FileHandle writes must not overlap: each waits for the one before.
    this.queue = this.queue.then(async () => {
      try {
        await this.handle.write(chunk);
      } catch (err) {
        if (!this.writeFailed) this.logger.error(`cannot write to ${this.path}: ${(err as Error).message}`);
        this.writeFailed = true;
      }
    });
    return this.queue;
  }

  /**
   * Opens the channel a child process writes its stdout and stderr to (one channel for both keeps
   * their order), drained into this log from now on. The executor opens it before a process
   * type's run (before it checks the session), so starting the process awaits nothing.
   */
  async openChildOutput(taskInstanceId: number): Promise<void> {
    if (this.output) return;
    const [child, worker] = await this.socketPair(taskInstanceId);
    this.output = new ChildOutputStream(child, worker, this);
  }

  childOutput(): ChildOutput {
    if (!this.output) throw new Error(`no child output was opened for ${this.path}`);
    return this.output;
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

  /** Stops reading a child's output (if any), waits for the writes queued so far, closes the file. */
  async close(): Promise<void> {
    try {
      await this.output?.stop();
      await this.queue;
      await this.handle.close();
    } finally {
      this.onClosed();
    }
  }
}

/**
 * A child's stdout and stderr: a socket pair whose worker end is read to its end and written to
 * the log with backpressure (the next read waits for the write), so memory stays bounded; past
 * the cap the reads go on and the bytes are dropped, so the child never blocks on its output.
 */
class ChildOutputStream implements ChildOutput {
  private readonly drain: Promise<void>;

  constructor(
    readonly stream: Socket,
    private readonly worker: Socket,
    log: TaskLogFile,
  ) {
    this.drain = (async () => {
      try {
        for await (const chunk of worker) await log.write(chunk as Buffer);
      } catch {
        // Destroyed by stop(): what was read is written.
      }
    })();
  }

  release(): void {
    this.stream.destroy();
  }

  async ended(clock: Clock, graceMs: number): Promise<boolean> {
    this.release();
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const late = new Promise<false>((done) => (timer = clock.setTimeout(() => done(false), graceMs)));
    const whole = await Promise.race([this.drain.then(() => true as const), late]);
    clock.clearTimeout(timer);
    if (!whole) await this.stop();
    return whole;
  }

  async stop(): Promise<void> {
    this.release();
    this.worker.destroy();
    await this.drain;
  }
}

function lineText(parts: Buffer[]): string {
  const line = Buffer.concat(parts).toString('utf8');
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
