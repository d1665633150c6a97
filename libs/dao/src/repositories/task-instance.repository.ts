import { Inject, Injectable } from '@nestjs/common';
import type { TaskState } from '@porpoise/common';
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
  rows: Array<{ id: number; name: string; state: TaskState; host: string | null; attempt: number }> | null;
}

const FINAL_TASK_STATES = ['SUCCESS', 'FAILURE', 'KILL', 'PAUSE'];
const ACTIVE_TASK_STATES = ['DISPATCH', 'RUNNING_EXECUTION'];

/** ms since the epoch (0 = unknown) → timestamptz, falling back to the database's now(). */
const tsFromMs = (param: string) =>
  `CASE WHEN ${param}::bigint > 0 THEN to_timestamp(${param}::bigint / 1000.0) ELSE now() END`;

/**
 * Task-row writes of the owning master. Each method is one statement (one round trip, one
 * transaction), fenced on the instance (OWN_CTE) and guarded on the row's current state, so a
 * stale master or a late event changes nothing.
 */
@Injectable()
export class TaskInstanceRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /**
   * Creates attempts (state SUBMITTED_SUCCESS) for several tasks at once. An attempt that already
   * exists (a retried statement whose first answer was lost) is returned as it is instead of
   * failing on UNIQUE (workflow_instance_id, name, attempt).
   */
  async createAttempts(
    fence: InstanceFence,
    items: Array<{ name: string; attempt: number }>,
  ): Promise<FencedInsert> {
    if (items.length === 0) return { owned: true, rows: [] };
    const { rows } = await queryResult<RawInsert>(
      this.dataSource,
      `WITH ${OWN_CTE},
       ins AS (
         INSERT INTO task_instance (workflow_instance_id, name, state, attempt)
         SELECT own.id, t.name, 'SUBMITTED_SUCCESS', t.attempt
         FROM own, unnest($4::text[], $5::int[]) AS t(name, attempt)
         ON CONFLICT (workflow_instance_id, name, attempt) DO UPDATE SET updated_at = task_instance.updated_at
         RETURNING id, name, state, host, attempt)
       SELECT (SELECT count(*) FROM own)::int AS owned, (SELECT json_agg(ins) FROM ins) AS rows`,
      [...fenceParams(fence), items.map((i) => i.name), items.map((i) => i.attempt)],
    );
    const created = firstRow(rows, 'createAttempts outcome');
    return {
      owned: created.owned > 0,
      rows: (created.rows ?? []).map((r) => ({
        ...r,
        id: Number(r.id),
        workflowInstanceId: fence.instanceId,
      })),
    };
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
   * DISPATCH / RUNNING_EXECUTION → the run's result: SUCCESS, FAILURE, KILL, or DELAY_EXECUTION
   * (failed with retries left; the next attempt is created after retryIntervalMs).
   */
  markFinished(
    fence: InstanceFence,
    taskId: number,
    worker: string,
    result: { state: TaskState; exitCode: number; startMs: number; endMs: number; message: string },
  ): Promise<FencedWrite> {
    return this.fenced(
      fence,
      `state = $7, exit_code = $8, message = NULLIF($9, ''),
       start_time = coalesce(t.start_time, ${tsFromMs('$10')}), end_time = ${tsFromMs('$11')}`,
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
      ],
    );
  }

  /**
   * Moves several rows that are still in one of fromStates to state (KILL on stop, PAUSE on
   * pause, NEED_FAULT_TOLERANCE on worker loss, FAILURE for a cancelled retry), with a reason.
   * Final states get end_time.
   */
  markState(
    fence: InstanceFence,
    taskIds: number[],
    fromStates: TaskState[],
    state: TaskState,
    message: string,
  ): Promise<FencedWrite> {
    const final = FINAL_TASK_STATES.includes(state);
    return this.fenced(
      fence,
      `state = $6, message = $7${final ? ', end_time = now()' : ''}`,
      `t.id = ANY($4::bigint[]) AND t.state = ANY($5::text[])`,
      [taskIds, fromStates, state, message],
    );
  }

  /**
   * The retry of a failed attempt, in one statement: the DELAY_EXECUTION row becomes FAILURE (it
   * is no longer waiting) and attempt + 1 is created. owned=false: ownership lost; rows empty
   * with owned=true: the old row was no longer waiting (nothing created).
   */
  async retry(fence: InstanceFence, oldTaskId: number, name: string, attempt: number): Promise<FencedInsert> {
    const { rows } = await queryResult<RawInsert>(
      this.dataSource,
      `WITH ${OWN_CTE},
       old AS (
         UPDATE task_instance t SET state = 'FAILURE', updated_at = now() FROM own
         WHERE t.workflow_instance_id = own.id AND t.id = $4 AND t.state = 'DELAY_EXECUTION' RETURNING t.id),
       ins AS (
         INSERT INTO task_instance (workflow_instance_id, name, state, attempt)
         SELECT own.id, $5, 'SUBMITTED_SUCCESS', $6 FROM own WHERE EXISTS (SELECT 1 FROM old)
         ON CONFLICT (workflow_instance_id, name, attempt) DO UPDATE SET updated_at = task_instance.updated_at
         RETURNING id, name, state, host, attempt)
       SELECT (SELECT count(*) FROM own)::int AS owned, (SELECT json_agg(ins) FROM ins) AS rows`,
      [...fenceParams(fence), oldTaskId, name, attempt],
    );
    const retried = firstRow(rows, 'retry outcome');
    return {
      owned: retried.owned > 0,
      rows: (retried.rows ?? []).map((r) => ({
        ...r,
        id: Number(r.id),
        workflowInstanceId: fence.instanceId,
      })),
    };
  }

  /** The latest attempt of every task of the given instances (one round trip for a whole batch). */
  async latestAttempts(instanceIds: number[]): Promise<TaskRow[]> {
    if (instanceIds.length === 0) return [];
    const { rows } = await queryResult<TaskRowRecord>(
      this.dataSource,
      `SELECT DISTINCT ON (workflow_instance_id, name) id, workflow_instance_id, name, state, host, attempt
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
      'SELECT id, workflow_instance_id, name, state, host, attempt FROM task_instance WHERE id = $1',
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
         UPDATE task_instance t SET ${set}, updated_at = now() FROM own
         WHERE t.workflow_instance_id = own.id AND ${where} RETURNING t.id)
       SELECT (SELECT count(*) FROM own)::int AS owned, ARRAY(SELECT id FROM upd) AS ids`,
      [...fenceParams(fence), ...params],
    );
    const updated = firstRow(rows, 'fenced task update outcome');
    return { owned: updated.owned > 0, ids: (updated.ids ?? []).map(Number) };
  }
}

/** A task_instance row as pg returns it (bigint ids as strings). */
interface TaskRowRecord {
  id: string;
  workflow_instance_id: string;
  name: string;
  state: TaskState;
  host: string | null;
  attempt: number;
}

function toTaskRow(r: TaskRowRecord): TaskRow {
  return {
    id: Number(r.id),
    workflowInstanceId: Number(r.workflow_instance_id),
    name: r.name,
    state: r.state,
    host: r.host,
    attempt: r.attempt,
  };
}
