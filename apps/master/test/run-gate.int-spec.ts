import { runMigrations, WorkflowRunRepository, createDataSource } from '@porpoise/dao';
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { nth } from '@porpoise/test-harness/defined';
import type { DataSource } from 'typeorm';
import { FakeWorker, Journal } from './support/fake-worker';
import { Db, SECRET, bootMaster, task, waitForMembership, type RunningMaster } from './support/fixtures';

/**
 * The run gate driven by a real master (RunGateService, in-process) on a real Postgres: a
 * SERIAL_WAIT workflow's runs, triggered and fired by a schedule, wait while one runs and start
 * when it ends, woken by NOTIFY; SERIAL_DISCARD stops the one that finds another running.
 */
describe('master: run gate', () => {
  let pg: TestServer;
  let db: Db;
  let source: DataSource;
  let runs: WorkflowRunRepository;
  let worker: FakeWorker;
  let master: RunningMaster;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    db = new Db(pg.endpoint);
    source = await createDataSource(pg.endpoint, 'run-gate-master-test').initialize();
    runs = new WorkflowRunRepository(source);
    worker = await FakeWorker.start({
      databaseUrl: pg.endpoint,
      secret: SECRET,
      journal: new Journal(),
      behaviour: () => ({ kind: 'hold', then: 'SUCCESS' }),
    });
    master = await bootMaster(pg.endpoint);
    await waitForMembership([master]);
  });

  afterAll(async () => {
    await master?.app.close();
    await worker?.close();
    await source?.destroy();
    await db?.close();
    await pg?.dispose();
  });

  async function limitedWorkflow(policy: 'SERIAL_WAIT' | 'SERIAL_DISCARD'): Promise<string> {
    const code = await db.createWorkflow([task('only')]);
    await db.pool.query('UPDATE workflow_definition SET concurrency_policy = $2 WHERE code = $1', [
      code,
      policy,
    ]);
    return code;
  }

  async function trigger(code: string): Promise<number> {
    const t = await runs.trigger(code, {});
    if (t === null) throw new Error(`no workflow ${code}`);
    return t.workflowInstanceId;
  }

  /** Releases the held task of an instance once the fake worker has it. */
  async function finish(instanceId: number): Promise<void> {
    const row = await db.waitForTask(instanceId, 'only', 'RUNNING_EXECUTION');
    worker.release(row.id);
    await db.waitForState(instanceId, ['SUCCESS']);
  }

  it('SERIAL_WAIT: a triggered run and a schedule fire wait, then run one at a time in order', async () => {
    const code = await limitedWorkflow('SERIAL_WAIT');
    const first = await trigger(code);
    await db.waitForTask(first, 'only', 'RUNNING_EXECUTION');
    const second = await trigger(code);
    // A schedule due now fires a third run: it waits too.
    await db.pool.query(
      `INSERT INTO schedule (workflow_code, cron, timezone, next_fire_time)
       VALUES ($1, '0 0 1 1 *', 'UTC', now() - interval '1 second')`,
      [code],
    );
    const third = await waitFor('the schedule to fire', async () => {
      const r = await db.pool.query<{ id: string; state: string }>(
        `SELECT id, state FROM workflow_instance WHERE workflow_code = $1 AND command_type = 'SCHEDULER'`,
        [code],
      );
      return r.rows[0] ? r.rows[0] : undefined;
    });
    expect(third.state).toBe('SERIAL_WAIT');
    expect((await db.instance(second)).state).toBe('SERIAL_WAIT');

    await finish(first);
    await finish(second);
    await finish(Number(third.id));
    const { rows } = await db.pool.query<{ id: string; start_time: Date; end_time: Date }>(
      'SELECT id, start_time, end_time FROM workflow_instance WHERE workflow_code = $1 ORDER BY start_time',
      [code],
    );
    expect(rows.map((r) => Number(r.id))).toEqual([first, second, Number(third.id)]);
    for (let i = 1; i < rows.length; i++) {
      expect(nth(rows, i).start_time.getTime()).toBeGreaterThanOrEqual(nth(rows, i - 1).end_time.getTime());
    }
  });

  it('SERIAL_DISCARD: a run triggered while one runs ends STOP at once, and runs no task', async () => {
    const code = await limitedWorkflow('SERIAL_DISCARD');
    const running = await trigger(code);
    await db.waitForTask(running, 'only', 'RUNNING_EXECUTION');
    const late = await trigger(code);
    const ended = await db.waitForState(late, ['STOP']);
    expect(ended.state).toBe('STOP');
    const { rows } = await db.pool.query<{ message: string }>(
      'SELECT message FROM workflow_instance WHERE id = $1',
      [late],
    );
    expect(nth(rows, 0).message).toBe(
      `discarded: instance ${running} of this workflow is running (SERIAL_DISCARD)`,
    );
    expect(await db.tasks(late)).toEqual([]);
    await finish(running);
  });
});
