import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { insertCommandsSql } from './command.repository';
import { gatedStateSql, gatedWaitSeqSql, gateLimitedSql } from './run-gate.repository';
import { firstRow, inTransaction, queryRows } from './sql';

/** What a schedule does with fire times missed while no master ran (DESIGN.md section 10). */
export const MISFIRE_POLICIES = ['RUN_ONCE', 'SKIP', 'RUN_ALL'] as const;
export type MisfirePolicy = (typeof MISFIRE_POLICIES)[number];

export interface ScheduleRecord {
  readonly id: number;
  readonly workflowCode: string;
  readonly cron: string;
  readonly timezone: string;
  readonly params: Record<string, string>;
  readonly startTime: Date | null;
  readonly endTime: Date | null;
  readonly enabled: boolean;
  readonly misfirePolicy: MisfirePolicy;
  /** Bumped by every change (PATCH); a master that read an older revision fires nothing. */
  readonly revision: number;
  /** The next fire time not yet handled (the cursor); null while disabled. */
  readonly nextFireTime: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** The settable fields of a schedule, as POST and PATCH store them. */
export interface ScheduleFields {
  readonly cron: string;
  readonly timezone: string;
  readonly params: Record<string, string>;
  readonly startTime: Date | null;
  readonly endTime: Date | null;
  readonly enabled: boolean;
  readonly misfirePolicy: MisfirePolicy;
  readonly nextFireTime: Date | null;
}

export interface NewSchedule extends ScheduleFields {
  readonly workflowCode: string;
}

export type ScheduleUpdate =
  | { readonly status: 'updated'; readonly schedule: ScheduleRecord }
  | { readonly status: 'notFound' }
  | { readonly status: 'unknownWorkflow'; readonly workflowCode: string };

/** A schedule whose cursor has come (by the database's clock), as the masters' fire loop reads it. */
export interface DueSchedule {
  readonly id: number;
  readonly revision: number;
  readonly workflowCode: string;
  readonly cron: string;
  readonly timezone: string;
  readonly misfirePolicy: MisfirePolicy;
  readonly startTime: Date | null;
  readonly endTime: Date | null;
  /** null: never computed yet (a schedule stored without one). */
  readonly nextFireTime: Date | null;
  /**
   * The stored value as Postgres prints it: the compare-and-set uses this, because a JS Date
   * keeps only milliseconds and would never equal a timestamptz with microseconds.
   */
  readonly nextFireText: string | null;
}

export interface DueSchedules {
  /** The database's now() when it looked, in ms since the epoch: the only clock fires use. */
  readonly dbNowMs: number;
  readonly schedules: DueSchedule[];
  /** The earliest cursor of an enabled schedule not due yet (ms), or null: for the tick's sleep. */
  readonly nextDueMs: number | null;
}

/** One fire statement's work: the cursor compare-and-set and the fire times to claim. */
export interface FireRequest {
  readonly scheduleId: number;
  readonly revision: number;
  /** next_fire_time as read (DueSchedule.nextFireText). */
  readonly cursorText: string;
  /** The new cursor: the first fire time not handled by this statement. */
  readonly cursorNew: Date;
  /** The database's now() the plan was made from (DueSchedules.dbNowMs), kept in the ledger. */
  readonly decidedAtMs: number;
  /** Fire times to record, each run (FIRED, one instance) or not (MISFIRE_SKIPPED). */
  readonly fires: ReadonlyArray<{ readonly time: Date; readonly run: boolean }>;
}

export interface FireOutcome {
  /** False: the compare-and-set failed (another master fired, or the schedule changed): nothing written. */
  readonly applied: boolean;
  /** Fire times this statement claimed and ran, with their instance. */
  readonly fired: ReadonlyArray<{ readonly time: Date; readonly instanceId: number }>;
  /** Fire times this statement claimed as MISFIRE_SKIPPED. */
  readonly skipped: number;
}

interface ScheduleRow {
  id: string;
  workflow_code: string;
  cron: string;
  timezone: string;
  params: Record<string, string>;
  start_time: Date | null;
  end_time: Date | null;
  enabled: boolean;
  misfire_policy: MisfirePolicy;
  revision: number;
  next_fire_time: Date | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = `id, workflow_code, cron, timezone, params, start_time, end_time, enabled, misfire_policy,
  revision, next_fire_time, created_at, updated_at`;

const toRecord = (r: ScheduleRow): ScheduleRecord => ({
  id: Number(r.id),
  workflowCode: r.workflow_code,
  cron: r.cron,
  timezone: r.timezone,
  params: r.params,
  startTime: r.start_time,
  endTime: r.end_time,
  enabled: r.enabled,
  misfirePolicy: r.misfire_policy,
  revision: r.revision,
  nextFireTime: r.next_fire_time,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/**
 * Cron schedules of workflows: the API creates, reads, changes and deletes them; the masters fire
 * them (due, fire). Every time decision uses the database's clock (now()), never a process's.
 */
@Injectable()
export class ScheduleRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** The database's clock: the first fire time of a new or changed schedule is computed from it. */
  async dbNow(): Promise<Date> {
    const rows = await queryRows<{ now: Date }>(this.dataSource, 'SELECT now() AS now');
    return firstRow(rows, 'now()').now;
  }

  /** Null when the workflow is unknown (the insert selects from the definition, so nothing is stored). */
  async create(s: NewSchedule): Promise<ScheduleRecord | null> {
    const rows = await queryRows<ScheduleRow>(
      this.dataSource,
      `INSERT INTO schedule (workflow_code, cron, timezone, params, start_time, end_time, enabled, misfire_policy,
                             next_fire_time)
       SELECT code, $2, $3, $4::jsonb, $5, $6, $7, $8, $9 FROM workflow_definition WHERE code = $1
       RETURNING ${COLUMNS}`,
      [
        s.workflowCode,
        s.cron,
        s.timezone,
        JSON.stringify(s.params),
        s.startTime,
        s.endTime,
        s.enabled,
        s.misfirePolicy,
        s.nextFireTime,
      ],
    );
    const row = rows[0];
    return row === undefined ? null : toRecord(row);
  }

  async get(id: number): Promise<ScheduleRecord | null> {
    const rows = await queryRows<ScheduleRow>(
      this.dataSource,
      `SELECT ${COLUMNS} FROM schedule WHERE id = $1`,
      [id],
    );
    const row = rows[0];
    return row === undefined ? null : toRecord(row);
  }

  /**
   * Changes a schedule in one transaction: locks its row, reads the database's now(), asks
   * `change` for the new fields (it may throw, e.g. a 400: nothing is written), stores them with
   * revision + 1. A workflow code that names no workflow changes nothing.
   */
  async update(
    id: number,
    change: (current: ScheduleRecord, dbNow: Date) => NewSchedule,
  ): Promise<ScheduleUpdate> {
    return inTransaction(this.dataSource, async (runner): Promise<ScheduleUpdate> => {
      const locked = await queryRows<ScheduleRow & { db_now: Date }>(
        runner,
        `SELECT ${COLUMNS}, now() AS db_now FROM schedule WHERE id = $1 FOR NO KEY UPDATE`,
        [id],
      );
      const row = locked[0];
      if (row === undefined) return { status: 'notFound' };
      const next = change(toRecord(row), row.db_now);
      const updated = await queryRows<ScheduleRow>(
        runner,
        `UPDATE schedule SET workflow_code = def.code, cron = $2, timezone = $3, params = $4::jsonb,
                start_time = $5, end_time = $6, enabled = $7, misfire_policy = $8, next_fire_time = $9,
                revision = revision + 1, updated_at = now()
         FROM (SELECT code FROM workflow_definition WHERE code = $10) AS def
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [
          id,
          next.cron,
          next.timezone,
          JSON.stringify(next.params),
          next.startTime,
          next.endTime,
          next.enabled,
          next.misfirePolicy,
          next.nextFireTime,
          next.workflowCode,
        ],
      );
      const done = updated[0];
      if (done === undefined) return { status: 'unknownWorkflow', workflowCode: next.workflowCode };
      return { status: 'updated', schedule: toRecord(done) };
    });
  }

  async list(filter: {
    workflowCode?: string;
    limit: number;
    offset: number;
  }): Promise<{ items: ScheduleRecord[]; total: number }> {
    const byCode = filter.workflowCode !== undefined;
    const whereSql = byCode ? 'WHERE workflow_code = $1' : '';
    const params = byCode ? [filter.workflowCode] : [];
    const [rows, count] = await Promise.all([
      queryRows<ScheduleRow>(
        this.dataSource,
        `SELECT ${COLUMNS} FROM schedule ${whereSql}
         ORDER BY id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, filter.limit, filter.offset],
      ),
      queryRows<{ total: string }>(
        this.dataSource,
        `SELECT count(*) AS total FROM schedule ${whereSql}`,
        params,
      ),
    ]);
    return { items: rows.map(toRecord), total: Number(firstRow(count, 'count of schedules').total) };
  }

  /** False when there was no such schedule. Its fire ledger goes with it; its runs stay. */
  async delete(id: number): Promise<boolean> {
    const rows = await queryRows(this.dataSource, 'DELETE FROM schedule WHERE id = $1 RETURNING id', [id]);
    return rows.length > 0;
  }

  // ------------------------------------------------------------------ the masters' fire loop

  /**
   * Enabled schedules whose cursor has come by the database's clock (and is within end_time), or
   * that have none yet, except the (id, revision) pairs in `exclude` (a cron the master cannot
   * evaluate); with the database's now() and the earliest cursor not due yet.
   */
  async due(
    limit: number,
    exclude: ReadonlyArray<{ readonly id: number; readonly revision: number }> = [],
  ): Promise<DueSchedules> {
    const rows = await queryRows<{
      db_now_ms: string;
      next_due_ms: string | null;
      id: string | null;
      revision: number;
      workflow_code: string;
      cron: string;
      timezone: string;
      misfire_policy: MisfirePolicy;
      start_time: Date | null;
      end_time: Date | null;
      next_fire_time: Date | null;
      next_fire_text: string | null;
    }>(
      this.dataSource,
      `WITH d AS (
         SELECT id, revision, workflow_code, cron, timezone, misfire_policy, start_time, end_time, next_fire_time,
                next_fire_time::text AS next_fire_text
         FROM schedule
         WHERE enabled AND (next_fire_time IS NULL
                            OR (next_fire_time <= now() AND next_fire_time <= coalesce(end_time, 'infinity')))
           AND (id, revision) NOT IN (SELECT * FROM unnest($2::bigint[], $3::int[]))
         ORDER BY next_fire_time NULLS FIRST, id LIMIT $1)
       SELECT floor(extract(epoch FROM now()) * 1000)::bigint AS db_now_ms,
              (SELECT floor(extract(epoch FROM min(next_fire_time)) * 1000)::bigint FROM schedule
               WHERE enabled AND next_fire_time > now()
                 AND next_fire_time <= coalesce(end_time, 'infinity')) AS next_due_ms,
              d.*
       FROM (SELECT 1) AS one LEFT JOIN d ON true`,
      [limit, exclude.map((e) => e.id), exclude.map((e) => e.revision)],
    );
    const head = firstRow(rows, 'due schedules');
    return {
      dbNowMs: Number(head.db_now_ms),
      nextDueMs: head.next_due_ms === null ? null : Number(head.next_due_ms),
      schedules: rows.flatMap((r) =>
        r.id === null
          ? []
          : [
              {
                id: Number(r.id),
                revision: r.revision,
                workflowCode: r.workflow_code,
                cron: r.cron,
                timezone: r.timezone,
                misfirePolicy: r.misfire_policy,
                startTime: r.start_time,
                endTime: r.end_time,
                nextFireTime: r.next_fire_time,
                nextFireText: r.next_fire_text,
              },
            ],
      ),
    };
  }

  /** Sets the first fire time of a schedule that has none (no run for it). */
  async initialize(id: number, revision: number, next: Date): Promise<void> {
    await queryRows(
      this.dataSource,
      'UPDATE schedule SET next_fire_time = $3 WHERE id = $1 AND revision = $2 AND next_fire_time IS NULL',
      [id, revision, next],
    );
  }

  /**
   * One fire, in one statement (one transaction):
   * - s: compare-and-set of the cursor, the revision and enabled. A master that lost the race, or
   *   read the schedule before a PATCH, matches no row and writes nothing at all;
   * - f: claims each fire time in the ledger, whose primary key (schedule_id, fire_time) is the
   *   contract's unique key: ON CONFLICT DO NOTHING, so even a rewound cursor cannot run a time
   *   twice (a racing insert of the same key waits for the first to commit, then does nothing);
   * - wi: one SUBMITTED_SUCCESS instance (command SCHEDULER, schedule_time = the fire time, the
   *   schedule's params, timezone and id) per claimed time that runs, with the id f reserved
   *   (SERIAL_WAIT with a wait_seq for a workflow with a concurrency limit: README "Run concurrency");
   * - cmd: its command (insertCommandsSql: the workflow's priority; NOTIFY porpoise_command at commit).
   */
  async fire(req: FireRequest): Promise<FireOutcome> {
    const rows = await queryRows<{
      applied: boolean;
      fire_time: Date | null;
      workflow_instance_id: string | null;
      outcome: 'FIRED' | 'MISFIRE_SKIPPED' | null;
    }>(
      this.dataSource,
      `WITH s AS (
         UPDATE schedule SET next_fire_time = $4, updated_at = now()
         WHERE id = $1 AND revision = $2 AND enabled AND next_fire_time = $3::timestamptz
         RETURNING id, workflow_code, params, timezone),
       f AS (
         INSERT INTO schedule_fire (schedule_id, fire_time, workflow_instance_id, outcome, decided_at)
         SELECT s.id, t.fire_time,
                CASE WHEN t.run THEN nextval('workflow_instance_id_seq') END,
                CASE WHEN t.run THEN 'FIRED' ELSE 'MISFIRE_SKIPPED' END,
                to_timestamp($7::bigint / 1000.0)
         FROM s, unnest($5::timestamptz[], $6::boolean[]) WITH ORDINALITY AS t(fire_time, run, n)
         ORDER BY t.n
         ON CONFLICT (schedule_id, fire_time) DO NOTHING
         RETURNING fire_time, workflow_instance_id, outcome),
       wi AS (
         INSERT INTO workflow_instance (id, workflow_code, workflow_version, state, host, epoch, command_type, params,
                                        schedule_time, timezone, schedule_id, wait_seq)
         SELECT f.workflow_instance_id, def.code, def.version, ${gatedStateSql(gateLimitedSql('def'))}, NULL, 0,
                'SCHEDULER', s.params, f.fire_time, s.timezone, s.id, ${gatedWaitSeqSql(gateLimitedSql('def'))}
         FROM f, s JOIN workflow_definition def ON def.code = s.workflow_code
         WHERE f.workflow_instance_id IS NOT NULL
         ORDER BY f.workflow_instance_id
         RETURNING id, workflow_code, workflow_version, params, state),
       -- One command per created instance, through the one owner of command inserts; none for a
       -- run of a limited workflow (SERIAL_WAIT: the run gate writes it when it admits the run).
       cmd AS (${insertCommandsSql({
         from: 'wi',
         type: "'SCHEDULER'",
         where: "state = 'SUBMITTED_SUCCESS'",
         returning: 'workflow_instance_id',
       })})
       SELECT EXISTS (SELECT 1 FROM s) AS applied, f.fire_time, f.workflow_instance_id, f.outcome
       FROM (SELECT 1) AS one LEFT JOIN f ON true
       ORDER BY f.fire_time`,
      [
        req.scheduleId,
        req.revision,
        req.cursorText,
        req.cursorNew,
        req.fires.map((x) => x.time),
        req.fires.map((x) => x.run),
        req.decidedAtMs,
      ],
    );
    const head = firstRow(rows, `fire of schedule ${req.scheduleId}`);
    const fired: Array<{ time: Date; instanceId: number }> = [];
    let skipped = 0;
    for (const r of rows) {
      if (r.fire_time === null) continue;
      if (r.outcome === 'FIRED' && r.workflow_instance_id !== null) {
        fired.push({ time: r.fire_time, instanceId: Number(r.workflow_instance_id) });
      } else if (r.outcome === 'MISFIRE_SKIPPED') skipped++;
    }
    return { applied: head.applied, fired, skipped };
  }
}
