/**
 * Task groups through real masters (two, in-process, on a real Postgres and the JDBC registry)
 * and a FakeWorker. The masters' fallback timer is set far beyond the test, so a waiting task can
 * only go out through the NOTIFY path: the release trigger's porpoise_task_group, a grant pass by
 * a master with waiters, the grant's porpoise_instance_control to the owner. Nothing here asserts
 * timings.
 */
import { createDataSource, WorkflowRunRepository, runMigrations } from '@porpoise/dao';
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import type { DataSource } from 'typeorm';
import { FakeWorker, Journal } from './support/fake-worker';
import { Db, SECRET, bootMaster, task, waitForMembership, type RunningMaster } from './support/fixtures';

describe('task groups on real masters', () => {
  let pg: TestServer;
  let db: Db;
  let worker: FakeWorker;
  let masters: RunningMaster[] = [];
  let source: DataSource;
  let runs: WorkflowRunRepository;
  const closed = new Set<RunningMaster>();

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    db = new Db(pg.endpoint);
    worker = await FakeWorker.start({
      databaseUrl: pg.endpoint,
      secret: SECRET,
      journal: new Journal(),
      behaviour: () => ({ kind: 'hold', then: 'SUCCESS' }),
    });
    // No fallback within the test: only NOTIFYs can hand a slot on.
    masters = await Promise.all([0, 1].map(() => bootMaster(pg.endpoint, { parkedRetryMs: 600_000 })));
    await waitForMembership(masters);
    source = await createDataSource(pg.endpoint, 'task-group-master-test').initialize();
    runs = new WorkflowRunRepository(source);
  });

  afterAll(async () => {
    await Promise.all(masters.filter((m) => !closed.has(m)).map((m) => m.app.close()));
    await worker?.close();
    await source?.destroy();
    await db?.close();
    await pg?.dispose();
  });

  const queueRows = async () =>
    (
      await db.pool.query<{ task_instance_id: string; slot_no: number | null }>(
        'SELECT task_instance_id, slot_no FROM task_group_queue ORDER BY id',
      )
    ).rows.map((r) => [Number(r.task_instance_id), r.slot_no]);

  const heldOne = () =>
    waitFor(
      'exactly one task held on the worker',
      () => (worker.heldTasks().length === 1 ? worker.heldTasks()[0] : undefined),
      30_000,
    );

  it('capacity 1: the second run waits (queue row, no dispatch), the first one ending hands it the slot', async () => {
    await db.pool.query(`INSERT INTO task_group (name, capacity) VALUES ('one', 1)`);
    const code = await db.createWorkflow([task('x', { taskGroup: 'one' })]);
    const first = await db.trigger(code);
    const running = await heldOne();
    const second = await db.trigger(code);
    const waiting = await waitFor(
      'the second run to wait for the group',
      async () => {
        const rows = await queueRows();
        return rows.length === 2 && rows[1]?.[1] === null ? rows[1][0] : undefined;
      },
      30_000,
    );
    expect(await queueRows()).toEqual([
      [running, 0],
      [waiting, null],
    ]);
    expect(worker.heldTasks()).toEqual([running]);

    worker.release(running);
    await db.waitForState(first, ['SUCCESS']);
    const next = await heldOne();
    expect(next).toBe(waiting);
    expect(await queueRows()).toEqual([[waiting, 0]]);
    worker.release(next);
    expect((await db.waitForState(second, ['SUCCESS', 'FAILURE'])).state).toBe('SUCCESS');
    expect(await queueRows()).toEqual([]);
  });

  it('stop of a run whose task waits for the group: KILL, its queue row gone, the slot untouched', async () => {
    await db.pool.query(`INSERT INTO task_group (name, capacity) VALUES ('stopme', 1)`);
    const code = await db.createWorkflow([task('y', { taskGroup: 'stopme' })]);
    const holder = await db.trigger(code);
    const running = await heldOne();
    const stopped = await db.trigger(code);
    await waitFor(
      'the second run to wait',
      async () => ((await queueRows()).length === 2 ? true : undefined),
      30_000,
    );
    expect(await runs.requestHalt(stopped, 'READY_STOP')).toBe(true);
    expect((await db.waitForState(stopped, ['STOP'])).state).toBe('STOP');
    expect((await db.tasks(stopped)).map((t) => t.state)).toEqual(['KILL']);
    expect(await queueRows()).toEqual([[running, 0]]);
    worker.release(running);
    expect((await db.waitForState(holder, ['SUCCESS', 'FAILURE'])).state).toBe('SUCCESS');
    expect(await queueRows()).toEqual([]);
  });

  it('the master driving a waiting run goes away: its successor asks again and keeps the place in line', async () => {
    await db.pool.query(`INSERT INTO task_group (name, capacity) VALUES ('keep', 1)`);
    const code = await db.createWorkflow([task('z', { taskGroup: 'keep' })]);
    const holder = await db.trigger(code);
    const running = await heldOne();
    const waiter = await db.trigger(code);
    const [, queued] = await waitFor(
      'the second run to wait',
      async () => {
        const rows = await db.pool.query<{ id: string; task_instance_id: string }>(
          `SELECT id, task_instance_id FROM task_group_queue WHERE task_group = 'keep' ORDER BY id`,
        );
        return rows.rows.length === 2
          ? rows.rows.map((r) => [Number(r.id), Number(r.task_instance_id)])
          : undefined;
      },
      30_000,
    );
    if (queued === undefined) throw new Error('no waiting row');
    const driving = await db.instance(waiter);
    const owner = masters.find((m) => m.address === driving.host);
    if (!owner) throw new Error(`no master drives the waiting run (host ${driving.host})`);
    // It stops: the run is handed over (epoch + 1) and the other master adopts it from its rows.
    await owner.app.close();
    closed.add(owner);
    await waitFor(
      'the waiting run adopted by the other master',
      async () => {
        const i = await db.instance(waiter);
        return i.host !== null && i.host !== owner.address && i.epoch > driving.epoch ? i : undefined;
      },
      30_000,
    );
    // Same queue row (same place, still waiting), not a new request at the back.
    const rows = await db.pool.query<{ id: string; task_instance_id: string; slot_no: number | null }>(
      `SELECT id, task_instance_id, slot_no FROM task_group_queue WHERE task_group = 'keep' ORDER BY id`,
    );
    expect(rows.rows.map((r) => [Number(r.id), Number(r.task_instance_id), r.slot_no])).toEqual([
      [expect.any(Number), running, 0],
      [queued[0], queued[1], null],
    ]);
    worker.release(running);
    const next = await heldOne();
    expect(next).toBe(queued[1]);
    worker.release(next);
    expect((await db.waitForState(holder, ['SUCCESS', 'FAILURE'])).state).toBe('SUCCESS');
    expect((await db.waitForState(waiter, ['SUCCESS', 'FAILURE'])).state).toBe('SUCCESS');
    expect(await queueRows()).toEqual([]);
  });
});
