import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { BackfillRepository, createDataSource, queryRows, runMigrations, type BackfillInput } from '../src';

/**
 * Backfill advances in the database (DESIGN.md section 10): any number of masters advance one
 * backfill at once; at most `parallelism` of its runs are ever active, each date gets exactly
 * one instance, and the backfill ends SUCCESS or FAILURE once all ran.
 */
describe('backfill advance', () => {
  let pg: TestServer;
  /** Two masters' pools. */
  let a: DataSource;
  let b: DataSource;
  let repoA: BackfillRepository;
  let repoB: BackfillRepository;
  let admin: Client;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    a = await createDataSource(pg.endpoint, 'backfill-test-a').initialize();
    b = await createDataSource(pg.endpoint, 'backfill-test-b').initialize();
    repoA = new BackfillRepository(a);
    repoB = new BackfillRepository(b);
    admin = new Client({ connectionString: pg.endpoint });
    await admin.connect();
    await admin.query(`INSERT INTO workflow_definition (code, name, version) VALUES ('bf_wf', 'bf_wf', 2)`);
    for (const v of [1, 2]) {
      await admin.query(
        `INSERT INTO workflow_definition_version (code, version, name, tasks, edges) VALUES ('bf_wf', $1, 'bf_wf', '[]', '[]')`,
        [v],
      );
    }
  });

  afterAll(async () => {
    await admin?.end();
    await a?.destroy();
    await b?.destroy();
    await pg?.dispose();
  });

  function days(n: number, order: 'ASC' | 'DESC' = 'ASC'): BackfillInput {
    const times = Array.from({ length: n }, (_, i) => new Date(Date.UTC(2024, 0, 1 + i)));
    return {
      workflowCode: 'bf_wf',
      cron: '0 0 * * *',
      timezone: 'Europe/Berlin',
      params: { region: 'eu' },
      parallelism: 3,
      order,
      start: times[0] ?? new Date(0),
      end: times[n - 1] ?? new Date(0),
      times: order === 'DESC' ? [...times].reverse() : times,
    };
  }

  interface RunRow {
    id: number;
    state: string;
    schedule_time: Date;
    seq: number;
  }

  async function runs(backfillId: number): Promise<RunRow[]> {
    const { rows } = await admin.query<{ id: string; state: string; schedule_time: Date; seq: number }>(
      `SELECT w.id, w.state, w.schedule_time, r.seq FROM workflow_instance w
       LEFT JOIN backfill_run r ON r.workflow_instance_id = w.id
       WHERE w.backfill_id = $1 ORDER BY w.id`,
      [backfillId],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  }

  const active = (rows: RunRow[]) => rows.filter((r) => !['SUCCESS', 'FAILURE', 'STOP'].includes(r.state));

  it('creates the first runs with their schedule time, params, time zone and a COMPLEMENT_DATA command', async () => {
    const id = await repoA.create(days(5));
    expect(id).not.toBeNull();
    const backfillId = Number(id);
    expect(await runs(backfillId)).toEqual([]);
    const first = await repoA.advance(backfillId, 'm-a');
    expect(first).toMatchObject({ state: 'RUNNING', ended: false, active: 0 });
    expect(first.createdRuns.map((r) => r.seq)).toEqual([1, 2, 3]);
    const { rows } = await admin.query(
      `SELECT w.state, w.command_type, w.params, w.timezone, w.workflow_version, w.host, w.schedule_time,
              c.type AS command, r.created_by
       FROM workflow_instance w JOIN command c ON c.workflow_instance_id = w.id
       JOIN backfill_run r ON r.workflow_instance_id = w.id
       WHERE w.backfill_id = $1 ORDER BY w.id`,
      [backfillId],
    );
    expect(rows).toEqual(
      [1, 2, 3].map((d) => ({
        state: 'SUBMITTED_SUCCESS',
        command_type: 'COMPLEMENT_DATA',
        params: { region: 'eu' },
        timezone: 'Europe/Berlin',
        workflow_version: 2,
        host: null,
        schedule_time: new Date(Date.UTC(2024, 0, d)),
        command: 'COMPLEMENT_DATA',
        created_by: 'm-a',
      })),
    );
    // Nothing ended: nothing more to create.
    expect((await repoB.advance(backfillId, 'm-b')).createdRuns).toEqual([]);
    expect(await runs(backfillId)).toHaveLength(3);
  });

  it('two masters advancing at once never exceed parallelism nor create a date twice; a failure ends it FAILURE', async () => {
    const n = 40;
    const backfillId = Number(await repoA.create(days(n, 'DESC')));
    let maxActive = 0;
    let round = 0;
    for (;;) {
      round++;
      // Several advances from both masters at once, racing on the row lock.
      await Promise.all([
        repoA.advance(backfillId, 'm-a'),
        repoB.advance(backfillId, 'm-b'),
        repoA.advance(backfillId, 'm-a'),
        repoB.advance(backfillId, 'm-b'),
      ]);
      const rows = await runs(backfillId);
      maxActive = Math.max(maxActive, active(rows).length);
      expect(active(rows).length).toBeLessThanOrEqual(3);
      const state = (
        await queryRows<{ state: string }>(a, 'SELECT state FROM backfill WHERE id = $1', [backfillId])
      )[0]?.state;
      if (state !== 'RUNNING') {
        expect(rows).toHaveLength(n);
        expect(new Set(rows.map((r) => r.schedule_time.getTime())).size).toBe(n);
        // DESC: created newest date first, so instance ids descend with the date.
        const times = rows.map((r) => r.schedule_time.getTime());
        expect(times).toEqual([...times].sort((x, y) => y - x));
        expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
        expect(state).toBe('FAILURE');
        break;
      }
      if (round > 200) throw new Error('the backfill did not end');
      // End one or two of the active runs (the 7th run fails), concurrently with more advances.
      const ending = active(rows).slice(0, 1 + (round % 2));
      await Promise.all([
        ...ending.map((r) =>
          admin.query(`UPDATE workflow_instance SET state = $2, end_time = now() WHERE id = $1`, [
            r.id,
            r.seq === 7 ? 'FAILURE' : 'SUCCESS',
          ]),
        ),
        repoB.advance(backfillId, 'm-b'),
      ]);
    }
    expect(maxActive).toBe(3);
    const got = await repoA.get(backfillId);
    expect(got).toMatchObject({
      state: 'FAILURE',
      total: n,
      created: n,
      running: 0,
      succeeded: n - 1,
      failed: 1,
    });
    expect(got?.workflowInstanceIds).toHaveLength(n);
    expect(got?.endTime).not.toBeNull();
  });

  it('an advance waiting for the lock counts what the holder created (the count is a later statement)', async () => {
    const backfillId = Number(await repoA.create({ ...days(6), parallelism: 2 }));
    await repoA.advance(backfillId, 'm-a');
    const [first] = await runs(backfillId);
    if (!first) throw new Error('no run');
    await admin.query(`UPDATE workflow_instance SET state = 'SUCCESS' WHERE id = $1`, [first.id]);
    // Another "master" holds the backfill row: both advances below wait for it.
    const holder = new Client({ connectionString: pg.endpoint });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM backfill WHERE id = $1 FOR UPDATE', [backfillId]);
      const waiting = Promise.all([repoA.advance(backfillId, 'm-a'), repoB.advance(backfillId, 'm-b')]);
      // Both are blocked on the lock now (their statements began before the holder commits).
      await waitForLockWaiters(2);
      // Meanwhile the holder ends the second run too, then lets go.
      const second = (await runs(backfillId))[1];
      await holder.query(`UPDATE workflow_instance SET state = 'SUCCESS' WHERE id = $1`, [second?.id]);
      await holder.query('COMMIT');
      const [x, y] = await waiting;
      // Two places were free; the two advances together filled exactly them.
      expect((x?.createdRuns.length ?? 0) + (y?.createdRuns.length ?? 0)).toBe(2);
      expect(active(await runs(backfillId))).toHaveLength(2);
    } finally {
      await holder.end();
    }
  });

  async function waitForLockWaiters(n: number): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock'
         AND application_name LIKE 'backfill-test-%'`,
      );
      if ((rows[0]?.n ?? 0) >= n) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${n} advances never waited for the lock`);
  }

  it('cancel waits for an advance in progress, and no run is created after it', async () => {
    const backfillId = Number(await repoA.create(days(4)));
    const holder = new Client({ connectionString: pg.endpoint });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM backfill WHERE id = $1 FOR UPDATE', [backfillId]);
      const cancelling = repoB.cancel(backfillId);
      await waitForLockWaiters(1);
      await holder.query('COMMIT');
      expect(await cancelling).toBe('cancelled');
    } finally {
      await holder.end();
    }
    expect(await repoA.advance(backfillId, 'm-a')).toMatchObject({ state: 'CANCELLED', createdRuns: [] });
    expect(await runs(backfillId)).toEqual([]);
    expect(await repoA.cancel(backfillId)).toBe('finished');
    expect(await repoA.cancel(999_999)).toBe('missing');
    expect(await repoA.get(999_999)).toBeNull();
  });

  it('a PAUSE run holds its place; a STOP run frees it and makes the backfill FAILURE', async () => {
    const backfillId = Number(await repoA.create({ ...days(2), parallelism: 1 }));
    await repoA.advance(backfillId, 'm-a');
    const [only] = await runs(backfillId);
    await admin.query(`UPDATE workflow_instance SET state = 'PAUSE' WHERE id = $1`, [only?.id]);
    expect((await repoA.advance(backfillId, 'm-a')).createdRuns).toEqual([]);
    await admin.query(`UPDATE workflow_instance SET state = 'STOP' WHERE id = $1`, [only?.id]);
    expect((await repoA.advance(backfillId, 'm-a')).createdRuns).toHaveLength(1);
    const [, last] = await runs(backfillId);
    await admin.query(`UPDATE workflow_instance SET state = 'SUCCESS' WHERE id = $1`, [last?.id]);
    expect(await repoA.advance(backfillId, 'm-a')).toMatchObject({ state: 'FAILURE', ended: true });
  });
});
