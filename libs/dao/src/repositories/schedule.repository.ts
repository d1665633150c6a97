import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { firstRow, queryRows } from './sql';

export interface ScheduleRecord {
  readonly id: number;
  readonly workflowCode: string;
  readonly cron: string;
  readonly timezone: string;
  readonly nextFireTime: Date | null;
  readonly createdAt: Date;
}

export interface NewSchedule {
  readonly workflowCode: string;
  readonly cron: string;
  readonly timezone: string;
  readonly nextFireTime: Date;
}

interface ScheduleRow {
  id: string;
  workflow_code: string;
  cron: string;
  timezone: string;
  next_fire_time: Date | null;
  created_at: Date;
}

const toRecord = (r: ScheduleRow): ScheduleRecord => ({
  id: Number(r.id),
  workflowCode: r.workflow_code,
  cron: r.cron,
  timezone: r.timezone,
  nextFireTime: r.next_fire_time,
  createdAt: r.created_at,
});

/** Cron schedules of workflows. The masters fire them; the API only creates, lists and deletes. */
@Injectable()
export class ScheduleRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Null when the workflow is unknown (the insert selects from the definition, so nothing is stored). */
  async create(schedule: NewSchedule): Promise<ScheduleRecord | null> {
    const rows = await queryRows<ScheduleRow>(
      this.dataSource,
      `INSERT INTO schedule (workflow_code, cron, timezone, next_fire_time)
       SELECT code, $2, $3, $4 FROM workflow_definition WHERE code = $1
       RETURNING id, workflow_code, cron, timezone, next_fire_time, created_at`,
      [schedule.workflowCode, schedule.cron, schedule.timezone, schedule.nextFireTime],
    );
    const row = rows[0];
    return row === undefined ? null : toRecord(row);
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
        `SELECT id, workflow_code, cron, timezone, next_fire_time, created_at FROM schedule ${whereSql}
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

  /** False when there was no such schedule. */
  async delete(id: number): Promise<boolean> {
    const rows = await queryRows(this.dataSource, 'DELETE FROM schedule WHERE id = $1 RETURNING id', [id]);
    return rows.length > 0;
  }
}
