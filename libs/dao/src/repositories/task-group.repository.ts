import { Inject, Injectable } from '@nestjs/common';
import { FINAL_WORKFLOW_STATES } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { fenceParams, OWN_CTE, type InstanceFence } from './instance-state.repository';
import { firstRow, inTransaction, queryResult, queryRows } from './sql';

/** A task group (DESIGN.md section 10) with how it is used right now. */
export interface TaskGroupRecord {
  name: string;
  capacity: number;
  /** Slots held: tasks of the group granted a slot and not ended yet. */
  held: number;
  /** Tasks of the group waiting for a slot. */
  waiting: number;
  createdAt: Date;
  updatedAt: Date;
}

interface TaskGroupRow {
  name: string;
  capacity: number;
  held: string | number;
  waiting: string | number;
  created_at: Date;
  updated_at: Date;
}

const toRecord = (r: TaskGroupRow): TaskGroupRecord => ({
  name: r.name,
  capacity: r.capacity,
  held: Number(r.held),
  waiting: Number(r.waiting),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** The columns of TaskGroupRecord for a task_group row aliased g. */
const GROUP_COLUMNS = `g.name, g.capacity, g.created_at, g.updated_at,
  (SELECT count(*) FROM task_group_queue q WHERE q.task_group = g.name AND q.slot_no IS NOT NULL) AS held,
  (SELECT count(*) FROM task_group_queue q WHERE q.task_group = g.name AND q.slot_no IS NULL) AS waiting`;

/** One slot given by a grant pass. */
export interface SlotGrant {
  taskInstanceId: number;
  workflowInstanceId: number;
  slotNo: number;
}

/** A queue row as the diagnosis shows it. */
export interface TaskGroupQueueEntry {
  taskInstanceId: number;
  taskGroup: string;
  /** null: waiting for a slot. */
  slotNo: number | null;
  requestedAt: Date;
}

export type DeleteTaskGroupOutcome = 'deleted' | 'notFound' | 'inUse';

/** The final workflow states as an SQL list (constants, never input). */
const FINAL_STATES_SQL = `(${FINAL_WORKFLOW_STATES.map((s) => `'${s}'`).join(', ')})`;

/** Postgres: foreign_key_violation (a queue row was inserted while the group was being deleted). */
const FOREIGN_KEY_VIOLATION = '23503';

/**
 * Task groups and their queue (DESIGN.md section 10): across the cluster at most `capacity`
 * tasks of a group hold a slot, granted first come first served.
 *
 * A slot is given only by grantPass, one transaction per group: it locks the group's row, then
 * decides in NEW statements (under READ COMMITTED each statement takes its snapshot when it
 * starts, so it sees every grant and release committed before the lock was ours; one CTE
 * statement would count from a snapshot taken before the lock wait). A slot is freed by the
 * release trigger on task_instance (migration 1796000007000) in the transaction that ends the
 * attempt, whatever path ends it.
 */
@Injectable()
export class TaskGroupRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** A new group; undefined when the name is taken. */
  async create(name: string, capacity: number): Promise<TaskGroupRecord | undefined> {
    const rows = await queryRows<TaskGroupRow>(
      this.dataSource,
      `WITH g AS (INSERT INTO task_group (name, capacity) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING
                  RETURNING name, capacity, created_at, updated_at)
       SELECT g.*, 0 AS held, 0 AS waiting FROM g`,
      [name, capacity],
    );
    const row = rows[0];
    return row && toRecord(row);
  }

  async list(): Promise<TaskGroupRecord[]> {
    const rows = await queryRows<TaskGroupRow>(
      this.dataSource,
      `SELECT ${GROUP_COLUMNS} FROM task_group g ORDER BY g.name`,
    );
    return rows.map(toRecord);
  }

  async find(name: string): Promise<TaskGroupRecord | undefined> {
    const rows = await queryRows<TaskGroupRow>(
      this.dataSource,
      `SELECT ${GROUP_COLUMNS} FROM task_group g WHERE g.name = $1`,
      [name],
    );
    const row = rows[0];
    return row && toRecord(row);
  }

  /** Which of names exist (definition-time validation of taskGroup fields). */
  async existing(names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const rows = await queryRows<{ name: string }>(
      this.dataSource,
      'SELECT name FROM task_group WHERE name = ANY($1::text[]) ORDER BY name',
      [[...names]],
    );
    return rows.map((r) => r.name);
  }

  /**
   * A new capacity. It waits for a grant pass in progress (the row lock) and NOTIFYs
   * porpoise_task_group, so masters with waiters grant the slots a larger capacity opened. A
   * smaller one takes nothing back: running tasks finish, grants resume once fewer than
   * `capacity` hold a slot. Undefined when there is no such group.
   */
  async updateCapacity(name: string, capacity: number): Promise<TaskGroupRecord | undefined> {
    const rows = await queryRows<TaskGroupRow>(
      this.dataSource,
      `WITH u AS (UPDATE task_group SET capacity = $2, updated_at = now() WHERE name = $1
                  RETURNING name, capacity, created_at, updated_at, pg_notify('porpoise_task_group', name))
       SELECT u.name, u.capacity, u.created_at, u.updated_at,
         (SELECT count(*) FROM task_group_queue q WHERE q.task_group = u.name AND q.slot_no IS NOT NULL) AS held,
         (SELECT count(*) FROM task_group_queue q WHERE q.task_group = u.name AND q.slot_no IS NULL) AS waiting
       FROM u`,
      [name, capacity],
    );
    const row = rows[0];
    return row && toRecord(row);
  }

  /** Deletes a group no task holds or waits for ('inUse' otherwise). */
  async delete(name: string): Promise<DeleteTaskGroupOutcome> {
    try {
      const rows = await queryRows<{ deleted: number; found: number }>(
        this.dataSource,
        `WITH d AS (DELETE FROM task_group g WHERE g.name = $1
                      AND NOT EXISTS (SELECT 1 FROM task_group_queue q WHERE q.task_group = g.name)
                    RETURNING name)
         SELECT (SELECT count(*) FROM d)::int AS deleted,
                (SELECT count(*) FROM task_group WHERE name = $1)::int AS found`,
        [name],
      );
      const r = firstRow(rows, 'delete task group outcome');
      if (r.deleted > 0) return 'deleted';
      return r.found > 0 ? 'inUse' : 'notFound';
    } catch (err) {
      // A task asked for a slot while the group was being deleted (ON DELETE RESTRICT).
      if ((err as { driverError?: { code?: string } }).driverError?.code === FOREIGN_KEY_VIOLATION) {
        return 'inUse';
      }
      throw err;
    }
  }

  /**
   * Puts attempts of this instance in the group's queue (waiting), fenced like every write of the
   * owning master and only while the attempts are SUBMITTED_SUCCESS (an attempt that already
   * ended never gets a row its release trigger would not delete). Idempotent: an attempt already
   * queued keeps its place and its slot (ON CONFLICT DO NOTHING). groupExists false: the group was
   * deleted since the definition was accepted (nothing is queued).
   */
  async enqueue(
    fence: InstanceFence,
    group: string,
    taskInstanceIds: readonly number[],
  ): Promise<{ owned: boolean; groupExists: boolean }> {
    const rows = await queryRows<{ owned: number; group_exists: number }>(
      this.dataSource,
      `WITH ${OWN_CTE},
       g AS (SELECT name FROM task_group WHERE name = $4),
       ins AS (
         INSERT INTO task_group_queue (task_group, task_instance_id, workflow_instance_id)
         SELECT g.name, t.id, own.id FROM own, g, task_instance t
         WHERE t.workflow_instance_id = own.id AND t.id = ANY($5::bigint[]) AND t.state = 'SUBMITTED_SUCCESS'
         ORDER BY t.id
         ON CONFLICT (task_instance_id) DO NOTHING
         RETURNING id)
       SELECT (SELECT count(*) FROM own)::int AS owned, (SELECT count(*) FROM g)::int AS group_exists,
              (SELECT count(*) FROM ins)::int AS inserted`,
      [...fenceParams(fence), group, [...taskInstanceIds]],
    );
    const r = firstRow(rows, 'enqueue outcome');
    return { owned: r.owned > 0, groupExists: r.group_exists > 0 };
  }

  /**
   * One grant pass for a group, in one transaction of three statements:
   * 1. lock the group's row (FOR NO KEY UPDATE): grant passes of every master queue up here;
   * 2. drop queue rows that can no longer run (their attempt is no longer active, or it never
   *    left SUBMITTED_SUCCESS while its instance ended without a master, e.g. stopped while
   *    waiting to be taken over): a slot cannot leak through an odd path;
   * 3. give free slot numbers (0 .. capacity - 1, not held) to the oldest waiters (by queue id),
   *    as many as capacity minus the slots held.
   * Statements 2 and 3 start after the lock is held, so they see every grant and release
   * committed before. Returns the slots given (each NOTIFYs its instance's owner by trigger).
   */
  grantPass(group: string): Promise<SlotGrant[]> {
    return inTransaction(this.dataSource, async (runner) => {
      const locked = await queryRows<{ capacity: number }>(
        runner,
        'SELECT capacity FROM task_group WHERE name = $1 FOR NO KEY UPDATE',
        [group],
      );
      const capacity = locked[0]?.capacity;
      if (capacity === undefined) return [];
      await queryResult(
        runner,
        `DELETE FROM task_group_queue q USING task_instance t, workflow_instance w
         WHERE q.task_group = $1 AND t.id = q.task_instance_id AND w.id = t.workflow_instance_id
           AND (t.state NOT IN ('SUBMITTED_SUCCESS', 'DISPATCH', 'RUNNING_EXECUTION')
                OR (t.state = 'SUBMITTED_SUCCESS' AND w.state IN ${FINAL_STATES_SQL}))`,
        [group],
      );
      const granted = await queryRows<{
        task_instance_id: string;
        workflow_instance_id: string;
        slot_no: number;
      }>(
        runner,
        `WITH held AS (SELECT slot_no FROM task_group_queue WHERE task_group = $1 AND slot_no IS NOT NULL),
         free AS (
           SELECT s AS slot_no, row_number() OVER (ORDER BY s) AS rn
           FROM generate_series(0, $2::int - 1) s
           WHERE s NOT IN (SELECT slot_no FROM held)),
         waiters AS (
           SELECT id, row_number() OVER (ORDER BY id) AS rn FROM (
             SELECT id FROM task_group_queue WHERE task_group = $1 AND slot_no IS NULL ORDER BY id
             LIMIT greatest(0, $2::int - (SELECT count(*) FROM held))) w)
         UPDATE task_group_queue q SET slot_no = f.slot_no, granted_at = clock_timestamp()
         FROM waiters w JOIN free f ON f.rn = w.rn
         WHERE q.id = w.id
         RETURNING q.task_instance_id, q.workflow_instance_id, q.slot_no`,
        [group, capacity],
      );
      return granted.map((g) => ({
        taskInstanceId: Number(g.task_instance_id),
        workflowInstanceId: Number(g.workflow_instance_id),
        slotNo: g.slot_no,
      }));
    });
  }

  /** Which of an instance's attempts hold a slot. */
  async granted(workflowInstanceId: number, taskInstanceIds: readonly number[]): Promise<number[]> {
    if (taskInstanceIds.length === 0) return [];
    const rows = await queryRows<{ task_instance_id: string }>(
      this.dataSource,
      `SELECT task_instance_id FROM task_group_queue
       WHERE workflow_instance_id = $1 AND task_instance_id = ANY($2::bigint[]) AND slot_no IS NOT NULL`,
      [workflowInstanceId, [...taskInstanceIds]],
    );
    return rows.map((r) => Number(r.task_instance_id));
  }

  /** The queue rows of an instance (diagnosis: who waits for which group since when). */
  async queueOf(workflowInstanceId: number): Promise<TaskGroupQueueEntry[]> {
    const rows = await queryRows<{
      task_instance_id: string;
      task_group: string;
      slot_no: number | null;
      requested_at: Date;
    }>(
      this.dataSource,
      `SELECT task_instance_id, task_group, slot_no, requested_at FROM task_group_queue
       WHERE workflow_instance_id = $1 ORDER BY id`,
      [workflowInstanceId],
    );
    return rows.map((r) => ({
      taskInstanceId: Number(r.task_instance_id),
      taskGroup: r.task_group,
      slotNo: r.slot_no,
      requestedAt: r.requested_at,
    }));
  }
}
