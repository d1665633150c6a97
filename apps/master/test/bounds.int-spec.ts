/**
 * The master's bounds (DESIGN.md section 11) against a real Postgres and the JDBC registry on it,
 * booted in-process; the worker is a FakeWorker that holds tasks until the test releases them:
 * - MASTER_MAX_RUNNING_INSTANCES: never more new runs driven at once than the cap, the rest wait
 *   in the queue and are taken as runs end (woken by the ends, no poll: the poll is made too slow
 *   to matter), and a recovery command is still taken at the cap;
 * - retention: the sweep at start deletes old ended instances and keeps recent ones.
 */
import { NestFactory } from '@nestjs/core';
import type { SubWorkflowTaskDefinition } from '@porpoise/common';
import { runMigrations } from '@porpoise/dao';
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { MasterModule } from '../src/master.module';
import { typedTask } from './support/tasks';
import { FakeWorker, Journal } from './support/fake-worker';
import {
  Db,
  masterConfig,
  SECRET,
  task,
  TEST_OPTIONS,
  waitForMembership,
  type RunningMaster,
} from './support/fixtures';
import { MasterMembershipService } from '../src/registry/master-membership.service';

const CAP = 2;

describe('master bounds', () => {
  let pg: TestServer;
  let db: Db;
  let worker: FakeWorker;
  let master: RunningMaster;
  let oldRun: number;
  let recentRun: number;
  let code: string;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    db = new Db(pg.endpoint);
    // Tasks named "long" are held until released; the others succeed at once.
    worker = await FakeWorker.start({
      databaseUrl: pg.endpoint,
      secret: SECRET,
      journal: new Journal(),
      capacity: 100,
      behaviour: (spec) =>
        spec.taskName === 'long' ? { kind: 'hold', then: 'SUCCESS' } : { kind: 'succeed' },
    });
    code = await db.createWorkflow([task('long')]);
    // Two ended runs before the master starts: one 45 days ago, one yesterday.
    const ended = async (daysAgo: number): Promise<number> => {
      const { rows } = await db.pool.query<{ id: string }>(
        `INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type,
           start_time, end_time)
         VALUES ($1, 1, 'SUCCESS', NULL, 1, 'START_PROCESS', now() - make_interval(days => $2::int),
           now() - make_interval(days => $2::int)) RETURNING id`,
        [code, daysAgo],
      );
      const id = Number(rows[0]?.id);
      await db.pool.query(
        `INSERT INTO task_instance (workflow_instance_id, name, state) VALUES ($1, 'long', 'SUCCESS')`,
        [id],
      );
      return id;
    };
    oldRun = await ended(45);
    recentRun = await ended(1);

    const config = { ...(await masterConfig(pg.endpoint)), maxRunningInstances: CAP };
    const app = await NestFactory.createApplicationContext(
      // The fallback poll far away: only the wake-ups move the queue.
      MasterModule.forRoot(config, { ...TEST_OPTIONS, commandPollIntervalMs: 600_000 }),
      { logger: ['error', 'warn'] },
    );
    master = {
      app,
      config,
      address: `${config.nodeHost}:${config.masterPort}`,
      membership: app.get(MasterMembershipService),
    };
    await waitForMembership([master]);
  });

  afterAll(async () => {
    await master?.app.close();
    await worker?.close();
    await db?.close();
    await pg?.dispose();
  });

  it('deletes ended instances older than RETENTION_DAYS at start (their tasks too) and keeps recent ones', async () => {
    await waitFor('the old run pruned', async () => {
      const { rows } = await db.pool.query('SELECT 1 FROM workflow_instance WHERE id = $1', [oldRun]);
      return rows.length === 0;
    });
    const tasks = await db.pool.query('SELECT 1 FROM task_instance WHERE workflow_instance_id = $1', [
      oldRun,
    ]);
    expect(tasks.rows).toHaveLength(0);
    expect((await db.instance(recentRun)).state).toBe('SUCCESS');
  });

  /** Instances this master drives per the database: RUNNING_EXECUTION with host = it. */
  async function runningHere(): Promise<number[]> {
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT id FROM workflow_instance WHERE host = $1 AND state = 'RUNNING_EXECUTION' ORDER BY id`,
      [master.address],
    );
    return rows.map((r) => Number(r.id));
  }

  it(`drives at most MASTER_MAX_RUNNING_INSTANCES=${CAP} runs at once; the others are taken as runs end, and all finish`, async () => {
    const ids: number[] = [];
    for (let i = 0; i < 6; i++) ids.push(await db.trigger(code));
    let maxSeen = 0;
    const released = new Set<number>();
    const done = async () => {
      const states = await Promise.all(ids.map(async (id) => (await db.instance(id)).state));
      return states.every((s) => s === 'SUCCESS');
    };
    await waitFor(
      'all 6 runs SUCCESS',
      async () => {
        const running = await runningHere();
        maxSeen = Math.max(maxSeen, running.length);
        expect(running.length).toBeLessThanOrEqual(CAP);
        // Release one held task at a time, only once the cap is reached (or nothing is left).
        const held = worker.heldTasks().filter((t) => !released.has(t));
        const queued = (await db.pool.query('SELECT count(*)::int AS n FROM command')).rows[0] as {
          n: number;
        };
        if (held.length > 0 && (held.length >= CAP || queued.n === 0)) {
          const next = held[0] as number;
          released.add(next);
          worker.release(next);
        }
        return done();
      },
      60_000,
      50,
    );
    expect(maxSeen).toBe(CAP);
  });

  it('still takes a recovery command at the cap (a failover is never starved)', async () => {
    const first = await db.trigger(code);
    const second = await db.trigger(code);
    await waitFor(
      'two runs hold the cap',
      async () => (await runningHere()).length === CAP && worker.heldTasks().length === CAP,
    );
    const waiting = await db.trigger(code);
    // An instance a dead master drove: host NULL after the failover, and its recovery command.
    const quick = await db.createWorkflow([task('quick')]);
    const { rows } = await db.pool.query<{ id: string }>(
      `WITH i AS (
         INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type, start_time)
         VALUES ($1, 1, 'RUNNING_EXECUTION', NULL, 1, 'START_PROCESS', now()) RETURNING id)
       INSERT INTO command (type, workflow_code, workflow_version, workflow_instance_id)
       SELECT 'RECOVER_TOLERANCE_FAULT_PROCESS', $1, 1, id FROM i RETURNING workflow_instance_id AS id`,
      [quick],
    );
    const recovered = Number(rows[0]?.id);
    expect((await db.waitForState(recovered, ['SUCCESS', 'FAILURE'])).state).toBe('SUCCESS');
    // The new run still waits for a place.
    expect((await db.instance(waiting)).state).toBe('SUBMITTED_SUCCESS');
    for (const t of worker.heldTasks()) worker.release(t);
    await waitFor('the waiting run taken', async () => worker.heldTasks().length > 0);
    for (const t of worker.heldTasks()) worker.release(t);
    for (const id of [first, second, waiting]) {
      expect((await db.waitForState(id, ['SUCCESS', 'FAILURE'])).state).toBe('SUCCESS');
    }
  });

  it('still takes the children of sub-workflows at the cap (a parent never waits for a place its own end would free)', async () => {
    const child = await db.createWorkflow([task('long')]);
    const parent = await db.createWorkflow([
      typedTask<SubWorkflowTaskDefinition>({
        name: 'sub',
        type: 'SUB_WORKFLOW',
        subWorkflow: { workflowCode: child },
      }),
    ]);
    const parents = [await db.trigger(parent), await db.trigger(parent)];
    // Both parents hold the cap; their children still start, and their tasks are held.
    await waitFor('both children running', async () => worker.heldTasks().length === CAP);
    for (const t of worker.heldTasks()) worker.release(t);
    for (const id of parents) {
      expect((await db.waitForState(id, ['SUCCESS', 'FAILURE'])).state).toBe('SUCCESS');
    }
  });
});
