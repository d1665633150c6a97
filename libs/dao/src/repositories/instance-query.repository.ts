import { Injectable } from '@nestjs/common';
import { WORKFLOW_STATES, type CommandType, type TaskState, type WorkflowState } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { firstRow, queryRows } from './sql';

export interface WorkflowInstanceView {
  readonly id: number;
  readonly workflowCode: string;
  readonly workflowVersion: number;
  readonly state: WorkflowState;
  /** The owning master, "address:port"; null while none owns it. */
  readonly host: string | null;
  readonly commandType: CommandType;
  readonly params: Record<string, string>;
  readonly scheduleTime: Date | null;
  readonly startTime: Date | null;
  readonly endTime: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface TaskInstanceView {
  readonly id: number;
  readonly name: string;
  readonly state: TaskState;
  /** The worker, "address:port"; null until dispatched. */
  readonly host: string | null;
  readonly attempt: number;
  readonly startTime: Date | null;
  readonly endTime: Date | null;
  readonly exitCode: number | null;
  readonly message: string | null;
}

export interface InstanceFilter {
  readonly workflowCode?: string;
  readonly state?: WorkflowState;
  readonly limit: number;
  readonly offset: number;
}

export interface TaskLogLocation {
  readonly taskInstanceId: number;
  readonly workflowInstanceId: number;
  readonly host: string | null;
  readonly logPath: string | null;
}

interface InstanceRow {
  id: string;
  workflow_code: string;
  workflow_version: number;
  state: WorkflowState;
  host: string | null;
  command_type: CommandType;
  params: Record<string, string>;
  schedule_time: Date | null;
  start_time: Date | null;
  end_time: Date | null;
  created_at: Date;
  updated_at: Date;
}

const INSTANCE_COLUMNS = `id, workflow_code, workflow_version, state, host, command_type, params,
  schedule_time, start_time, end_time, created_at, updated_at`;

const toInstance = (r: InstanceRow): WorkflowInstanceView => ({
  id: Number(r.id),
  workflowCode: r.workflow_code,
  workflowVersion: Number(r.workflow_version),
  state: r.state,
  host: r.host,
  commandType: r.command_type,
  params: r.params,
  scheduleTime: r.schedule_time,
  startTime: r.start_time,
  endTime: r.end_time,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** Read-only queries over workflow and task instances, for the API and metrics. */
@Injectable()
export class InstanceQueryRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** The instance and its task rows (every attempt, in id order): two queries, never one per task. */
  async findWithTasks(
    id: number,
  ): Promise<{ instance: WorkflowInstanceView; tasks: TaskInstanceView[] } | null> {
    const [instances, tasks] = await Promise.all([
      queryRows<InstanceRow>(
        this.dataSource,
        `SELECT ${INSTANCE_COLUMNS} FROM workflow_instance WHERE id = $1`,
        [id],
      ),
      queryRows<{
        id: string;
        name: string;
        state: TaskState;
        host: string | null;
        attempt: number;
        start_time: Date | null;
        end_time: Date | null;
        exit_code: number | null;
        message: string | null;
      }>(
        this.dataSource,
        `SELECT id, name, state, host, attempt, start_time, end_time, exit_code, message
         FROM task_instance WHERE workflow_instance_id = $1 ORDER BY id`,
        [id],
      ),
    ]);
    const instance = instances[0];
    if (instance === undefined) return null;
    return {
      instance: toInstance(instance),
      tasks: tasks.map((t) => ({
        id: Number(t.id),
        name: t.name,
        state: t.state,
        host: t.host,
        attempt: Number(t.attempt),
        startTime: t.start_time,
        endTime: t.end_time,
        exitCode: t.exit_code === null ? null : Number(t.exit_code),
        message: t.message,
      })),
    };
  }

  /** Newest first (the indexes on (workflow_code, id DESC) and (state, id DESC) serve this). */
  async list(filter: InstanceFilter): Promise<{ items: WorkflowInstanceView[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.workflowCode !== undefined) {
      params.push(filter.workflowCode);
      where.push(`workflow_code = $${params.length}`);
    }
    if (filter.state !== undefined) {
      params.push(filter.state);
      where.push(`state = $${params.length}`);
    }
    const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const [rows, count] = await Promise.all([
      queryRows<InstanceRow>(
        this.dataSource,
        `SELECT ${INSTANCE_COLUMNS} FROM workflow_instance ${whereSql}
         ORDER BY id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
        [...params, filter.limit, filter.offset],
      ),
      queryRows<{ total: string }>(
        this.dataSource,
        `SELECT count(*) AS total FROM workflow_instance ${whereSql}`,
        params,
      ),
    ]);
    return {
      items: rows.map(toInstance),
      total: Number(firstRow(count, 'count of workflow instances').total),
    };
  }

  /** How many instances are in each state (every state present, zero when none): one grouped query. */
  async countByState(): Promise<Record<WorkflowState, number>> {
    const rows = await queryRows<{ state: string; n: string }>(
      this.dataSource,
      'SELECT state, count(*) AS n FROM workflow_instance GROUP BY state',
    );
    const counts = Object.fromEntries(WORKFLOW_STATES.map((s) => [s, 0])) as Record<WorkflowState, number>;
    for (const r of rows) if (r.state in counts) counts[r.state as WorkflowState] = Number(r.n);
    return counts;
  }

  /** Where a task instance's log lives (its worker and file), or null when there is no such task. */
  async taskLogLocation(taskInstanceId: number): Promise<TaskLogLocation | null> {
    const rows = await queryRows<{
      id: string;
      workflow_instance_id: string;
      host: string | null;
      log_path: string | null;
    }>(this.dataSource, 'SELECT id, workflow_instance_id, host, log_path FROM task_instance WHERE id = $1', [
      taskInstanceId,
    ]);
    const row = rows[0];
    if (row === undefined) return null;
    return {
      taskInstanceId: Number(row.id),
      workflowInstanceId: Number(row.workflow_instance_id),
      host: row.host,
      logPath: row.log_path,
    };
  }
}
