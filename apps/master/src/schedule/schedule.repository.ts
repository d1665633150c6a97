import { Inject, Injectable } from '@nestjs/common';
import {
  gatedStateSql,
  gatedWaitSeqSql,
  gateLimitedSql,
  insertCommandsSql,
  queryResult,
} from '@porpoise/dao';
import { DataSource } from 'typeorm';

export interface DueSchedule {
  id: number;
  workflowCode: string;
  cron: string;
  timezone: string;
  /** null: never computed yet (a schedule stored without one). */
  nextFireTime: Date | null;
  /**
   * The stored value as Postgres prints it: the compare-and-set uses this, because a JS Date
   * keeps only milliseconds and would never equal a timestamptz with microseconds.
   */
  nextFireText: string | null;
}

/** The schedule table as the master's cron loop uses it. */
@Injectable()
export class ScheduleRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** Schedules whose fire time has come (by the database's clock), or that have none yet. */
  async due(limit: number, exclude: number[]): Promise<DueSchedule[]> {
    const { rows } = await queryResult<{
      id: string;
      workflow_code: string;
      cron: string;
      timezone: string;
      next_fire_time: Date | null;
      next_fire_text: string | null;
    }>(
      this.dataSource,
      `SELECT id, workflow_code, cron, timezone, next_fire_time, next_fire_time::text AS next_fire_text
       FROM schedule
       WHERE (next_fire_time IS NULL OR next_fire_time <= now()) AND NOT (id = ANY($2::bigint[]))
       ORDER BY next_fire_time NULLS FIRST, id LIMIT $1`,
      [limit, exclude],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      workflowCode: r.workflow_code,
      cron: r.cron,
      timezone: r.timezone,
      nextFireTime: r.next_fire_time,
      nextFireText: r.next_fire_text,
    }));
  }

  /** Sets the first fire time of a schedule that has none (no run for it). */
  async initialize(id: number, next: Date): Promise<void> {
    await queryResult(
      this.dataSource,
      'UPDATE schedule SET next_fire_time = $2 WHERE id = $1 AND next_fire_time IS NULL',
      [id, next],
    );
  }

  /**
   * Fires a due schedule, in one statement (one transaction): moves next_fire_time from `old` to
   * `next` and, only if that update matched (the master that wins the compare-and-set; the others
   * match 0 rows), inserts the workflow instance (SUBMITTED_SUCCESS, schedule_time = old) and its
   * SCHEDULER command; a limited workflow's run is SERIAL_WAIT instead, its command written by the
   * run gate. Returns the instance id, or undefined when another master fired it.
   */
  async fire(id: number, oldText: string, next: Date): Promise<number | undefined> {
    const { rows } = await queryResult<{ workflow_instance_id: string }>(
      this.dataSource,
      `WITH s AS (
         UPDATE schedule SET next_fire_time = $3 WHERE id = $1 AND next_fire_time = $2::timestamptz
         RETURNING workflow_code, timezone),
       d AS (
         SELECT d.code, d.version, s.timezone, ${gateLimitedSql('d')} AS limited
         FROM workflow_definition d JOIN s ON s.workflow_code = d.code),
       i AS (
         INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type, params, schedule_time, timezone, wait_seq)
         SELECT code, version, ${gatedStateSql('limited')}, NULL, 0, 'SCHEDULER', '{}', $2::timestamptz, timezone,
           ${gatedWaitSeqSql('limited')} FROM d
         RETURNING id, workflow_code, workflow_version, params, state),
       c AS (${insertCommandsSql({ from: 'i', type: "'SCHEDULER'", where: "state = 'SUBMITTED_SUCCESS'" })})
       SELECT id AS workflow_instance_id FROM i`,
      [id, oldText, next],
    );
    return rows[0] ? Number(rows[0].workflow_instance_id) : undefined;
  }
}
