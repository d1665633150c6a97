import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startZooKeeper, type TestServer } from '@porpoise/test-harness';

const run = promisify(execFile);

/**
 * Regression test for the stale poll handle of the zookeeper binding, patched by
 * scripts/build-zookeeper-client.mjs: after an event-loop stall, sockets the process opens must
 * keep working. The stall happens in a child process, so jest's own loop never stops.
 */
describe('zookeeper binding after an event-loop stall', () => {
  let zk: TestServer;
  beforeAll(async () => {
    zk = await startZooKeeper();
  });
  afterAll(async () => {
    await zk?.dispose();
  });

  it('leaves every socket opened right after the stall working', async () => {
    const child = join(__dirname, 'support', 'zookeeper-stall-child.cjs');
    const { stdout } = await run(process.execPath, [child, zk.endpoint, '4', '4000'], { timeout: 100_000 });
    const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as {
      cycles: number;
      ok: number;
      hung: number;
    };
    expect(result).toEqual({ cycles: 4, ok: 4 * 30, hung: 0 });
  });
});
