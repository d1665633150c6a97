/**
 * Retry budgets and delays are counted in the database (DESIGN.md section 9): a master that takes
 * an instance over continues them from the rows, whatever the previous owner remembered. The
 * instances are written as a failover leaves them (host NULL, epoch bumped, a
 * RECOVER_TOLERANCE_FAULT_PROCESS command); the master is the real one, the worker a FakeWorker.
 * Times are compared on the database's clock, never asserted as durations.
 */
import { runMigrations } from '@porpoise/dao';
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { nth } from '@porpoise/test-harness/defined';
import { FakeWorker, Journal } from './support/fake-worker';
import { Db, SECRET, bootMaster, task, waitForMembership, type RunningMaster } from './support/fixtures';

describe('retry budgets across a failover', () => {
  let pg: TestServer;
  let db: Db;
  let worker: FakeWorker;
  let master: RunningMaster;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    db = new Db(pg.endpoint);
    worker = await FakeWorker.start({ databaseUrl: pg.endpoint, secret: SECRET, journal: new Journal() });
    master = await bootMaster(pg.endpoint);
    await waitForMembership([master]);
  });

  afterAll(async () => {
    await master?.app.close();
    await worker?.close();
    await db?.close();
    await pg?.dispose();
  });

  /** An instance a dead master left (epoch 4, handed back), with its task rows; then its recovery command. */
  async function leftBehind(code: string, rows: string): Promise<number> {
    const { rows: inst } = await db.pool.query<{ id: string }>(
      `INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type, start_time)
       VALUES ($1, 1, 'RUNNING_EXECUTION', NULL, 4, 'START_PROCESS', now()) RETURNING id`,
      [code],
    );
    const id = Number(nth(inst, 0).id);
    await db.pool.query(rows, [id, worker.address]);
    await db.pool.query(
      `INSERT INTO command (type, workflow_code, workflow_version, workflow_instance_id)
       VALUES ('RECOVER_TOLERANCE_FAULT_PROCESS', $1, 1, $2)`,
      [code, id],
    );
    return id;
  }

  it('a retry waiting in DELAY_EXECUTION waits out the rest of its delay, and counts as a retry used', async () => {
    const code = await db.createWorkflow([task('flaky', { retries: 1, retryIntervalMs: 60_000 })]);
    const id = await leftBehind(
      code,
      `INSERT INTO task_instance (workflow_instance_id, name, state, host, attempt, retries_used, exit_code, retry_due_at)
       VALUES ($1, 'flaky', 'DELAY_EXECUTION', $2, 1, 0, 1, now() + interval '2 seconds')`,
    );
    worker.behaviour = () => ({ kind: 'fail' });
    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(done.state).toBe('FAILURE');
    const { rows } = await db.pool.query<{
      attempt: number;
      state: string;
      retries_used: number;
      waited: boolean;
    }>(
      `SELECT t.attempt, t.state, t.retries_used,
              t.created_at >= (SELECT retry_due_at FROM task_instance WHERE workflow_instance_id = $1 AND attempt = 1) AS waited
       FROM task_instance t WHERE t.workflow_instance_id = $1 ORDER BY attempt`,
      [id],
    );
    // Attempt 2 was created only once the stored due time had passed (not at once on adoption),
    // it used the one retry, and its failure was the last: retries + 1 runs in all.
    expect(rows).toEqual([
      { attempt: 1, state: 'FAILURE', retries_used: 0, waited: false },
      { attempt: 2, state: 'FAILURE', retries_used: 1, waited: true },
    ]);
  });

  it('an attempt re-attached after a failover keeps the retries used before it: no retry beyond the budget', async () => {
    const code = await db.createWorkflow([task('once', { retries: 1, retryIntervalMs: 100 })]);
    let held = 0;
    const id = await leftBehind(
      code,
      `INSERT INTO task_instance (workflow_instance_id, name, state, host, attempt, retries_used) VALUES
       ($1, 'once', 'FAILURE', $2, 1, 0), ($1, 'once', 'RUNNING_EXECUTION', $2, 2, 1)`,
    );
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT id FROM task_instance WHERE workflow_instance_id = $1 AND attempt = 2`,
      [id],
    );
    held = Number(nth(rows, 0).id);
    // The worker still holds attempt 2's result (it failed while no master owned the instance).
    worker.takeOverAnswer = (taskInstanceId) =>
      taskInstanceId === held
        ? {
            status: 'FINISHED',
            startTimeMs: Date.now() - 10,
            result: {
              taskInstanceId: held,
              workflowInstanceId: id,
              attempt: 2,
              state: 'FAILURE',
              exitCode: 3,
              startTimeMs: Date.now() - 10,
              endTimeMs: Date.now(),
              workerAddress: worker.address,
              epoch: 4,
              message: '',
              outputs: {},
            },
          }
        : { status: 'UNKNOWN', result: null, startTimeMs: 0 };
    try {
      const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
      expect(done.state).toBe('FAILURE');
      expect((await db.tasks(id)).map((t) => [t.attempt, t.state, t.exit_code])).toEqual([
        [1, 'FAILURE', null],
        [2, 'FAILURE', 3],
      ]);
    } finally {
      worker.takeOverAnswer = () => ({ status: 'UNKNOWN', result: null, startTimeMs: 0 });
    }
  });

  it('MAX_FAULT_RERUNS counts the re-runs the previous owners made', async () => {
    const code = await db.createWorkflow([task('poison', { retries: 2 })]);
    // Three earlier attempts were lost with their workers; the fourth was running when the
    // master died, and its worker no longer has it (TakeOver: UNKNOWN, a restarted worker).
    const id = await leftBehind(
      code,
      `INSERT INTO task_instance (workflow_instance_id, name, state, host, attempt, fault_reruns) VALUES
       ($1, 'poison', 'NEED_FAULT_TOLERANCE', $2, 1, 0), ($1, 'poison', 'NEED_FAULT_TOLERANCE', $2, 2, 1),
       ($1, 'poison', 'NEED_FAULT_TOLERANCE', $2, 3, 2), ($1, 'poison', 'RUNNING_EXECUTION', $2, 4, 3)`,
    );
    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(done.state).toBe('FAILURE');
    const tasks = await db.tasks(id);
    expect(tasks.map((t) => [t.attempt, t.state])).toEqual([
      [1, 'NEED_FAULT_TOLERANCE'],
      [2, 'NEED_FAULT_TOLERANCE'],
      [3, 'NEED_FAULT_TOLERANCE'],
      [4, 'FAILURE'],
    ]);
    expect(nth(tasks, 3).message).toMatch(/more than MAX_FAULT_RERUNS \(3\)/);
  });
});
