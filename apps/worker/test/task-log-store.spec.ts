/** TaskLogStore on a real temporary DATA_DIR. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TaskLogStore } from '../src/adapters/task-log-store';
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
});
