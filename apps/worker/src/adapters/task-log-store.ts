import { mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { PORPOISE_CONFIG, type WorkerConfig } from '@porpoise/common';
import type { ReadLogResponse } from '@porpoise/rpc';

const NUMERIC = /^[1-9]\d{0,14}$/;
const LOG_FILE = /^([1-9]\d{0,14})\.log$/;

/**
 * Task logs: DATA_DIR/logs/{workflowInstanceId}/{taskInstanceId}.log. ReadLog names only the
 * task, so an index taskInstanceId → path is kept in memory, rebuilt at start by scanning the
 * logs directory (the layout itself is the index: nothing to keep consistent after a crash).
 * The index also tells Dispatch which tasks this worker has run before.
 */
@Injectable()
export class TaskLogStore {
  readonly root: string;
  /** taskInstanceId → workflowInstanceId (the path follows from both; numbers keep the index small). */
  private readonly index = new Map<number, number>();

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
  async openForAppend(workflowInstanceId: number, taskInstanceId: number): Promise<FileHandle> {
    const path = this.pathOf(workflowInstanceId, taskInstanceId);
    await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
    const handle = await open(path, 'a', 0o600);
    this.index.set(taskInstanceId, workflowInstanceId);
    return handle;
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
