import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import {
  createDataSource,
  firstRow,
  queryRows,
  RETENTION_LOCK_KEY,
  RetentionRepository,
  runMigrations,
  WorkflowRunRepository,
} from '../src';

/**
 * Retention (DESIGN.md section 11, Bounds) on a real Postgres, rows back-dated with SQL: ended
 * instances older than the retention go (with their tasks and commands), in batches; recent,
 * unfinished and still referenced ones stay; one master at a time; idempotency keys expire
 * after 24 h, and a key reused after that starts a new run.
 */
describe('retention', () => {
  let pg: TestServer;
  let source: DataSource;
  let retention: RetentionRepository;
  let runs: WorkflowRunRepository;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    source = await createDataSource(pg.endpoint, 'retention-test').initialize();
    retention = new RetentionRepository(source);
    runs = new WorkflowRunRepository(source);
    await define('plain', []);
    await define('upstream', []);
    await define('downstream', [
      { name: 'wait', type: 'DEPENDENT', dependent: { workflowCode: 'upstream', interval: 'day' } },
    ]);
  });

  afterAll(async () => {
    await source?.destroy();
    await pg?.dispose();
  });

  beforeEach(async () => {
    await source.query('DELETE FROM workflow_instance');
    await source.query('DELETE FROM backfill');
    await source.query('DELETE FROM idempotency_key');
    await source.query('DELETE FROM audit_event');
  });

  async function define(code: string, tasks: unknown[]): Promise<void> {
    await source.query(`INSERT INTO workflow_definition (code, name, version) VALUES ($1, $1, 1)`, [code]);
    await source.query(
      `INSERT INTO workflow_definition_version (code, version, name, tasks, edges) VALUES ($1, 1, $1, $2, '[]')`,
      [code, JSON.stringify(tasks)],
    );
  }

  interface Spec {
    state: string;
    /** Days since it ended (null: no end time). */
    endedDaysAgo: number | null;
    code?: string;
    parent?: number;
    backfill?: number;
  }

  async function instance(spec: Spec): Promise<number> {
    const rows = await queryRows<{ id: string }>(
      source,
      `INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type,
         parent_instance_id, backfill_id, start_time, end_time)
       VALUES ($1, 1, $2, NULL, 1, 'START_PROCESS', $3, $4, now() - interval '400 days',
         CASE WHEN $5::int IS NULL THEN NULL ELSE now() - make_interval(days => $5::int) END)
       RETURNING id`,
      [spec.code ?? 'plain', spec.state, spec.parent ?? null, spec.backfill ?? null, spec.endedDaysAgo],
    );
    const id = Number(firstRow(rows, 'instance').id);
    for (const name of ['a', 'b']) {
      await source.query(
        `INSERT INTO task_instance (workflow_instance_id, name, state) VALUES ($1, $2, 'SUCCESS')`,
        [id, name],
      );
    }
    return id;
  }

  async function backfill(state: string): Promise<number> {
    const rows = await queryRows<{ id: string }>(
      source,
      `INSERT INTO backfill (workflow_code, cron, timezone, parallelism, order_dir, range_start, range_end,
         total, state)
       VALUES ('plain', '0 0 * * *', 'UTC', 1, 'ASC', now(), now(), 1, $1) RETURNING id`,
      [state],
    );
    return Number(firstRow(rows, 'backfill').id);
  }

  async function remaining(): Promise<number[]> {
    const rows = await queryRows<{ id: string }>(source, 'SELECT id FROM workflow_instance ORDER BY id');
    return rows.map((r) => Number(r.id));
  }

  async function count(sql: string): Promise<number> {
    return Number(firstRow(await queryRows<{ n: string }>(source, sql), 'count').n);
  }

  /** Batches until one deletes nothing; the count of each. */
  async function sweep(days: number, batch: number): Promise<number[]> {
    const counts: number[] = [];
    for (;;) {
      const r = await retention.deleteEndedInstances(days, batch);
      expect(r.locked).toBe(true);
      counts.push(r.deleted);
      if (r.deleted === 0) return counts;
    }
  }

  it('deletes ended instances past the retention with their tasks, in batches; keeps recent and unfinished ones', async () => {
    const old = [
      await instance({ state: 'SUCCESS', endedDaysAgo: 40 }),
      await instance({ state: 'FAILURE', endedDaysAgo: 31 }),
      await instance({ state: 'STOP', endedDaysAgo: 365 }),
      await instance({ state: 'SUCCESS', endedDaysAgo: 100 }),
      await instance({ state: 'SUCCESS', endedDaysAgo: 50 }),
    ];
    const kept = [
      await instance({ state: 'SUCCESS', endedDaysAgo: 29 }),
      await instance({ state: 'FAILURE', endedDaysAgo: 0 }),
      // Not ended: never deleted, whatever its dates say.
      await instance({ state: 'PAUSE', endedDaysAgo: 60 }),
      await instance({ state: 'RUNNING_EXECUTION', endedDaysAgo: null }),
      await instance({ state: 'READY_STOP', endedDaysAgo: 60 }),
      await instance({ state: 'SERIAL_WAIT', endedDaysAgo: null }),
    ];
    expect(await sweep(30, 2)).toEqual([2, 2, 1, 0]);
    expect(await remaining()).toEqual(kept);
    expect(
      await count(
        `SELECT count(*) AS n FROM task_instance WHERE workflow_instance_id = ANY('{${old.join(',')}}')`,
      ),
    ).toBe(0);
    expect(await count('SELECT count(*) AS n FROM task_instance')).toBe(kept.length * 2);
  });

  it('keeps what something still waits on: unfinished parents and children, pending commands, running backfills, DEPENDENT targets', async () => {
    const runningParent = await instance({ state: 'RUNNING_EXECUTION', endedDaysAgo: null });
    const childOfRunning = await instance({ state: 'SUCCESS', endedDaysAgo: 90, parent: runningParent });
    const oldParent = await instance({ state: 'STOP', endedDaysAgo: 90 });
    const runningChild = await instance({
      state: 'RUNNING_EXECUTION',
      endedDaysAgo: null,
      parent: oldParent,
    });
    const rerunAsked = await instance({ state: 'SUCCESS', endedDaysAgo: 90 });
    await source.query(
      `INSERT INTO command (type, workflow_code, workflow_version, workflow_instance_id)
       VALUES ('REPEAT_RUNNING', 'plain', 1, $1)`,
      [rerunAsked],
    );
    const running = await backfill('RUNNING');
    const ofRunningBackfill = await instance({ state: 'SUCCESS', endedDaysAgo: 90, backfill: running });
    const done = await backfill('SUCCESS');
    const ofDoneBackfill = await instance({ state: 'SUCCESS', endedDaysAgo: 90, backfill: done });
    const awaitedRun = await instance({ state: 'SUCCESS', endedDaysAgo: 90, code: 'upstream' });
    const waiter = await instance({ state: 'RUNNING_EXECUTION', endedDaysAgo: null, code: 'downstream' });
    // Both ended and old: parent and child go together.
    const endedParent = await instance({ state: 'SUCCESS', endedDaysAgo: 90 });
    const endedChild = await instance({ state: 'FAILURE', endedDaysAgo: 90, parent: endedParent });

    expect(await sweep(30, 1000)).toEqual([3, 0]);
    const left = await remaining();
    for (const id of [
      childOfRunning,
      oldParent,
      runningChild,
      rerunAsked,
      ofRunningBackfill,
      awaitedRun,
      waiter,
    ]) {
      expect(left).toContain(id);
    }
    for (const id of [ofDoneBackfill, endedParent, endedChild]) expect(left).not.toContain(id);

    // Once nothing waits any more, they go too.
    await source.query(
      `UPDATE workflow_instance SET state = 'SUCCESS', end_time = now() - interval '90 days'
                        WHERE id = ANY($1)`,
      [[runningParent, runningChild, waiter]],
    );
    await source.query('DELETE FROM command');
    await source.query(`UPDATE backfill SET state = 'SUCCESS'`);
    expect(await sweep(30, 1000)).toEqual([8, 0]);
    expect(await remaining()).toEqual([]);
  });

  it('deletes nothing while another master holds the retention lock', async () => {
    const id = await instance({ state: 'SUCCESS', endedDaysAgo: 90 });
    const other = new Client({ connectionString: pg.endpoint });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock($1)', [RETENTION_LOCK_KEY]);
      expect(await retention.deleteEndedInstances(30, 1000)).toEqual({ locked: false, deleted: 0 });
      expect(await retention.deleteExpiredIdempotencyKeys(1000)).toEqual({ locked: false, deleted: 0 });
      await other.query('COMMIT');
    } finally {
      await other.end();
    }
    expect(await retention.deleteEndedInstances(30, 1000)).toEqual({ locked: true, deleted: 1 });
    expect(await remaining()).not.toContain(id);
  });

  it('expires idempotency keys after 24 h: pruned by the sweep, and a reused expired key starts a new run', async () => {
    const first = await runs.trigger('plain', {}, 'key-1');
    const again = await runs.trigger('plain', {}, 'key-1');
    expect(again).toMatchObject({ repeated: true, workflowInstanceId: first?.workflowInstanceId });
    await runs.trigger('plain', {}, 'fresh');
    await runs.trigger('plain', {}, 'stale');
    await source.query(
      `UPDATE idempotency_key SET created_at = now() - interval '25 hours' WHERE key <> 'fresh'`,
    );

    // Reused after expiry: a new run, and the key now answers with it.
    const later = await runs.trigger('plain', {}, 'key-1');
    expect(later).toMatchObject({ repeated: false });
    expect(later?.workflowInstanceId).not.toBe(first?.workflowInstanceId);
    expect(await runs.trigger('plain', {}, 'key-1')).toMatchObject({
      repeated: true,
      workflowInstanceId: later?.workflowInstanceId,
    });

    expect(await retention.deleteExpiredIdempotencyKeys(1000)).toEqual({ locked: true, deleted: 1 });
    const keys = await queryRows<{ key: string }>(source, 'SELECT key FROM idempotency_key ORDER BY key');
    expect(keys.map((k) => k.key)).toEqual(['fresh', 'key-1']);
  });

  it('deletes audit rows older than AUDIT_RETENTION_DAYS, oldest first, and keeps the rest', async () => {
    await source.query(
      `INSERT INTO audit_event (at, token_id, token_name, method, route, target, status)
       SELECT now() - make_interval(days => d), NULL, 'admin', 'POST', '/api/v1/workflows', NULL, 201
       FROM unnest($1::int[]) AS d`,
      [[400, 370, 366, 364, 10, 0]],
    );
    // Batches of 2: the first is full, the second takes the last old row.
    expect(await retention.deleteOldAuditEvents(365, 2)).toEqual({ locked: true, deleted: 2 });
    expect(await retention.deleteOldAuditEvents(365, 2)).toEqual({ locked: true, deleted: 1 });
    expect(await retention.deleteOldAuditEvents(365, 2)).toEqual({ locked: true, deleted: 0 });
    const left = await queryRows<{ days: number }>(
      source,
      `SELECT round(extract(epoch FROM now() - at) / 86400)::int AS days FROM audit_event ORDER BY at`,
    );
    expect(left.map((r) => r.days)).toEqual([364, 10, 0]);
  });
});
