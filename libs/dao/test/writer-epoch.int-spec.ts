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
import { adoptRun, triggerRun } from './support/runs';

/**
 * task_instance.writer_epoch: every fenced write of a task row stamps the writer's epoch, so the
 * chaos suite's audit can show a stale master's write (a writer older than the instance's epoch).
 * A retried insert that finds its row (ON CONFLICT) stamps the current writer too: else the audit
 * would show the earlier owner's epoch on a write of the current one.
 */
describe('task rows carry the epoch of the master that wrote them', () => {
  const ME = '127.0.0.1:5679';
  let pg: TestServer;
  let source: DataSource;
  let consumer: CommandRepository;
  let instances: InstanceStateRepository;
  let tasks: TaskInstanceRepository;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    source = await createDataSource(pg.endpoint, 'writer-epoch-test').initialize();
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

  const writerEpoch = async (taskId: number) =>
    Number(
      firstRow(
        await queryRows<{ e: string | null }>(
          source,
          'SELECT writer_epoch AS e FROM task_instance WHERE id = $1',
          [taskId],
        ),
        'task row',
      ).e,
    );

  it('stamps creation, dispatch and state changes with the fence epoch, and a re-created row with the new owner', async () => {
    const id = await trigger('writer_epoch');
    const first = await adopt(id);
    const taskId = nth((await tasks.createAttempts(first, [{ name: 'a', attempt: 1 }])).rows, 0).id;
    expect(await writerEpoch(taskId)).toBe(first.epoch);

    expect(await instances.handBack(first)).toBeDefined();
    const second = await adopt(id);
    expect(second.epoch).toBeGreaterThan(first.epoch);
    // The new owner re-creates the same attempt (it exists): the row now names the new writer.
    const again = await tasks.createAttempts(second, [{ name: 'a', attempt: 1 }]);
    expect(nth(again.rows, 0).id).toBe(taskId);
    expect(await writerEpoch(taskId)).toBe(second.epoch);
    await source.query('UPDATE task_instance SET writer_epoch = NULL WHERE id = $1', [taskId]);
    expect((await tasks.markDispatch(second, taskId, 'w:1')).owned).toBe(true);
    expect(await writerEpoch(taskId)).toBe(second.epoch);

    // The stale owner's write is refused and leaves the stamp alone.
    expect((await tasks.markState(first, [taskId], ['DISPATCH'], 'KILL', 'late')).owned).toBe(false);
    expect(await writerEpoch(taskId)).toBe(second.epoch);
  });
});
