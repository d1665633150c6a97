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
 * What the engine keeps in task rows so that no failover resets it: the retries and fault re-runs
 * each attempt starts with, the retry due time on the database's clock, and the outputs.
 */
describe('task rows: budgets, retry delay and outputs', () => {
  const ME = '127.0.0.1:5679';
  let pg: TestServer;
  let source: DataSource;
  let tasks: TaskInstanceRepository;
  let instances: InstanceStateRepository;
  let fence: InstanceFence;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    source = await createDataSource(pg.endpoint, 'task-budgets-test').initialize();
    tasks = new TaskInstanceRepository(source);
    instances = new InstanceStateRepository(source);
    fence = await adoptRun(new CommandRepository(source), await triggerRun(source, 'b'), ME);
  });

  afterAll(async () => {
    await source?.destroy();
    await pg?.dispose();
  });

  it('new attempts carry the budgets they start with; a skipped one is created SKIPPED and ended', async () => {
    const created = await tasks.createAttempts(fence, [
      { name: 'a', attempt: 3, retriesUsed: 1, faultReruns: 2 },
      { name: 's', attempt: 1, skipped: true },
    ]);
    expect(created.rows.map((r) => [r.name, r.state, r.attempt, r.retriesUsed, r.faultReruns])).toEqual([
      ['a', 'SUBMITTED_SUCCESS', 3, 1, 2],
      ['s', 'SKIPPED', 1, 0, 0],
    ]);
    const ended = await queryRows<{ ended: boolean }>(
      source,
      `SELECT end_time IS NOT NULL AS ended FROM task_instance WHERE id = $1`,
      [nth(created.rows, 1).id],
    );
    expect(ended).toEqual([{ ended: true }]);
  });

  it('DELAY_EXECUTION is due retryDelayMs after the write, by the database clock; the retry counts one more', async () => {
    const [row] = (await tasks.createAttempts(fence, [{ name: 'r', attempt: 1, faultReruns: 1 }])).rows;
    const id = row?.id ?? -1;
    expect((await tasks.markDispatch(fence, id, 'w:1')).ids).toEqual([id]);
    const w = await tasks.markFinished(fence, id, 'w:1', {
      state: 'DELAY_EXECUTION',
      exitCode: 1,
      startMs: 0,
      endMs: 0,
      message: '',
      outputs: { partial: 'yes' },
      retryDelayMs: 60_000,
    });
    expect(w.ids).toEqual([id]);
    const latest = (await tasks.latestAttempts([fence.instanceId])).find((r) => r.name === 'r');
    expect(latest).toMatchObject({ state: 'DELAY_EXECUTION', outputs: { partial: 'yes' } });
    expect(latest?.retryDueInMs).toBeGreaterThan(50_000);
    expect(latest?.retryDueInMs).toBeLessThanOrEqual(60_000);

    const retried = await tasks.retry(fence, id, 'r', 2);
    expect(
      retried.rows.map((r) => [r.attempt, r.state, r.retriesUsed, r.faultReruns, r.retryDueInMs]),
    ).toEqual([[2, 'SUBMITTED_SUCCESS', 1, 1, null]]);
    expect((await tasks.find(id))?.state).toBe('FAILURE');
    // The old row is no longer waiting: a second retry creates nothing.
    expect(await tasks.retry(fence, id, 'r', 3)).toEqual({ owned: true, rows: [] });
  });

  it('a result other than DELAY_EXECUTION has no due time; outputs are kept', async () => {
    const [row] = (await tasks.createAttempts(fence, [{ name: 'o', attempt: 1 }])).rows;
    const id = row?.id ?? -1;
    await tasks.markDispatch(fence, id, 'w:1');
    await tasks.markFinished(fence, id, 'w:1', {
      state: 'SUCCESS',
      exitCode: 0,
      startMs: 0,
      endMs: 0,
      message: '',
      outputs: { answer: '42' },
    });
    expect(await tasks.find(id)).toMatchObject({
      state: 'SUCCESS',
      retryDueInMs: null,
      outputs: { answer: '42' },
    });
  });

  it('the instance ends with the reason the engine gives', async () => {
    expect(await instances.finish(fence, 'FAILURE', 'the workflow timed out')).toBe(true);
    const rows = await queryRows<{ state: string; message: string }>(
      source,
      'SELECT state, message FROM workflow_instance WHERE id = $1',
      [fence.instanceId],
    );
    expect(rows).toEqual([{ state: 'FAILURE', message: 'the workflow timed out' }]);
  });
});
