import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { nth } from '@porpoise/test-harness/defined';
import type { DataSource } from 'typeorm';
import {
  CommandRepository,
  createDataSource,
  InstanceStateRepository,
  queryRows,
  runMigrations,
  TaskInstanceRepository,
  type InstanceFence,
} from '../src';
import { adoptRun, triggerRun } from './support/runs';

/**
 * Fencing on the epoch, not only the host: one master address can own an instance twice (it gave
 * the instance back, or it was declared dead and restarted on the same address, then consumed the
 * recovery command). The runner of the first ownership may still hold a write in flight; it must
 * find the fence gone even though the host matches.
 */
describe('ownership fence: the same master address re-adopting at a higher epoch', () => {
  const ME = '127.0.0.1:5678';
  let pg: TestServer;
  let source: DataSource;
  let consumer: CommandRepository;
  let instances: InstanceStateRepository;
  let tasks: TaskInstanceRepository;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    source = await createDataSource(pg.endpoint, 'fencing-test').initialize();
    consumer = new CommandRepository(source);
    instances = new InstanceStateRepository(source);
    tasks = new TaskInstanceRepository(source);
  });
  afterAll(async () => {
    await source?.destroy();
    await pg?.dispose();
  });

  const trigger = (code: string): Promise<number> => triggerRun(source, code);
  const adopt = (instanceId: number): Promise<InstanceFence> => adoptRun(consumer, instanceId, ME);

  it('refuses every write of the earlier ownership once the same host owns it at a higher epoch', async () => {
    const id = await trigger('fence_same_host');
    const first = await adopt(id);
    const created = await tasks.createAttempts(first, [{ name: 'a', attempt: 1 }]);
    expect(created.owned).toBe(true);
    const taskId = nth(created.rows, 0).id;

    // The instance goes back (graceful hand-over, or failover of this address) and the same
    // address takes it again from the recovery command.
    expect(await instances.handBack(first)).toBeDefined();
    const second = await adopt(id);
    expect(second.host).toBe(first.host);
    expect(second.epoch).toBeGreaterThan(first.epoch);

    // The first runner's late writes: host matches, epoch does not.
    expect((await tasks.markDispatch(first, taskId, 'w:1')).owned).toBe(false);
    expect((await tasks.createAttempts(first, [{ name: 'b', attempt: 1 }])).owned).toBe(false);
    expect((await tasks.markState(first, [taskId], ['SUBMITTED_SUCCESS'], 'KILL', 'late')).owned).toBe(false);
    expect(await instances.readOwnedState(first)).toBeUndefined();
    expect(await instances.finish(first, 'FAILURE')).toBe(false);
    expect(await instances.handBack(first)).toBeUndefined();

    // Nothing of it landed; the current ownership writes normally.
    const rows = await queryRows<{ name: string; state: string }>(
      source,
      'SELECT name, state FROM task_instance WHERE workflow_instance_id = $1 ORDER BY name',
      [id],
    );
    expect(rows).toEqual([{ name: 'a', state: 'SUBMITTED_SUCCESS' }]);
    expect(await instances.readOwnedState(second)).toBe('RUNNING_EXECUTION');
    expect((await tasks.markDispatch(second, taskId, 'w:1')).owned).toBe(true);
    expect(await instances.finish(second, 'SUCCESS')).toBe(true);
  });
});
