import { Inject, Injectable } from '@nestjs/common';
import { ACTIVE_TASK_STATES, FINAL_TASK_STATES, type TaskState } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { fenceParams, OWN_CTE, type InstanceFence } from './instance-state.repository';
import { firstRow, queryResult } from './sql';

/** The columns of a task_instance row the engine tracks. */
export interface TaskRow {
  id: number;
  workflowInstanceId: number;
  name: string;
  state: TaskState;
  host: string | null;
  attempt: number;
  /** Retries of this task (runs after its own failures) used before this attempt. */
  retriesUsed: number;
  /** Earlier attempts of this task whose worker lost them (NEED_FAULT_TOLERANCE). */
  faultReruns: number;
  /**
   * DELAY_EXECUTION only: how long until its retry is due, by the database's clock when the row
   * was read (0: due now); null for any other state, or a row written before retry_due_at existed.
   */
  retryDueInMs: number | null;
  /** What the attempt set with `${setValue(name=value)}` (empty when nothing). */
  outputs: Record<string, string>;
  /**
   * RUNNING_EXECUTION with a start_time: ms since it started, by the database's clock when the row
   * was read; null otherwise. A DEPENDENT task's timeout counts from it, across failovers.
   */
  runningForMs: number | null;
}

/** A new attempt: its number and the budgets it starts with (both 0 on a fresh run). */
export interface NewAttempt {
  name: string;
  attempt: number;
  retriesUsed?: number;
  faultReruns?: number;
  /** Created SKIPPED (a branch not taken) instead of SUBMITTED_SUCCESS. */
  skipped?: boolean;
  /** The task's taskGroup (DESIGN.md section 10): the row then frees its slot when it ends. */
  taskGroup?: string;
}

/** Outcome of a fenced write: owned = the fence held; ids = rows actually changed. */
export interface FencedWrite {
  owned: boolean;
  ids: number[];
}

export interface FencedInsert {
  owned: boolean;
  rows: TaskRow[];
}

interface RawFenced {
  owned: number;
  ids: string[] | null;
}

interface RawInsert {
  owned: number;
  rows: TaskRowRecord[] | null;
}

/**
 * The columns behind TaskRow. retry_due_in_ms is computed on the database's clock, which also set
 * retry_due_at: a retry delay holds across failovers whatever the masters' clocks say.
 */
const ROW_COLUMNS = `id, workflow_instance_id, name, state, host, attempt, retries_used, fault_reruns, outputs,
  CASE WHEN state = 'DELAY_EXECUTION' AND retry_due_at IS NOT NULL
       THEN GREATEST(0, ceil(extract(epoch FROM retry_due_at - now()) * 1000))::bigint END AS retry_due_in_ms,
  CASE WHEN state = 'RUNNING_EXECUTION' AND start_time IS NOT NULL
       THEN GREATEST(0, floor(extract(epoch FROM now() - start_time) * 1000))::bigint END AS running_for_ms`;

/** ms since the epoch (0 = unknown) → timestamptz, falling back to the database's now(). */
const tsFromMs = (param: string) =>
  `CASE WHEN ${param}::bigint > 0 THEN to_timestamp(${param}::bigint / 1000.0) ELSE now() END`;

/**
 * Task-row writes of the owning master. Each method is one statement (one round trip, one
 * transaction), fenced on the instance (OWN_CTE) and guarded on the row's current state, so a
 * stale master or a late event changes nothing. Every write stamps the fence's epoch on the row
 * (writer_epoch), so an audit of the row's changes would show a write the fence let through late.
 */
@Injectable()
export class TaskInstanceRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /**
   * Creates attempts (state SUBMITTED_SUCCESS, or SKIPPED) for several tasks at once, each with
   * the retry and fault-rerun budgets it inherits. An attempt that already exists (a retried
   * statement whose first answer was lost) is returned as it is instead of failing on UNIQUE
   * (workflow_instance_id, name, attempt).
   */
  async createAttempts(fence: InstanceFence, items: NewAttempt[]): Promise<FencedInsert> {
    if (items.length === 0) return { owned: true, rows: [] };
    const { rows } = await queryResult<RawInsert>(
      this.dataSource,
      `WITH ${OWN_CTE},
       ins AS (
         INSERT INTO task_instance (workflow_instance_id, name, state, attempt, retries_used, fault_reruns, end_time,
                                    task_group, writer_epoch)
         SELECT own.id, t.name, t.state, t.attempt, t.retries_used, t.fault_reruns,
                CASE WHEN t.state = 'SKIPPED' THEN now() END, t.task_group, $3::bigint
         FROM own, unnest($4::text[], $5::int[], $6::int[], $7::int[], $8::text[], $9::text[])
                   AS t(name, attempt, retries_used, fault_reruns, state, task_group)
         ON CONFLICT (workflow_instance_id, name, attempt)
           DO UPDATE SET updated_at = task_instance.updated_at, writer_epoch = EXCLUDED.writer_epoch
         RETURNING ${ROW_COLUMNS})
       SELECT (SELECT count(*) FROM own)::int AS owned, (SELECT json_agg(ins) FROM ins) AS rows`,
      [
        ...fenceParams(fence),
        items.map((i) => i.name),
        items.map((i) => i.attempt),
        items.map((i) => i.retriesUsed ?? 0),
        items.map((i) => i.faultReruns ?? 0),
        items.map((i) => (i.skipped ? 'SKIPPED' : 'SUBMITTED_SUCCESS')),
        items.map((i) => (i.skipped ? null : (i.taskGroup ?? null))),
      ],
    );
    const created = firstRow(rows, 'createAttempts outcome');
    return { owned: created.owned > 0, rows: (created.rows ?? []).map(toTaskRow) };
  }

  /**
   * SUBMITTED_SUCCESS or DISPATCH (another worker, after a refusal) → DISPATCH on worker. The
   * log path is the worker's layout (relative to its DATA_DIR), known before the task starts so
   * the log route can find the output of a task still running.
   */
  markDispatch(fence: InstanceFence, taskId: number, worker: string): Promise<FencedWrite> {
    return this.fenced(
      fence,
      `state = 'DISPATCH', host = $6, log_path = 'logs/' || t.workflow_instance_id || '/' || t.id || '.log'`,
      `t.id = ANY($4::bigint[]) AND t.state = ANY($5::text[])`,
      [[taskId], ['SUBMITTED_SUCCESS', 'DISPATCH'], worker],
    );
  }

  /** DISPATCH → SUBMITTED_SUCCESS with no worker: no live worker of the group took it. */
  markUndispatched(fence: InstanceFence, taskId: number, worker: string): Promise<FencedWrite> {
    return this.fenced(
      fence,
      `state = 'SUBMITTED_SUCCESS', host = NULL`,
      `t.id = ANY($4::bigint[]) AND t.state = ANY($5::text[]) AND t.host = $6`,
      [[taskId], ['DISPATCH'], worker],
    );
  }

  /** DISPATCH → RUNNING_EXECUTION (TaskStarted, or a TakeOver that found it running). */
  markStarted(fence: InstanceFence, taskId: number, worker: string, startMs: number): Promise<FencedWrite> {
    return this.fenced(
      fence,
      `state = 'RUNNING_EXECUTION', start_time = ${tsFromMs('$7')}`,
      `t.id = ANY($4::bigint[]) AND t.state = ANY($5::text[]) AND t.host = $6`,
      [[taskId], ['DISPATCH'], worker, startMs],
    );
  }

  /**
   * DISPATCH / RUNNING_EXECUTION → the run's result: SUCCESS, FAILURE, KILL, PAUSE,
   * NEED_FAULT_TOLERANCE, or DELAY_EXECUTION (failed with a retry left: retry_due_at = the
   * database's now() + retryDelayMs, so the delay survives a failover). Outputs are stored with it.
   */
  markFinished(
    fence: InstanceFence,
    taskId: number,
    worker: string,
    result: {
      state: TaskState;
      exitCode: number;
      startMs: number;
      endMs: number;
      message: string;
      outputs?: Readonly<Record<string, string>>;
      retryDelayMs?: number;
    },
  ): Promise<FencedWrite> {
    return this.fenced(
      fence,
      `state = $7, exit_code = $8, message = NULLIF($9, ''),
       start_time = coalesce(t.start_time, ${tsFromMs('$10')}), end_time = ${tsFromMs('$11')},
       outputs = coalesce($12::jsonb, t.outputs),
       retry_due_at = CASE WHEN $7::text = 'DELAY_EXECUTION' THEN now() + $13::bigint * interval '1 millisecond' END`,
      `t.id = ANY($4::bigint[]) AND t.state = ANY($5::text[]) AND t.host = $6`,
      [
        [taskId],
        ACTIVE_TASK_STATES,
        worker,
        result.state,
        result.exitCode,
        result.message,
        result.startMs,
        result.endMs,
        result.outputs && Object.keys(result.outputs).length > 0 ? JSON.stringify(result.outputs) : null,
        result.retryDelayMs ?? 0,
      ],
    );
  }

  /**
   * Moves several rows that are still in one of fromStates to state (KILL on stop, PAUSE on
   * pause, NEED_FAULT_TOLERANCE on worker loss, FAILURE for a cancelled retry), with a reason.
   * Final states get end_time. RUNNING_EXECUTION (a master-side task starting) gets start_time,
   * once, on the database's clock: a DEPENDENT task's timeout counts from it.
   */
  markState(
    fence: InstanceFence,
    taskIds: number[],
    fromStates: readonly TaskState[],
    state: TaskState,
    message: string,
  ): Promise<FencedWrite> {
    const final = FINAL_TASK_STATES.includes(state);
    return this.fenced(
      fence,
      `state = $6, message = $7${final ? ', end_time = now()' : ''}` +
        (state === 'RUNNING_EXECUTION' ? ', start_time = coalesce(t.start_time, now())' : ''),
      `t.id = ANY($4::bigint[]) AND t.state = ANY($5::text[])`,
      [taskIds, fromStates, state, message],
    );
  }

  /**
   * The retry of a failed attempt, in one statement: the DELAY_EXECUTION row becomes FAILURE (it
   * is no longer waiting) and attempt + 1 is created with one more retry used (counted from the
   * old row, so the budget holds whatever a master remembers). owned=false: ownership lost; rows
   * empty with owned=true: the old row was no longer waiting (nothing created).
   */
  async retry(fence: InstanceFence, oldTaskId: number, name: string, attempt: number): Promise<FencedInsert> {
    const { rows } = await queryResult<RawInsert>(
      this.dataSource,
      `WITH ${OWN_CTE},
       old AS (
         UPDATE task_instance t SET state = 'FAILURE', updated_at = now(), writer_epoch = $3::bigint FROM own
         WHERE t.workflow_instance_id = own.id AND t.id = $4 AND t.state = 'DELAY_EXECUTION'
         RETURNING t.retries_used, t.fault_reruns, t.task_group),
       ins AS (
         INSERT INTO task_instance (workflow_instance_id, name, state, attempt, retries_used, fault_reruns, task_group,
                                    writer_epoch)
         SELECT own.id, $5, 'SUBMITTED_SUCCESS', $6, old.retries_used + 1, old.fault_reruns, old.task_group, $3::bigint
         FROM own, old
         ON CONFLICT (workflow_instance_id, name, attempt)
           DO UPDATE SET updated_at = task_instance.updated_at, writer_epoch = EXCLUDED.writer_epoch
         RETURNING ${ROW_COLUMNS})
       SELECT (SELECT count(*) FROM own)::int AS owned, (SELECT json_agg(ins) FROM ins) AS rows`,
      [...fenceParams(fence), oldTaskId, name, attempt],
    );
    const retried = firstRow(rows, 'retry outcome');
    return { owned: retried.owned > 0, rows: (retried.rows ?? []).map(toTaskRow) };
  }

  /** The latest attempt of every task of the given instances (one round trip for a whole batch). */
  async latestAttempts(instanceIds: number[]): Promise<TaskRow[]> {
    if (instanceIds.length === 0) return [];
    const { rows } = await queryResult<TaskRowRecord>(
      this.dataSource,
      `SELECT DISTINCT ON (workflow_instance_id, name) ${ROW_COLUMNS}
       FROM task_instance WHERE workflow_instance_id = ANY($1::bigint[])
       ORDER BY workflow_instance_id, name, attempt DESC`,
      [instanceIds],
    );
    return rows.map(toTaskRow);
  }

  /** One task row by id (answering events about instances this master does not drive). */
  async find(taskInstanceId: number): Promise<TaskRow | undefined> {
    const { rows } = await queryResult<TaskRowRecord>(
      this.dataSource,
      `SELECT ${ROW_COLUMNS} FROM task_instance WHERE id = $1`,
      [taskInstanceId],
    );
    const row = rows[0];
    return row === undefined ? undefined : toTaskRow(row);
  }

  /** One fenced UPDATE of task rows; $1-$3 fence, $4.. the caller's parameters. */
  private async fenced(
    fence: InstanceFence,
    set: string,
    where: string,
    params: unknown[],
  ): Promise<FencedWrite> {
    const { rows } = await queryResult<RawFenced>(
      this.dataSource,
      `WITH ${OWN_CTE},
       upd AS (
         UPDATE task_instance t SET ${set}, updated_at = now(), writer_epoch = $3::bigint FROM own
         WHERE t.workflow_instance_id = own.id AND ${where} RETURNING t.id)
       SELECT (SELECT count(*) FROM own)::int AS owned, ARRAY(SELECT id FROM upd) AS ids`,
      [...fenceParams(fence), ...params],
    );
    const updated = firstRow(rows, 'fenced task update outcome');
    return { owned: updated.owned > 0, ids: (updated.ids ?? []).map(Number) };
  }
}

/**
 * A task_instance row as pg returns it (bigint columns as strings, jsonb parsed), or as json_agg
 * returns it (every number a number).
 */
interface TaskRowRecord {
  id: string | number;
  workflow_instance_id: string | number;
  name: string;
  state: TaskState;
  host: string | null;
  attempt: number;
  retries_used: number;
  fault_reruns: number;
  outputs: unknown;
  retry_due_in_ms: string | number | null;
  running_for_ms: string | number | null;
}

function toTaskRow(r: TaskRowRecord): TaskRow {
  return {
    id: Number(r.id),
    workflowInstanceId: Number(r.workflow_instance_id),
    name: r.name,
    state: r.state,
    host: r.host,
    attempt: r.attempt,
    retriesUsed: r.retries_used,
    faultReruns: r.fault_reruns,
    retryDueInMs: r.retry_due_in_ms === null ? null : Number(r.retry_due_in_ms),
    outputs: toOutputs(r.outputs),
    runningForMs: r.running_for_ms == null ? null : Number(r.running_for_ms),
  };
}

/** Stored outputs as name → string (jsonb is a boundary: anything else is turned into text). */
function toOutputs(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return out;
  for (const [k, v] of Object.entries(value)) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}
