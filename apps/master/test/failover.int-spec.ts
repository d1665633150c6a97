import { nth } from '@porpoise/test-harness/defined';
/**
 * Master failover and hand-over with real masters booted in-process on a real Postgres and the
 * JDBC registry on it; workers are FakeWorkers (real registry keys, real gRPC). The process
 * level (SIGKILL, SIGSTOP, SIGTERM of master processes, ZooKeeper, a real worker) is in
 * failover-processes.int-spec.ts. Nothing here asserts timings.
 */
import { runMigrations, InstanceStateRepository, createDataSource } from '@porpoise/dao';
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import type { DataSource } from 'typeorm';
import { MasterFailoverService } from '@porpoise/failover';
import { FakeWorker, Journal } from './support/fake-worker';
import { Db, SECRET, bootMaster, task, waitForMembership, type RunningMaster } from './support/fixtures';

describe('master failover (in-process masters, JDBC registry)', () => {
  let pg: TestServer;
  let db: Db;
  let journal: Journal;
  let worker: FakeWorker;
  const masters: RunningMaster[] = [];
  let code = '';
  let quick = '';

  const boot = async () => {
    const m = await bootMaster(pg.endpoint);
    masters.push(m);
    return m;
  };
  const close = async (m: RunningMaster) => {
    masters.splice(masters.indexOf(m), 1);
    await m.app.close();
  };
  const failoverIdle = (m: RunningMaster) => m.app.get(MasterFailoverService).idle();
  const registered = async (m: RunningMaster) =>
    (await db.pool.query(`SELECT 1 FROM registry_data WHERE key = $1`, [`/nodes/master/${m.address}`]))
      .rowCount === 1;

  /** Triggers n runs of [slow → tail]; returns their ids once every `slow` runs (held) on the worker. */
  const startRuns = async (n: number): Promise<Array<{ id: number; slow: number }>> => {
    const ids = await Promise.all(Array.from({ length: n }, () => db.trigger(code)));
    const out: Array<{ id: number; slow: number }> = [];
    for (const id of ids) out.push({ id, slow: (await db.waitForTask(id, 'slow', 'RUNNING_EXECUTION')).id });
    return out;
  };

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    db = new Db(pg.endpoint);
    journal = new Journal();
    worker = await FakeWorker.start({
      databaseUrl: pg.endpoint,
      secret: SECRET,
      journal,
      behaviour: (spec) =>
        spec.taskName === 'slow' ? { kind: 'hold', then: 'SUCCESS' } : { kind: 'succeed' },
    });
    // A held task is still running when a new owner asks.
    worker.takeOverAnswer = (id) =>
      worker.heldTasks().includes(id)
        ? { status: 'RUNNING', result: null, startTimeMs: Date.now() }
        : { status: 'UNKNOWN', result: null, startTimeMs: 0 };
    code = await db.createWorkflow([task('slow'), task('tail')], [{ from: 'slow', to: 'tail' }]);
    quick = await db.createWorkflow([task('quick')]);
  });

  afterEach(async () => {
    // Each test closes its masters; a failed one must not leave them to the next.
    for (const m of [...masters].reverse()) await close(m).catch(() => undefined);
  });

  afterAll(async () => {
    await worker?.close();
    await db?.close();
    await pg?.dispose();
  });

  describe('the hand-back transaction under real concurrency', () => {
    let sources: DataSource[] = [];

    beforeAll(async () => {
      sources = [1, 2, 3].map((n) => createDataSource(pg.endpoint, `failover-test-${n}`));
      await Promise.all(sources.map((s) => s.initialize()));
    });

    afterAll(async () => {
      await Promise.all(sources.map((s) => s.destroy()));
    });

    it('the dropped owner, the failover winner and a stale duplicate hand back the same instances at once: one command each', async () => {
      const repos = sources.map((s) => new InstanceStateRepository(s));
      const { rows } = await db.pool.query<{ id: string }>(
        `INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type)
         SELECT $1, 1, 'RUNNING_EXECUTION', '10.255.0.2:5678', 4, 'START_PROCESS' FROM generate_series(1, 40)
         RETURNING id`,
        [quick],
      );
      const ids = rows.map((r) => Number(r.id));
      // The failover repository reads the candidates (what a winner sees under the lock).
      const seen = await nth(repos, 1).unfinishedOwnedBy(['10.255.0.2:5678']);
      expect(seen.map((s) => s.id).sort((x, y) => x - y)).toEqual(ids);
      const results = await Promise.all(
        seen.flatMap((i) => repos.map((r) => r.handBack({ instanceId: i.id, host: i.host, epoch: i.epoch }))),
      );
      expect(results.filter((r) => r !== undefined)).toHaveLength(ids.length);
      const commands = await db.pool.query<{ workflow_instance_id: string; n: string; type: string }>(
        `SELECT workflow_instance_id, type, count(*) AS n FROM command
         WHERE workflow_instance_id = ANY($1::bigint[]) GROUP BY workflow_instance_id, type`,
        [ids],
      );
      expect(commands.rows).toHaveLength(ids.length);
      expect(
        commands.rows.every((r) => Number(r.n) === 1 && r.type === 'RECOVER_TOLERANCE_FAULT_PROCESS'),
      ).toBe(true);
      const after = await db.pool.query<{ host: string | null; epoch: string }>(
        `SELECT DISTINCT host, epoch FROM workflow_instance WHERE id = ANY($1::bigint[])`,
        [ids],
      );
      expect(after.rows).toEqual([{ host: null, epoch: '5' }]);
      // Not left for the masters of the later tests.
      await db.pool.query(`DELETE FROM command WHERE workflow_instance_id = ANY($1::bigint[])`, [ids]);
      await db.pool.query(`UPDATE workflow_instance SET state = 'STOP' WHERE id = ANY($1::bigint[])`, [ids]);
    });
  });

  it('a master starting beside a live one takes only what no live master drives; a graceful close hands its instances over at once', async () => {
    const a = await boot();
    await waitForMembership([a]);
    const runs = await startRuns(3);
    // An instance whose master vanished while no master ran (its host is no live master).
    const ghost = await db.pool.query<{ id: string }>(
      `INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type, start_time)
       VALUES ($1, 1, 'RUNNING_EXECUTION', '10.255.0.1:5678', 6, 'START_PROCESS', now()) RETURNING id`,
      [quick],
    );
    const ghostId = Number(nth(ghost.rows, 0).id);

    const b = await boot();
    await waitForMembership([a, b]);
    await failoverIdle(b);
    for (const r of runs) expect(await db.instance(r.id)).toMatchObject({ host: a.address, epoch: 1 });
    // The ghost's instance was taken (by B's start-up pass, or A's REMOVE-less sweep) and recovered.
    const ghostDone = await db.waitForState(ghostId, ['SUCCESS', 'FAILURE']);
    expect(ghostDone).toMatchObject({
      state: 'SUCCESS',
      epoch: 8,
      command_type: 'RECOVER_TOLERANCE_FAULT_PROCESS',
    });

    await close(a);
    expect(await registered(a)).toBe(false);
    // Handed over before the key went: B recovers them (epoch 1 → 2 hand-back → 3 consume).
    for (const r of runs) {
      await waitFor(`instance ${r.id} to be recovered by B`, async () => {
        const i = await db.instance(r.id);
        return i.host === b.address && i.epoch === 3;
      });
    }
    for (const r of runs) {
      expect((await db.instance(r.id)).command_type).toBe('RECOVER_TOLERANCE_FAULT_PROCESS');
      await waitFor(`the running task of ${r.id} to be re-attached`, () =>
        journal.entries.some((e) => e.what === 'takeOver' && e.taskInstanceId === r.slow),
      );
      worker.release(r.slow);
    }
    for (const r of runs) {
      const done = await db.waitForState(r.id, ['SUCCESS', 'FAILURE']);
      expect(done).toMatchObject({ state: 'SUCCESS', host: b.address, epoch: 3 });
      expect((await db.tasks(r.id)).map((t) => [t.name, t.attempt, t.state])).toEqual([
        ['slow', 1, 'SUCCESS'],
        ['tail', 1, 'SUCCESS'],
      ]);
      // Never dispatched again: re-attached.
      expect(journal.dispatches('slow').filter((e) => e.taskInstanceId === r.slow)).toHaveLength(1);
    }
  });

  it('outputs of an upstream task reach a downstream task across a failover (read back from task_instance.outputs)', async () => {
    const flow = await db.createWorkflow(
      [task('first'), task('slow'), task('tail')],
      [
        { from: 'first', to: 'slow' },
        { from: 'slow', to: 'tail' },
      ],
    );
    const previous = worker.behaviour;
    worker.behaviour = (spec) =>
      spec.taskName === 'first'
        ? { kind: 'succeed', outputs: { x: 'from-first' } }
        : spec.taskName === 'slow'
          ? { kind: 'hold', then: 'SUCCESS' }
          : { kind: 'succeed' };
    try {
      const a = await boot();
      await waitForMembership([a]);
      const id = await db.trigger(flow, { k: 'run' });
      const slow = await db.waitForTask(id, 'slow', 'RUNNING_EXECUTION');
      const b = await boot();
      await waitForMembership([a, b]);
      await close(a);
      await waitFor(
        `instance ${id} to be recovered by B`,
        async () => (await db.instance(id)).host === b.address,
      );
      await waitFor(`the running task of ${id} to be re-attached`, () =>
        journal.entries.some((e) => e.what === 'takeOver' && e.taskInstanceId === slow.id),
      );
      worker.release(slow.id);
      const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
      expect(done).toMatchObject({ state: 'SUCCESS', host: b.address });
      const tail = journal.dispatches('tail').filter((e) => e.params?.k === 'run');
      expect(tail.map((e) => e.params)).toEqual([{ k: 'run', x: 'from-first' }]);
      expect(journal.dispatches('slow').filter((e) => e.taskInstanceId === slow.id)[0]?.params).toEqual({
        k: 'run',
        x: 'from-first',
      });
    } finally {
      worker.behaviour = previous;
    }
  });

  it('after a LOST session, the master’s own hand-back and another master’s failover never both win: one recovery per instance', async () => {
    const c = await boot();
    await waitForMembership([c]);
    const runs = await startRuns(8);
    const d = await boot();
    await waitForMembership([c, d]);
    await failoverIdle(d);
    for (const r of runs) expect(await db.instance(r.id)).toMatchObject({ host: c.address, epoch: 1 });

    // The database expires C's registry session: D sees C's REMOVE and fails it over, while C
    // sees LOST, drops its runners, opens a new session and hands them back itself.
    await db.pool.query(`SELECT registry_remove_client(owner_client_id) FROM registry_data WHERE key = $1`, [
      `/nodes/master/${c.address}`,
    ]);
    for (const r of runs) {
      await waitFor(`instance ${r.id} to be recovered`, async () => (await db.instance(r.id)).epoch >= 3);
    }
    await waitForMembership([c, d]);
    for (const r of runs) {
      await waitFor(`the running task of ${r.id} to be re-attached`, () =>
        journal.entries.some((e) => e.what === 'takeOver' && e.taskInstanceId === r.slow),
      );
      worker.release(r.slow);
    }
    for (const r of runs) {
      const done = await db.waitForState(r.id, ['SUCCESS', 'FAILURE']);
      // Exactly one hand-back (+1) and one consume (+1): a second command would have been a
      // second consume attempt, and a second winner a second epoch bump.
      expect(done).toMatchObject({ state: 'SUCCESS', epoch: 3 });
      expect((await db.tasks(r.id)).map((t) => [t.name, t.attempt, t.state])).toEqual([
        ['slow', 1, 'SUCCESS'],
        ['tail', 1, 'SUCCESS'],
      ]);
    }
    const left = await db.pool.query(`SELECT 1 FROM command WHERE workflow_instance_id = ANY($1::bigint[])`, [
      runs.map((r) => r.id),
    ]);
    expect(left.rowCount).toBe(0);
  });
});
