import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { nth } from '@porpoise/test-harness/defined';
import type { DataSource } from 'typeorm';
import {
  CommandRepository,
  createDataSource,
  firstRow,
  InstanceStateRepository,
  queryRows,
  runMigrations,
  TaskInstanceRepository,
  type InstanceFence,
} from '../src';

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

  /** A run as the API writes it: instance (host NULL) and its START_PROCESS command. */
  async function trigger(code: string): Promise<number> {
    await source.query(`INSERT INTO workflow_definition (code, name, version) VALUES ($1, $1, 1)`, [code]);
    await source.query(
      `INSERT INTO workflow_definition_version (code, version, name, tasks, edges) VALUES ($1, 1, $1, '[]', '[]')`,
      [code],
    );
    const rows = await queryRows<{ id: string }>(
      source,
      `WITH i AS (
         INSERT INTO workflow_instance (workflow_code, workflow_version, state, command_type)
         VALUES ($1, 1, 'SUBMITTED_SUCCESS', 'START_PROCESS') RETURNING id)
       INSERT INTO command (type, workflow_code, workflow_version, workflow_instance_id)
       SELECT 'START_PROCESS', $1, 1, id FROM i RETURNING workflow_instance_id AS id`,
      [code],
    );
    return Number(firstRow(rows, 'triggered instance').id);
  }

  async function adopt(instanceId: number): Promise<InstanceFence> {
    const taken = await consumer.consume({ slot: 0, count: 1, host: ME, batchSize: 10 });
    const mine = taken.find((c) => c.workflowInstanceId === instanceId && c.taken);
    if (!mine) throw new Error(`instance ${instanceId} was not taken`);
    return { instanceId, host: ME, epoch: mine.epoch };
  }

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
