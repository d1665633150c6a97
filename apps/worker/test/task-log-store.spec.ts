/** TaskLogStore on a real temporary DATA_DIR. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '@porpoise/common';
import { logCutMarker, TaskLogStore } from '../src/adapters/task-log-store';
import { workerConfig } from './support/worker-config';

describe('TaskLogStore', () => {
  let dataDir: string;
  let logs: TaskLogStore;

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'porpoise-logs-'));
    logs = new TaskLogStore(workerConfig({ DATA_DIR: dataDir }));
    await logs.init();
  });

  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it("opens a task's log in its instance's directory, made again when it was removed meanwhile", async () => {
    const first = await logs.openForAppend(5, 1);
    await first.write('one\n');
    await first.close();
    expect(existsSync(logs.pathOf(5, 1))).toBe(true);
    // Someone cleaned the logs: the directory the store made before is gone.
    rmSync(join(dataDir, 'logs', '5'), { recursive: true });
    const second = await logs.openForAppend(5, 2);
    await second.write('two\n');
    await second.close();
    expect(existsSync(logs.pathOf(5, 2))).toBe(true);
    expect((await logs.read(2, 0, 100)).content.toString()).toBe('two\n');
  });

  it('cuts the log at TASK_LOG_MAX_BYTES with one marker line and drops everything after it', async () => {
    const capped = new TaskLogStore(workerConfig({ DATA_DIR: dataDir, TASK_LOG_MAX_BYTES: '1024' }));
    const log = await capped.openForAppend(6, 3);
    await log.write('a'.repeat(1000));
    await log.write('b'.repeat(100));
    await log.write('after the cut\n');
    await log.close();
    const text = readFileSync(capped.pathOf(6, 3), 'utf8');
    expect(text).toBe('a'.repeat(1000) + 'b'.repeat(24) + logCutMarker(1024));
    expect(
      text.endsWith(
        '[porpoise] log cut at 1024 bytes (TASK_LOG_MAX_BYTES); the rest of the output was dropped\n',
      ),
    ).toBe(true);
  });

  it("drains a child's output through its channel into the capped log, whatever the child prints", async () => {
    const capped = new TaskLogStore(workerConfig({ DATA_DIR: dataDir, TASK_LOG_MAX_BYTES: '4096' }));
    const log = await capped.openForAppend(6, 4);
    await log.openChildOutput(4);
    const output = log.childOutput();
    // Far more than a socket buffer holds: a child blocked on its output would never exit.
    const child = spawn('/bin/sh', ['-c', 'head -c 5000000 /dev/zero | tr "\\0" x; echo done'], {
      stdio: ['ignore', output.stream, output.stream],
    });
    output.release();
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(0);
    expect(await output.ended(systemClock, 10_000)).toBe(true);
    await log.close();
    const text = readFileSync(capped.pathOf(6, 4), 'utf8');
    expect(text).toBe('x'.repeat(4096) + logCutMarker(4096));
  });
});
