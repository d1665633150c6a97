import { Inject, Injectable } from '@nestjs/common';
import { FINAL_WORKFLOW_STATES, NOTIFY_CHANNELS, type WorkflowState } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { deleteCommandsSql, insertCommandsSql } from './command.repository';
import type { InstanceFence } from './instance-state.repository';
import { firstRow, queryRows } from './sql';

/** What startChild did. */
export interface StartChildOutcome {
  /** The parent's fence held (this master owns the parent and it has not ended). */
  readonly owned: boolean;
  /** The parent task's child instance (new or already there); undefined when there is none. */
  readonly childInstanceId: number | undefined;
  /** True when this call inserted the child (and its START_PROCESS command). */
  readonly created: boolean;
  /** Why there is no child (fence gone, unknown workflow, task not of the parent). */
  readonly reason?: string;
}

export interface StartChildInput {
  /** The SUB_WORKFLOW task attempt (task_instance.id) of the fenced parent. */
  readonly parentTaskInstanceId: number;
  readonly workflowCode: string;
  readonly params: Record<string, string>;
  readonly scheduleTime: Date | null;
}

export interface ChildState {
  readonly parentTaskInstanceId: number;
  readonly childInstanceId: number;
  readonly state: WorkflowState;
  readonly message: string | null;
}

/** An instance a stop or pause changed, with its new state. */
export interface HaltedInstance {
  readonly id: number;
  readonly state: WorkflowState;
}

export type HaltAction = 'stop' | 'pause';

/**
 * What a stop or a pause does to one instance of a tree, by the state it is in (absent: nothing,
 * it is already stopping/pausing or finished):
 * - one a master drives (RUNNING_EXECUTION; for stop also READY_PAUSE, a stop overrides a pause)
 *   is asked: READY_STOP / READY_PAUSE plus a NOTIFY, its master does the rest. One handed back
 *   (host NULL, recovery command queued) keeps READY_* through adoption, so its next owner does it.
 * - one no master drives yet (SUBMITTED_SUCCESS, or SERIAL_WAIT at its run gate) ends at once,
 *   like endSubmitted;
 * - a paused one ends STOP on stop (its PAUSE tasks KILL): "stop also ends a paused instance".
 */
const HALT_TRANSITIONS: Record<HaltAction, ReadonlyArray<readonly [WorkflowState, WorkflowState]>> = {
  stop: [
    ['RUNNING_EXECUTION', 'READY_STOP'],
    ['READY_PAUSE', 'READY_STOP'],
    ['SUBMITTED_SUCCESS', 'STOP'],
    ['SERIAL_WAIT', 'STOP'],
    ['PAUSE', 'STOP'],
  ],
  pause: [
    ['RUNNING_EXECUTION', 'READY_PAUSE'],
    ['SUBMITTED_SUCCESS', 'PAUSE'],
    ['SERIAL_WAIT', 'PAUSE'],
  ],
};

/**
 * What a resume adds to workflow_instance.paused_ms: the time since the instance ended (paused, or
 * failed before a resume of its failed tasks), which its timeoutMs does not count. SQL over the
 * row being updated (its old end_time column, named `endTime`).
 */
export const pausedSinceEndMs = (endTime = 'end_time'): string =>
  `CASE WHEN ${endTime} IS NULL THEN 0 ELSE floor(extract(epoch FROM now() - ${endTime}) * 1000)::bigint END`;

/** Message of a task that was PAUSE when its instance was stopped. */
export const STOPPED_WHILE_PAUSED = 'stopped while paused';

const sqlList = (states: readonly string[]): string => `(${states.map((s) => `'${s}'`).join(', ')})`;

/** The final states as an SQL list (constants, never input). */
const FINAL_STATES_SQL = sqlList(FINAL_WORKFLOW_STATES);

const haltCase = (action: HaltAction, column: string): string =>
  `CASE ${column} ${HALT_TRANSITIONS[action].map(([from, to]) => `WHEN '${from}' THEN '${to}'`).join(' ')} END`;

const haltFrom = (action: HaltAction): string => sqlList(HALT_TRANSITIONS[action].map(([from]) => from));

/**
 * How the tree statement starts. 'root': $1's row is updated too, only when its state is one of
 * $2 (text[]), and the descendants only if it was (all or nothing). 'descendants': only the
 * descendants of $1, when `gate` (an SQL query) returns a row.
 */
export type HaltScope = { readonly kind: 'root' } | { readonly kind: 'descendants'; readonly gate: string };

/**
 * ONE statement that applies a stop or pause to an instance tree (the root $1 and every
 * descendant by parent_instance_id, found by a recursive CTE) as HALT_TRANSITIONS says:
 * - the root row is updated first, so it is locked before any descendant; the descendants are
 *   locked in id order (a child's id is larger than its parent's), so two halts of overlapping
 *   trees lock in the same order and cannot deadlock;
 * - every row is re-checked under its lock (READ COMMITTED re-evaluates a changed row), so a
 *   master taking a submitted child meanwhile turns it into READY_* instead of STOP;
 * - tasks still PAUSE of an instance it stops are KILL with STOPPED_WHILE_PAUSED;
 * - pending commands of the instances it ends are deleted, skipping any a consuming master has
 *   locked (that master then finds the instance final and drops its command): never waiting
 *   for a command lock while holding instance rows is what keeps it deadlock-free;
 * - every instance it asks (READY_*) gets pg_notify(porpoise_instance_control, id), delivered
 *   at commit.
 * Returns the changed instances (root included) with their new states.
 * A child a master inserts after this statement's snapshot is not in the tree: startChild makes
 * a child of a READY_STOP / READY_PAUSE parent STOP / PAUSE at once, and a master that sees its
 * instance READY_* calls haltChildren, so such a child does not run on.
 */
export function haltTreeStatement(action: HaltAction, scope: HaltScope): string {
  const channel = NOTIFY_CHANNELS.instanceControl;
  const root =
    scope.kind === 'root'
      ? `r AS (
           UPDATE workflow_instance w SET state = ${haltCase(action, 'w.state')},
             end_time = CASE WHEN ${haltCase(action, 'w.state')} IN ${FINAL_STATES_SQL} THEN now() ELSE w.end_time END,
             updated_at = now()
           WHERE w.id = $1 AND w.state = ANY($2::text[]) AND w.state IN ${haltFrom(action)}
           RETURNING w.id, w.state),
         gate AS (SELECT 1 FROM r),`
      : `r AS (SELECT NULL::bigint AS id, NULL::text AS state WHERE false),
         gate AS (${scope.gate}),`;
  return `WITH RECURSIVE ${root}
     tree (id) AS (
       SELECT id FROM workflow_instance WHERE parent_instance_id = $1
       UNION
       SELECT c.id FROM workflow_instance c JOIN tree ON c.parent_instance_id = tree.id),
     lock AS (
       SELECT w.id, ${haltCase(action, 'w.state')} AS new_state FROM workflow_instance w
       WHERE w.id IN (SELECT id FROM tree) AND w.id <> $1 AND w.state IN ${haltFrom(action)}
         AND EXISTS (SELECT 1 FROM gate)
       ORDER BY w.id FOR UPDATE OF w),
     u AS (
       UPDATE workflow_instance w SET state = lock.new_state,
         end_time = CASE WHEN lock.new_state IN ${FINAL_STATES_SQL} THEN now() ELSE w.end_time END,
         updated_at = now()
       FROM lock WHERE w.id = lock.id
       RETURNING w.id, w.state),
     changed AS (SELECT id, state FROM r UNION ALL SELECT id, state FROM u),
     killed AS (
       UPDATE task_instance SET state = 'KILL', message = '${STOPPED_WHILE_PAUSED}',
         end_time = coalesce(end_time, now()), updated_at = now(), writer_epoch = NULL
       WHERE workflow_instance_id IN (SELECT id FROM changed WHERE state = 'STOP') AND state = 'PAUSE'),
     dropped AS (
       ${deleteCommandsSql(`SELECT id FROM changed WHERE state IN ${FINAL_STATES_SQL}`, { skipLocked: true })})
   SELECT c.id, c.state,
     CASE WHEN c.state IN ('READY_STOP', 'READY_PAUSE') THEN pg_notify('${channel}', c.id::text) END IS NOT NULL
       AS notified
   FROM changed c ORDER BY c.id`;
}

/** Runs a statement built by haltTreeStatement and maps its rows. */
export async function runHaltTree(
  dataSource: DataSource,
  sql: string,
  params: unknown[],
): Promise<HaltedInstance[]> {
  const rows = await queryRows<{ id: string; state: WorkflowState }>(dataSource, sql, params);
  return rows.map((r) => ({ id: Number(r.id), state: r.state }));
}

/**
 * The parent's fence, as instance-state.repository writes it (host and epoch, FOR SHARE so a
 * takeover waits for this statement or makes it find nothing), and the parent not ended: a
 * finished or paused parent starts no child. $1 = instance id, $2 = host, $3 = epoch.
 */
const PARENT_OWN_CTE = `own AS (
  SELECT id, state, timezone FROM workflow_instance
  WHERE id = $1 AND host = $2 AND epoch = $3 AND state NOT IN ${FINAL_STATES_SQL} FOR SHARE)`;

const fenceParams = (f: InstanceFence): unknown[] => [f.instanceId, f.host, f.epoch];

/**
 * SUB_WORKFLOW tasks (DESIGN.md section 9): the child instance of a parent task attempt, and the
 * children's states for the parent's master. One child per parent task attempt is a unique key
 * (workflow_instance.parent_task_instance_id), not luck: a master that dies between starting the
 * child and recording it, and its successor asking again, get the same child.
 */
@Injectable()
export class SubWorkflowRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /**
   * Starts the child of a parent task attempt, only while the parent's fence holds: ONE statement
   * inserts the child (the workflow's current version, SUBMITTED_SUCCESS, no host, START_PROCESS,
   * parent_instance_id = the fenced instance, parent_task_instance_id) and its START_PROCESS
   * command (whose trigger NOTIFYs the masters), ON CONFLICT on the unique parent task doing
   * nothing. An existing child is answered with created = false. Only when a concurrent insert
   * committed during the statement (the statement waited for it on the unique index, but its
   * snapshot cannot see it) does a second query read that child.
   * A parent already asked to stop or pause (READY_STOP / READY_PAUSE) gets its child STOP /
   * PAUSE at once, without a command: the halt's tree walk could not have seen it.
   */
  async startChild(fence: InstanceFence, input: StartChildInput): Promise<StartChildOutcome> {
    const rows = await queryRows<{
      owned: boolean;
      task_found: boolean;
      defined: boolean;
      created_id: string | null;
      existing_id: string | null;
    }>(
      this.dataSource,
      `WITH ${PARENT_OWN_CTE},
       task AS (
         SELECT t.id FROM task_instance t JOIN own ON own.id = t.workflow_instance_id WHERE t.id = $4),
       def AS (SELECT code, version FROM workflow_definition WHERE code = $5),
       existing AS (SELECT id FROM workflow_instance WHERE parent_task_instance_id = $4 AND parent_instance_id = $1),
       wi AS (
         INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type, params,
           schedule_time, end_time, parent_instance_id, parent_task_instance_id, timezone)
         SELECT def.code, def.version,
           CASE own.state WHEN 'READY_STOP' THEN 'STOP' WHEN 'READY_PAUSE' THEN 'PAUSE' ELSE 'SUBMITTED_SUCCESS' END,
           NULL, 0, 'START_PROCESS', $6::jsonb, $7::timestamptz,
           CASE WHEN own.state = 'READY_STOP' THEN now() END, own.id, task.id, own.timezone
         FROM own, task, def
         WHERE NOT EXISTS (SELECT 1 FROM existing)
         ON CONFLICT (parent_task_instance_id) WHERE parent_task_instance_id IS NOT NULL DO NOTHING
         RETURNING id, workflow_code, workflow_version, state, params),
       cmd AS (${insertCommandsSql({ from: 'wi', type: "'START_PROCESS'", where: "state = 'SUBMITTED_SUCCESS'" })})
       SELECT EXISTS (SELECT 1 FROM own) AS owned, EXISTS (SELECT 1 FROM task) AS task_found,
              EXISTS (SELECT 1 FROM def) AS defined, (SELECT id FROM wi) AS created_id,
              (SELECT id FROM existing) AS existing_id`,
      [
        ...fenceParams(fence),
        input.parentTaskInstanceId,
        input.workflowCode,
        JSON.stringify(input.params),
        input.scheduleTime,
      ],
    );
    const row = firstRow(rows, `child of task instance ${input.parentTaskInstanceId}`);
    const none = (reason: string, owned = true): StartChildOutcome => ({
      owned,
      childInstanceId: undefined,
      created: false,
      reason,
    });
    if (!row.owned) {
      return none(
        `workflow instance ${fence.instanceId} is not owned by ${fence.host} at epoch ${fence.epoch}, or it has ended`,
        false,
      );
    }
    if (!row.task_found) {
      return none(
        `task instance ${input.parentTaskInstanceId} is not a task of workflow instance ${fence.instanceId}`,
      );
    }
    if (row.created_id !== null) {
      return { owned: true, childInstanceId: Number(row.created_id), created: true };
    }
    if (row.existing_id !== null) {
      return { owned: true, childInstanceId: Number(row.existing_id), created: false };
    }
    if (!row.defined) return none(`workflow "${input.workflowCode}" not found`);
    // The insert conflicted with a child committed after this statement's snapshot: read it now.
    const raced = await queryRows<{ id: string }>(
      this.dataSource,
      'SELECT id FROM workflow_instance WHERE parent_task_instance_id = $1 AND parent_instance_id = $2',
      [input.parentTaskInstanceId, fence.instanceId],
    );
    const child = raced[0];
    if (child === undefined) {
      // Unreachable while rows are never deleted; said plainly rather than guessed.
      return none(`the child of task instance ${input.parentTaskInstanceId} conflicted but cannot be read`);
    }
    return { owned: true, childInstanceId: Number(child.id), created: false };
  }

  /**
   * The resume of a SUB_WORKFLOW task paused with its run, in ONE statement under the parent's
   * fence: the task row PAUSE → RUNNING_EXECUTION, and its child, if PAUSE and the parent runs
   * (not asked to stop or pause again), → SUBMITTED_SUCCESS with a RECOVER_SUSPENDED_PROCESS
   * command (its own paused tasks and children resume the same way). The same child carries on:
   * never a second one. A failover between this and the child's start finds the row running and
   * the child resumed. Returns the resumed child, if one was.
   */
  async resumeChild(
    fence: InstanceFence,
    parentTaskInstanceId: number,
  ): Promise<{ owned: boolean; childInstanceId: number | undefined }> {
    const rows = await queryRows<{ owned: boolean; child_id: string | null }>(
      this.dataSource,
      `WITH ${PARENT_OWN_CTE},
       task AS (
         UPDATE task_instance t SET state = 'RUNNING_EXECUTION', message = 'runs on the master', updated_at = now(),
           writer_epoch = $3::bigint
         FROM own WHERE t.id = $4 AND t.workflow_instance_id = own.id AND t.state = 'PAUSE'
         RETURNING t.id),
       child AS (
         UPDATE workflow_instance c SET state = 'SUBMITTED_SUCCESS', host = NULL,
           command_type = 'RECOVER_SUSPENDED_PROCESS', paused_ms = c.paused_ms + ${pausedSinceEndMs('c.end_time')},
           end_time = NULL, message = NULL, updated_at = now()
         FROM own
         WHERE c.parent_task_instance_id = $4 AND c.parent_instance_id = own.id AND c.state = 'PAUSE'
           AND own.state = 'RUNNING_EXECUTION' AND EXISTS (SELECT 1 FROM task)
         RETURNING c.id, c.workflow_code, c.workflow_version, c.params),
       cmd AS (${insertCommandsSql({ from: 'child', type: "'RECOVER_SUSPENDED_PROCESS'" })})
       SELECT EXISTS (SELECT 1 FROM own) AS owned, (SELECT id FROM child) AS child_id,
              (SELECT count(*) FROM cmd) AS commands`,
      [...fenceParams(fence), parentTaskInstanceId],
    );
    const row = firstRow(rows, `resume of the child of task instance ${parentTaskInstanceId}`);
    return { owned: row.owned, childInstanceId: row.child_id === null ? undefined : Number(row.child_id) };
  }

  /** The children of a parent instance, one per SUB_WORKFLOW task attempt, in id order. */
  async childStates(parentInstanceId: number): Promise<ChildState[]> {
    const rows = await queryRows<{
      parent_task_instance_id: string;
      id: string;
      state: WorkflowState;
      message: string | null;
    }>(
      this.dataSource,
      `SELECT parent_task_instance_id, id, state, message FROM workflow_instance
       WHERE parent_instance_id = $1 AND parent_task_instance_id IS NOT NULL ORDER BY id`,
      [parentInstanceId],
    );
    return rows.map((r) => ({
      parentTaskInstanceId: Number(r.parent_task_instance_id),
      childInstanceId: Number(r.id),
      state: r.state,
      message: r.message,
    }));
  }

  /**
   * Passes a stop or pause of the fenced parent on to every descendant (as HALT_TRANSITIONS says;
   * READY_* ones get a NOTIFY), only while the fence holds. The API's stop/pause already does this
   * in its own statement; the parent's master calls it when it sees READY_STOP / READY_PAUSE, for a
   * child that statement could not see (inserted concurrently). Returns the instances it changed.
   */
  async haltChildren(fence: InstanceFence, action: HaltAction): Promise<HaltedInstance[]> {
    const gate = 'SELECT id FROM workflow_instance WHERE id = $1 AND host = $2 AND epoch = $3 FOR SHARE';
    return runHaltTree(
      this.dataSource,
      haltTreeStatement(action, { kind: 'descendants', gate }),
      fenceParams(fence),
    );
  }
}
