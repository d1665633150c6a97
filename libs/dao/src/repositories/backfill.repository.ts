import { Inject, Injectable } from '@nestjs/common';
import type { WorkflowState } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { insertCommandsSql } from './command.repository';
import { gatedStateSql, gatedWaitSeqSql, gateLimitedSql } from './run-gate.repository';
import { firstRow, inTransaction, queryRows } from './sql';

export const BACKFILL_STATES = ['RUNNING', 'SUCCESS', 'FAILURE', 'CANCELLED'] as const;
export type BackfillState = (typeof BACKFILL_STATES)[number];
export type BackfillOrder = 'ASC' | 'DESC';

/** A validated POST /workflows/{code}/backfill: the fire times are already enumerated, in order. */
export interface BackfillInput {
  readonly workflowCode: string;
  readonly cron: string;
  readonly timezone: string;
  readonly params: Record<string, string>;
  readonly parallelism: number;
  readonly order: BackfillOrder;
  readonly start: Date;
  readonly end: Date;
  /** Every fire time in [start, end], sorted in `order`: the runs are created in this order. */
  readonly times: readonly Date[];
}

export interface BackfillRecord {
  id: number;
  workflowCode: string;
  state: BackfillState;
  cron: string;
  timezone: string;
  params: Record<string, string>;
  parallelism: number;
  order: BackfillOrder;
  start: string;
  end: string;
  /** Fire times in the range: the runs the backfill makes in all. */
  total: number;
  /** Runs created so far (instances exist). */
  created: number;
  /** Created runs not finished yet (PAUSE counts: a paused run holds its place). */
  running: number;
  succeeded: number;
  /** Runs that ended FAILURE or STOP. */
  failed: number;
  /** The created runs' instances, in the order they were created (seq). */
  workflowInstanceIds: number[];
  createdAt: string;
  updatedAt: string;
  endTime: string | null;
}

/** What one advance did. */
export interface BackfillAdvance {
  /** The backfill's state after the advance; null when there is no such backfill. */
  state: BackfillState | null;
  /** True when this advance ended it (SUCCESS or FAILURE). */
  ended: boolean;
  /** Runs this advance created, in seq order. */
  createdRuns: Array<{ seq: number; scheduleTime: Date; workflowInstanceId: number }>;
  /** Active runs before this advance created any. */
  active: number;
}

/** Instance states in which a backfill run no longer holds one of its `parallelism` places. */
const RUN_ENDED: readonly WorkflowState[] = ['SUCCESS', 'FAILURE', 'STOP'];
const RUN_ENDED_SQL = RUN_ENDED.map((s) => `'${s}'`).join(', ');

/**
 * THE way a backfill's runs become workflow instances (DESIGN.md section 10): given the CTE
 * `runs` (`workflow_instance_id`, `command_id`, `schedule_time`, one row per date, ids reserved
 * in seq order) and `b` (the backfill row), the CTEs `wi` (the instances, COMPLEMENT_DATA with the
 * date as schedule_time, the backfill's params and timezone) and `cmd` (their commands, through
 * insertCommandsSql). A run of a workflow with a concurrency limit passes the run gate like any
 * fresh run (README "Run concurrency"): it is SERIAL_WAIT with wait_seq = its reserved command id
 * and no command, which the gate writes (with that id) when it admits the run.
 */
export function startBackfillRunsSql(): string {
  return `wi AS (
         INSERT INTO workflow_instance (id, workflow_code, workflow_version, state, host, epoch, command_type,
           params, schedule_time, timezone, backfill_id, wait_seq)
         SELECT runs.workflow_instance_id, d.code, d.version, ${gatedStateSql(gateLimitedSql('d'))}, NULL, 0,
           'COMPLEMENT_DATA', b.params, runs.schedule_time, b.timezone, b.id,
           ${gatedWaitSeqSql(gateLimitedSql('d'), 'runs.command_id')}
         FROM runs CROSS JOIN b JOIN workflow_definition d ON d.code = b.workflow_code
         RETURNING id, workflow_code, workflow_version, params, state),
       cmd AS (${insertCommandsSql({
         from: 'wi JOIN runs ON runs.workflow_instance_id = wi.id',
         type: "'COMPLEMENT_DATA'",
         id: 'runs.command_id',
         where: "wi.state = 'SUBMITTED_SUCCESS'",
         returning: 'id',
       })})`;
}

interface RawBackfill {
  id: string;
  workflow_code: string;
  state: BackfillState;
  cron: string;
  timezone: string;
  params: Record<string, string>;
  parallelism: number;
  order_dir: BackfillOrder;
  range_start: Date;
  range_end: Date;
  total: number;
  created_at: Date;
  updated_at: Date;
  end_time: Date | null;
}

/**
 * Backfills (DESIGN.md section 10). The POST is one INSERT of the backfill and all its dates and
 * creates no instance; masters create the runs by {@link advance}, any master, any number of
 * times, concurrently: each advance is one transaction that locks the backfill row and then, in
 * a second statement (a snapshot taken after the lock), counts the active runs and creates the
 * next ones up to `parallelism`. A master killed mid-advance leaves nothing behind (its
 * transaction aborts); the next advance does the same work again.
 */
@Injectable()
export class BackfillRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /**
   * Whether the workflow exists, and its schedules (cron, timezone), oldest first: a backfill
   * without a cron takes the workflow's schedule.
   */
  async workflowSchedules(code: string): Promise<{
    exists: boolean;
    schedules: Array<{ cron: string; timezone: string }>;
    /** The workflow's concurrency policy (README "Run concurrency"); null when it does not exist. */
    concurrencyPolicy: string | null;
  }> {
    const rows = await queryRows<{
      exists: boolean;
      schedules: Array<{ cron: string; timezone: string }>;
      concurrency_policy: string | null;
    }>(
      this.dataSource,
      `SELECT EXISTS (SELECT 1 FROM workflow_definition WHERE code = $1) AS exists,
              (SELECT concurrency_policy FROM workflow_definition WHERE code = $1) AS concurrency_policy,
              coalesce((SELECT json_agg(json_build_object('cron', cron, 'timezone', timezone) ORDER BY id)
                        FROM schedule WHERE workflow_code = $1), '[]'::json) AS schedules`,
      [code],
    );
    const row = firstRow(rows, `schedules of workflow ${code}`);
    return { exists: row.exists, schedules: row.schedules, concurrencyPolicy: row.concurrency_policy };
  }

  /**
   * One statement: the backfill row and one backfill_run row per fire time (seq 1.. in the
   * given order, by unnest), committed together; the insert trigger NOTIFYs porpoise_backfill.
   * Null when the workflow does not exist.
   */
  async create(input: BackfillInput): Promise<number | null> {
    const rows = await queryRows<{ id: string }>(
      this.dataSource,
      `WITH d AS (SELECT code FROM workflow_definition WHERE code = $1),
       b AS (
         INSERT INTO backfill (workflow_code, cron, timezone, params, parallelism, order_dir, range_start, range_end, total)
         SELECT code, $2, $3, $4::jsonb, $5, $6, $7, $8, $9 FROM d
         RETURNING id),
       r AS (
         INSERT INTO backfill_run (backfill_id, seq, schedule_time)
         SELECT b.id, t.seq, t.schedule_time FROM b, unnest($10::timestamptz[]) WITH ORDINALITY AS t (schedule_time, seq))
       SELECT id FROM b`,
      [
        input.workflowCode,
        input.cron,
        input.timezone,
        JSON.stringify(input.params),
        input.parallelism,
        input.order,
        input.start,
        input.end,
        input.times.length,
        input.times.map((t) => t.toISOString()),
      ],
    );
    return rows[0] ? Number(rows[0].id) : null;
  }

  async get(id: number): Promise<BackfillRecord | null> {
    const rows = await queryRows<
      RawBackfill & { created: number; running: number; succeeded: number; failed: number; ids: string[] }
    >(
      this.dataSource,
      `SELECT b.*, s.created, s.running, s.succeeded, s.failed, s.ids
       FROM backfill b CROSS JOIN LATERAL (
         SELECT count(r.workflow_instance_id)::int AS created,
                count(*) FILTER (WHERE w.state NOT IN (${RUN_ENDED_SQL}))::int AS running,
                count(*) FILTER (WHERE w.state = 'SUCCESS')::int AS succeeded,
                count(*) FILTER (WHERE w.state IN ('FAILURE', 'STOP'))::int AS failed,
                coalesce(array_agg(r.workflow_instance_id ORDER BY r.seq)
                  FILTER (WHERE r.workflow_instance_id IS NOT NULL), '{}') AS ids
         FROM backfill_run r LEFT JOIN workflow_instance w ON w.id = r.workflow_instance_id
         WHERE r.backfill_id = b.id) s
       WHERE b.id = $1`,
      [id],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      id: Number(r.id),
      workflowCode: r.workflow_code,
      state: r.state,
      cron: r.cron,
      timezone: r.timezone,
      params: r.params,
      parallelism: r.parallelism,
      order: r.order_dir,
      start: r.range_start.toISOString(),
      end: r.range_end.toISOString(),
      total: r.total,
      created: r.created,
      running: r.running,
      succeeded: r.succeeded,
      failed: r.failed,
      workflowInstanceIds: r.ids.map(Number),
      createdAt: r.created_at.toISOString(),
      updatedAt: r.updated_at.toISOString(),
      endTime: r.end_time ? r.end_time.toISOString() : null,
    };
  }

  /**
   * Cancels a RUNNING backfill: no run is created after this returns 'cancelled' (the UPDATE
   * waits for an advance holding the row lock, then finds the row still RUNNING or not). Runs
   * already created go on. 'finished' when it had ended already, 'missing' when there is none.
   */
  async cancel(id: number): Promise<'cancelled' | 'finished' | 'missing'> {
    const rows = await queryRows<{ cancelled: boolean; found: boolean }>(
      this.dataSource,
      `WITH u AS (
         UPDATE backfill SET state = 'CANCELLED', end_time = now(), updated_at = now()
         WHERE id = $1 AND state = 'RUNNING' RETURNING id)
       SELECT EXISTS (SELECT 1 FROM u) AS cancelled, EXISTS (SELECT 1 FROM backfill WHERE id = $1) AS found`,
      [id],
    );
    const row = firstRow(rows, `cancel of backfill ${id}`);
    return row.cancelled ? 'cancelled' : row.found ? 'finished' : 'missing';
  }

  /** The RUNNING backfills (partial index), for the masters' sweep. */
  async running(): Promise<Array<{ id: number; workflowCode: string }>> {
    const rows = await queryRows<{ id: string; workflow_code: string }>(
      this.dataSource,
      `SELECT id, workflow_code FROM backfill WHERE state = 'RUNNING' ORDER BY id`,
    );
    return rows.map((r) => ({ id: Number(r.id), workflowCode: r.workflow_code }));
  }

  /**
   * Creates the backfill's next runs, up to `parallelism` active at once, and ends it when
   * nothing is left. One transaction, two statements:
   *  1. `SELECT ... FOR UPDATE` of the RUNNING backfill row: advances (and cancel) serialise
   *     here; nothing happens for a backfill that is not RUNNING.
   *  2. One statement, whose snapshot is taken after the lock is held (a single statement would
   *     count from a snapshot taken before waiting for the lock, so two advancers could both
   *     count the same active runs): counts the active runs (instance not SUCCESS, FAILURE or
   *     STOP), reserves instance and command ids for the lowest-seq unassigned dates
   *     (`parallelism - active` of them, ids ascending with seq), records them in backfill_run
   *     (`IS NULL` under the lock, and the unique keys, make a date impossible to create twice),
   *     inserts the instances and commands ({@link startBackfillRunsSql}), and when nothing was
   *     left to create and nothing is active sets the state: FAILURE if any run ended FAILURE
   *     or STOP, else SUCCESS.
   */
  async advance(id: number, me: string): Promise<BackfillAdvance> {
    return inTransaction(this.dataSource, async (runner) => {
      const locked = await queryRows<{ id: string }>(
        runner,
        `SELECT id FROM backfill WHERE id = $1 AND state = 'RUNNING' FOR UPDATE`,
        [id],
      );
      if (locked.length === 0) {
        const rows = await queryRows<{ state: BackfillState }>(
          runner,
          'SELECT state FROM backfill WHERE id = $1',
          [id],
        );
        return { state: rows[0]?.state ?? null, ended: false, createdRuns: [], active: 0 };
      }
      const rows = await queryRows<{
        active: number;
        runs: Array<{ seq: number; schedule_time: string; workflow_instance_id: number }> | null;
        final_state: BackfillState | null;
      }>(
        runner,
        `WITH b AS (SELECT id, workflow_code, parallelism, params, timezone FROM backfill WHERE id = $1),
         act AS (
           SELECT count(*)::int AS n FROM workflow_instance
           WHERE backfill_id = $1 AND state NOT IN (${RUN_ENDED_SQL})),
         picked AS (
           SELECT seq, schedule_time FROM backfill_run
           WHERE backfill_id = $1 AND workflow_instance_id IS NULL
           ORDER BY seq LIMIT greatest(0, (SELECT parallelism FROM b) - (SELECT n FROM act))),
         ordered AS (
           SELECT seq, schedule_time, nextval('workflow_instance_id_seq') AS workflow_instance_id,
                  nextval('command_id_seq') AS command_id
           FROM (SELECT * FROM picked ORDER BY seq) p),
         runs AS (
           UPDATE backfill_run r SET workflow_instance_id = o.workflow_instance_id, created_by = $2, assigned_at = now()
           FROM ordered o
           WHERE r.backfill_id = $1 AND r.seq = o.seq AND r.workflow_instance_id IS NULL
           RETURNING r.seq, r.schedule_time, r.workflow_instance_id, o.command_id),
         ${startBackfillRunsSql()},
         fin AS (
           UPDATE backfill SET
             state = CASE WHEN EXISTS (
                 SELECT 1 FROM backfill_run r JOIN workflow_instance w ON w.id = r.workflow_instance_id
                 WHERE r.backfill_id = $1 AND w.state IN ('FAILURE', 'STOP'))
               THEN 'FAILURE' ELSE 'SUCCESS' END,
             end_time = now(), updated_at = now()
           WHERE id = $1 AND (SELECT n FROM act) = 0
             AND NOT EXISTS (SELECT 1 FROM backfill_run WHERE backfill_id = $1 AND workflow_instance_id IS NULL)
           RETURNING state)
         SELECT (SELECT n FROM act) AS active,
                (SELECT json_agg(json_build_object('seq', seq, 'schedule_time', schedule_time,
                   'workflow_instance_id', workflow_instance_id) ORDER BY seq)
                 FROM runs) AS runs,
                (SELECT state FROM fin) AS final_state`,
        [id, me],
      );
      const row = firstRow(rows, `advance of backfill ${id}`);
      return {
        state: row.final_state ?? 'RUNNING',
        ended: row.final_state !== null,
        active: row.active,
        createdRuns: (row.runs ?? []).map((r) => ({
          seq: r.seq,
          scheduleTime: new Date(r.schedule_time),
          workflowInstanceId: Number(r.workflow_instance_id),
        })),
      };
    });
  }
}
