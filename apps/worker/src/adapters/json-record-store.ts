import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@porpoise/common';
import { taskIdOfFile } from '../domain/records';

let tmpSequence = 0;

/**
 * Writes a file so that a crash leaves either the old or the new content: tmp (+ fsync) + rename.
 * Without `durable` the content survives a crash of the process, not of the machine.
 */
export async function writeFileAtomic(path: string, data: string, durable = true): Promise<void> {
  const tmp = `${path}.${process.pid}.${++tmpSequence}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(data);
    if (durable) await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (durable) await syncDirectory(join(path, '..'));
}

/** fsync of the directory makes the rename itself durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await handle.close();
  }
}

/**
 * A directory of small JSON records named by task instance id (`{id}.json`). Writes and removals
 * of one id are applied in the order they were asked for (each waits for the previous one), so a
 * rewrite can never land after the removal that followed it.
 */
export class JsonRecordStore<T> {
  private readonly queues = new Map<number, Promise<void>>();

  constructor(
    readonly dir: string,
    private readonly parse: (file: string, text: string) => T,
    private readonly logger: Logger,
    /** false: records survive a crash of the process but not of the machine (no fsync). */
    private readonly durable = true,
  ) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Durably stores the record (serialised now, written in turn). */
  write(id: number, record: T): Promise<void> {
    const text = JSON.stringify(record);
    return this.enqueue(id, () => writeFileAtomic(this.file(id), text, this.durable));
  }

  remove(id: number): Promise<void> {
    return this.enqueue(id, async () => {
      try {
        await unlink(this.file(id));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    });
  }

  /**
   * Every valid record. Leftover temporary files (a crash mid-write) are deleted; a record that
   * does not parse is renamed to `*.corrupt` and reported, never silently dropped.
   */
  async loadAll(): Promise<Map<number, T>> {
    const records = new Map<number, T>();
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (name.endsWith('.tmp')) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      const id = taskIdOfFile(name);
      if (id === null) continue;
      try {
        records.set(id, this.parse(path, await readFile(path, 'utf8')));
      } catch (err) {
        this.logger.error(`ignoring unreadable record ${path}: ${(err as Error).message}`);
        await rename(path, `${path}.corrupt`).catch(() => undefined);
      }
    }
    return records;
  }

  private file(id: number): string {
    return join(this.dir, `${id}.json`);
  }

  private enqueue(id: number, op: () => Promise<void>): Promise<void> {
    const previous = this.queues.get(id) ?? Promise.resolve();
    const next = previous.then(op);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(id, settled);
    void settled.then(() => {
      if (this.queues.get(id) === settled) this.queues.delete(id);
    });
    return next;
  }
}
