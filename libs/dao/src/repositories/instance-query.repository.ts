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
  /** The instance whose SUB_WORKFLOW task started this one; null for a top-level run. */
  readonly parentInstanceId: number | null;
  /** That SUB_WORKFLOW task attempt (task_instance.id); null for a top-level run. */
  readonly parentTaskInstanceId: number | null;
  /** Why it ended as it did (a workflow timeout, a definition it cannot run); null when none. */
  readonly message: string | null;
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
  /** What the attempt set (`${setValue(name=value)}`, an HTTP status, a SQL row); {} when nothing. */
  readonly outputs: Record<string, string>;
  /** A SUB_WORKFLOW attempt's child instance; null for any other task, or before the child exists. */
  readonly subWorkflowInstanceId: number | null;
}

/** What a diagnosis reads of an instance (GET /workflow-instances/{id}/diagnosis). */
export interface DiagnosisFacts {
  readonly instance: {
    readonly id: number;
    readonly state: WorkflowState;
    /** The owning master "address:port"; null while none owns it. */
    readonly host: string | null;
    readonly workflowCode: string;
    readonly workflowVersion: number;
    readonly startTime: Date | null;
    readonly endTime: Date | null;
    readonly createdAt: Date;
    readonly updatedAt: Date;
    /** The run's schedule time (a manual run: its start time; null before a master took it). */
    readonly scheduleTime?: Date | null;
    /** The IANA time zone of its date built-ins and DEPENDENT windows. */
    readonly timezone?: string;
  };
  /** The definition version the run uses (jsonb as stored); null when that version is gone. */
  readonly definition: {
    readonly tasks: unknown;
    readonly edges: unknown;
    readonly settings: unknown;
  } | null;
  /** The oldest command of the instance no master has taken yet (only while no master owns it). */
  readonly command: { readonly id: number; readonly type: CommandType; readonly createdAt: Date } | null;
  /** The latest attempt of each task that has one. */
  readonly tasks: readonly DiagnosisTaskRow[];
  /** The database's clock at the read. */
  readonly now: Date;
}

export interface DiagnosisTaskRow {
  readonly id: number;
  readonly name: string;
  readonly state: TaskState;
  readonly host: string | null;
  readonly attempt: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly startTime: Date | null;
  readonly endTime: Date | null;
  /** DELAY_EXECUTION: when its retry is due (database clock). */
  readonly retryDueAt: Date | null;
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
  parent_instance_id: string | null;
  parent_task_instance_id: string | null;
  message: string | null;
}

/** A task row of findWithTasks: every column null when the instance has no task (LEFT JOIN). */
interface TaskJoinRow {
  task_id: string | null;
  task_name: string;
  task_state: TaskState;
  task_host: string | null;
  task_attempt: number;
  task_start_time: Date | null;
  task_end_time: Date | null;
  task_exit_code: number | null;
  task_message: string | null;
  task_outputs: Record<string, string> | null;
  sub_workflow_instance_id: string | null;
}

/** The instance columns, qualified by the table alias w. */
const INSTANCE_COLUMNS = `w.id, w.workflow_code, w.workflow_version, w.state, w.host, w.command_type, w.params,
  w.schedule_time, w.start_time, w.end_time, w.created_at, w.updated_at, w.parent_instance_id,
  w.parent_task_instance_id, w.message`;

const idOrNull = (v: string | null): number | null => (v === null ? null : Number(v));

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
  parentInstanceId: idOrNull(r.parent_instance_id),
  parentTaskInstanceId: idOrNull(r.parent_task_instance_id),
  message: r.message,
});

/** Read-only queries over workflow and task instances, for the API and metrics. */
@Injectable()
export class InstanceQueryRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * The instance and its task rows (every attempt, in id order), each task with its outputs and,
   * for a SUB_WORKFLOW attempt, its child instance: ONE query, never one per task. The instance
   * LEFT JOIN its tasks gives one row per task (one row with null task columns when it has none);
   * the child is found through the unique index on parent_task_instance_id.
   */
  async findWithTasks(
    id: number,
  ): Promise<{ instance: WorkflowInstanceView; tasks: TaskInstanceView[] } | null> {
    const rows = await queryRows<InstanceRow & TaskJoinRow>(
      this.dataSource,
      `SELECT ${INSTANCE_COLUMNS},
         t.id AS task_id, t.name AS task_name, t.state AS task_state, t.host AS task_host,
         t.attempt AS task_attempt, t.start_time AS task_start_time, t.end_time AS task_end_time,
         t.exit_code AS task_exit_code, t.message AS task_message, t.outputs AS task_outputs,
         c.id AS sub_workflow_instance_id
       FROM workflow_instance w
       LEFT JOIN task_instance t ON t.workflow_instance_id = w.id
       LEFT JOIN workflow_instance c ON c.parent_task_instance_id = t.id
       WHERE w.id = $1
       ORDER BY t.id`,
      [id],
    );
    const first = rows[0];
    if (first === undefined) return null;
    const tasks: TaskInstanceView[] = [];
    for (const t of rows) {
      if (t.task_id === null) continue;
      tasks.push({
        id: Number(t.task_id),
        name: t.task_name,
        state: t.task_state,
        host: t.task_host,
        attempt: Number(t.task_attempt),
        startTime: t.task_start_time,
        endTime: t.task_end_time,
        exitCode: t.task_exit_code === null ? null : Number(t.task_exit_code),
        message: t.task_message,
        outputs: t.task_outputs ?? {},
        subWorkflowInstanceId: idOrNull(t.sub_workflow_instance_id),
      });
    }
    return { instance: toInstance(first), tasks };
  }

  /**
   * Newest first (the indexes on (workflow_code, id DESC) and (state, id DESC) serve this). One
   * query: the count and the page on one snapshot, so total and items agree; the page is LEFT
   * JOINed to the count, which gives one row with null instance columns past the last page.
   */
  async list(filter: InstanceFilter): Promise<{ items: WorkflowInstanceView[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.workflowCode !== undefined) {
      params.push(filter.workflowCode);
      where.push(`w.workflow_code = $${params.length}`);
    }
    if (filter.state !== undefined) {
      params.push(filter.state);
      where.push(`w.state = $${params.length}`);
    }
    const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const rows = await queryRows<Omit<InstanceRow, 'id'> & { id: string | null; total: string }>(
      this.dataSource,
      `SELECT n.total, p.* FROM (SELECT count(*) AS total FROM workflow_instance w ${whereSql}) n
       LEFT JOIN LATERAL (
         SELECT ${INSTANCE_COLUMNS} FROM workflow_instance w ${whereSql}
         ORDER BY w.id DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}) p ON true
       ORDER BY p.id DESC`,
      [...params, filter.limit, filter.offset],
    );
    const items: WorkflowInstanceView[] = [];
    for (const r of rows) if (r.id !== null) items.push(toInstance({ ...r, id: r.id }));
    return { items, total: Number(firstRow(rows, 'count of workflow instances').total) };
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

  /**
   * What a diagnosis needs, in two statements: the instance with its definition version, its
   * waiting command (looked for only while no master owns it: commands are only ever written
   * with host = NULL) and the database's clock; then the latest attempt of each task (the unique
   * index on (workflow_instance_id, name, attempt) serves it). null when there is no such instance.
   */
  async diagnosisFacts(id: number): Promise<DiagnosisFacts | null> {
    const head = (
      await queryRows<{
        id: string;
        state: WorkflowState;
        host: string | null;
        workflow_code: string;
        workflow_version: number;
        start_time: Date | null;
        end_time: Date | null;
        created_at: Date;
        updated_at: Date;
        has_version: boolean;
        def_tasks: unknown;
        def_edges: unknown;
        def_settings: unknown;
        command_id: string | null;
        command_type: CommandType | null;
        command_created_at: Date | null;
        db_now: Date;
        run_schedule_time: Date | null;
        timezone: string;
      }>(
        this.dataSource,
        `SELECT w.id, w.state, w.host, w.workflow_code, w.workflow_version, w.start_time, w.end_time,
           w.created_at, w.updated_at, coalesce(w.schedule_time, w.start_time) AS run_schedule_time,
           w.timezone, v.code IS NOT NULL AS has_version, v.tasks AS def_tasks,
           v.edges AS def_edges, v.settings AS def_settings, c.id AS command_id, c.type AS command_type,
           c.created_at AS command_created_at, now() AS db_now
         FROM workflow_instance w
         LEFT JOIN workflow_definition_version v ON v.code = w.workflow_code AND v.version = w.workflow_version
         LEFT JOIN LATERAL (
           SELECT id, type, created_at FROM command
           WHERE w.host IS NULL AND workflow_instance_id = w.id ORDER BY id LIMIT 1) c ON true
         WHERE w.id = $1`,
        [id],
      )
    )[0];
    if (head === undefined) return null;
    const rows = await queryRows<{
      id: string;
      name: string;
      state: TaskState;
      host: string | null;
      attempt: number;
      created_at: Date;
      updated_at: Date;
      start_time: Date | null;
      end_time: Date | null;
      retry_due_at: Date | null;
    }>(
      this.dataSource,
      `SELECT DISTINCT ON (name) id, name, state, host, attempt, created_at, updated_at, start_time,
         end_time, retry_due_at
       FROM task_instance WHERE workflow_instance_id = $1
       ORDER BY name, attempt DESC, id DESC`,
      [id],
    );
    return {
      instance: {
        id: Number(head.id),
        state: head.state,
        host: head.host,
        workflowCode: head.workflow_code,
        workflowVersion: Number(head.workflow_version),
        startTime: head.start_time,
        endTime: head.end_time,
        createdAt: head.created_at,
        updatedAt: head.updated_at,
        scheduleTime: head.run_schedule_time,
        timezone: head.timezone,
      },
      definition: head.has_version
        ? { tasks: head.def_tasks, edges: head.def_edges, settings: head.def_settings }
        : null,
      command:
        head.command_id === null || head.command_type === null || head.command_created_at === null
          ? null
          : { id: Number(head.command_id), type: head.command_type, createdAt: head.command_created_at },
      tasks: rows.map((r) => ({
        id: Number(r.id),
        name: r.name,
        state: r.state,
        host: r.host,
        attempt: Number(r.attempt),
        createdAt: r.created_at,
        updatedAt: r.updated_at,
        startTime: r.start_time,
        endTime: r.end_time,
        retryDueAt: r.retry_due_at,
      })),
      now: head.db_now,
    };
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
