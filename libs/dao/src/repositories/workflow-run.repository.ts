import { Injectable } from '@nestjs/common';
import type { CommandType, WorkflowState } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { deleteCommandsSql, insertCommandsSql } from './command.repository';
import { IDEMPOTENCY_KEY_TTL_HOURS } from './retention.repository';
import { gatedStateSql, gatedWaitSeqSql, gateLimitedSql } from './run-gate.repository';
import { firstRow, inTransaction, queryRows } from './sql';
import { haltTreeStatement, pausedSinceEndMs, runHaltTree } from './sub-workflow.repository';

/** What stop and pause do to a RUNNING_EXECUTION instance's tree; the root's target state names it. */
const HALT_ACTION = { READY_STOP: 'stop', READY_PAUSE: 'pause' } as const;

/** The root and its descendants, the root only from the states given as $2 (built once: constants). */
const HALT_TREE = {
  stop: haltTreeStatement('stop', { kind: 'root' }),
  pause: haltTreeStatement('pause', { kind: 'root' }),
} as const;

/** The descendants of an instance endSubmitted just ended (its row is locked by that transaction). */
const HALT_DESCENDANTS = {
  stop: haltTreeStatement('stop', { kind: 'descendants', gate: 'SELECT 1' }),
  pause: haltTreeStatement('pause', { kind: 'descendants', gate: 'SELECT 1' }),
} as const;

/**
 * The trigger's START_PROCESS command, with the ids the statement reserved; none for a run that
 * waits at its workflow's run gate (SERIAL_WAIT: the gate writes it later, with that id).
 */
const TRIGGER_COMMAND = insertCommandsSql({
  from: 'ids JOIN wi ON wi.id = ids.workflow_instance_id',
  type: "'START_PROCESS'",
  id: 'ids.command_id',
  where: "wi.state = 'SUBMITTED_SUCCESS'",
  returning: 'id, workflow_instance_id',
});

export interface TriggerOutcome {
  readonly commandId: number;
  readonly workflowInstanceId: number;
  /**
   * SERIAL_WAIT when the run waits at its workflow's run gate (its command, with commandId, is
   * written when the gate admits it); else SUBMITTED_SUCCESS. A repeated key answers the state now.
   */
  readonly state: WorkflowState;
  /** True when the Idempotency-Key was seen before: these are the first trigger's ids, nothing new started. */
  readonly repeated: boolean;
}

/** A resubmitted run: its command's id (written now, or by the gate when it admits a SERIAL_WAIT run). */
export interface ResubmitOutcome {
  readonly commandId: number;
  readonly state: WorkflowState;
}

/**
 * A resubmit of a limited workflow's run waits at the gate like a trigger, with its command type
 * kept; a sub-workflow child never waits (its parent holds a slot already: no parent/child
 * deadlock). SQL over the instance `w` and its definition `d`.
 */
const RESUBMIT_GATED = `(${gateLimitedSql('d')} AND w.parent_instance_id IS NULL)`;

/** Thrown inside a transaction to roll it back when a conditional write found the row changed. */
class StateChanged extends Error {}

/**
 * Writes that start or steer workflow runs: the trigger (instance + command in one statement)
 * and the state changes behind stop/pause/resume/rerun/resume-failed. Every write is
 * conditional on the state it expects, so concurrent requests and masters cannot interleave
 * into a state nobody asked for; the caller re-reads and decides again on a miss.
 */
@Injectable()
export class WorkflowRunRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * One statement, one round trip: reserves both ids from their sequences, records the
   * idempotency key (when given) with them, inserts the SUBMITTED_SUCCESS instance at the
   * workflow's current version and its START_PROCESS command (whose insert fires NOTIFY
   * porpoise_command at commit). A repeated key conflicts on the key's primary key: the
   * statement then writes nothing (a concurrent first request is waited for by the unique
   * index), and a second query returns the stored answer. A key older than
   * IDEMPOTENCY_KEY_TTL_HOURS has expired: the conflict takes its row over for a new run (as if
   * the sweep had pruned it already; a concurrent reuse waits for that and repeats the new run).
   * Null when the workflow is unknown.
   */
  async trigger(
    code: string,
    params: Record<string, string>,
    idempotencyKey?: string,
  ): Promise<TriggerOutcome | null> {
    const ids = idempotencyKey
      ? `ids AS (
           INSERT INTO idempotency_key (key, workflow_code, command_id, workflow_instance_id)
           SELECT $3, code, nextval('command_id_seq'), nextval('workflow_instance_id_seq') FROM def
           ON CONFLICT (workflow_code, key) DO UPDATE
             SET command_id = EXCLUDED.command_id, workflow_instance_id = EXCLUDED.workflow_instance_id,
                 created_at = now()
             WHERE idempotency_key.created_at < now() - make_interval(hours => ${IDEMPOTENCY_KEY_TTL_HOURS})
           RETURNING command_id, workflow_instance_id)`
      : `ids AS (
           SELECT nextval('command_id_seq') AS command_id, nextval('workflow_instance_id_seq') AS workflow_instance_id
           FROM def)`;
    const rows = await queryRows<{
      defined: boolean;
      command_id: string | null;
      workflow_instance_id: string | null;
      state: WorkflowState | null;
    }>(
      this.dataSource,
      `WITH def AS (
         SELECT code, version, ${gateLimitedSql('workflow_definition')} AS limited
         FROM workflow_definition WHERE code = $1),
       ${ids},
       wi AS (
         INSERT INTO workflow_instance
           (id, workflow_code, workflow_version, state, host, epoch, command_type, params, wait_seq)
         SELECT ids.workflow_instance_id, def.code, def.version, ${gatedStateSql('def.limited')}, NULL, 0,
           'START_PROCESS', $2::jsonb, ${gatedWaitSeqSql('def.limited', 'ids.command_id')}
         FROM ids, def
         RETURNING id, workflow_code, workflow_version, params, state),
       cmd AS (${TRIGGER_COMMAND})
       SELECT EXISTS (SELECT 1 FROM def) AS defined, ids.command_id, ids.workflow_instance_id, wi.state
       FROM (SELECT 1) AS one LEFT JOIN ids ON true LEFT JOIN wi ON true LEFT JOIN cmd ON true`,
      idempotencyKey ? [code, JSON.stringify(params), idempotencyKey] : [code, JSON.stringify(params)],
    );
    // The outer SELECT reads FROM (SELECT 1) LEFT JOIN cmd: exactly one row, whatever was written.
    const row = firstRow(rows, `trigger outcome of workflow ${code}`);
    if (!row.defined) return null;
    if (row.command_id !== null && row.workflow_instance_id !== null && row.state !== null) {
      return {
        commandId: Number(row.command_id),
        workflowInstanceId: Number(row.workflow_instance_id),
        state: row.state,
        repeated: false,
      };
    }
    // Only a repeated key gets here: the key row is committed (the insert waited for it).
    const stored = await queryRows<{
      command_id: string;
      workflow_instance_id: string;
      state: WorkflowState | null;
    }>(
      this.dataSource,
      `SELECT k.command_id, k.workflow_instance_id, w.state FROM idempotency_key k
       LEFT JOIN workflow_instance w ON w.id = k.workflow_instance_id
       WHERE k.workflow_code = $1 AND k.key = $2`,
      [code, idempotencyKey],
    );
    const first = firstRow(stored, `stored idempotency key of workflow ${code}`);
    return {
      commandId: Number(first.command_id),
      workflowInstanceId: Number(first.workflow_instance_id),
      state: first.state ?? 'SUBMITTED_SUCCESS',
      repeated: true,
    };
  }

  /** The instance's state, or null when there is no such instance. */
  async state(workflowInstanceId: number): Promise<WorkflowState | null> {
    const rows = await queryRows<{ state: WorkflowState }>(
      this.dataSource,
      'SELECT state FROM workflow_instance WHERE id = $1',
      [workflowInstanceId],
    );
    return rows[0]?.state ?? null;
  }

  /**
   * Ends a SUBMITTED_SUCCESS instance that no master took yet, or a SERIAL_WAIT one waiting at its
   * workflow's run gate (no master owns it either), as STOP or PAUSE and deletes its pending
   * commands. Commands are locked (deleted) before the instance row, the order in
   * which a consuming master locks them, so the two cannot deadlock; a master that holds the
   * command makes this wait, then the instance is no longer SUBMITTED_SUCCESS and nothing
   * changes (false). In the same transaction the stop or pause reaches its sub-workflow
   * descendants (a resumed parent no master took yet still has paused children).
   */
  async endSubmitted(workflowInstanceId: number, state: 'STOP' | 'PAUSE'): Promise<boolean> {
    try {
      return await inTransaction(this.dataSource, async (runner) => {
        await queryRows(runner, deleteCommandsSql('$1', { skipLocked: false }), [workflowInstanceId]);
        const updated = await queryRows(
          runner,
          `UPDATE workflow_instance
           SET state = $2, end_time = CASE WHEN $2 = 'STOP' THEN now() ELSE end_time END, updated_at = now()
           WHERE id = $1 AND state IN ('SUBMITTED_SUCCESS', 'SERIAL_WAIT') RETURNING id`,
          [workflowInstanceId, state],
        );
        // Someone changed it meanwhile: undo the delete too.
        if (updated.length === 0) throw new StateChanged();
        await queryRows(runner, HALT_DESCENDANTS[state === 'STOP' ? 'stop' : 'pause'], [workflowInstanceId]);
        return true;
      });
    } catch (err) {
      if (err instanceof StateChanged) return false;
      throw err;
    }
  }

  /**
   * Asks the owning master to stop or pause a RUNNING_EXECUTION instance: READY_STOP /
   * READY_PAUSE plus a NOTIFY, and in the same statement every unfinished sub-workflow
   * descendant likewise (one a master drives: READY_* and a NOTIFY with its id; one no master
   * took yet: ended at once like endSubmitted; for stop, a paused one: STOP) — see
   * haltTreeStatement. NOTIFYs are delivered at commit. False when the instance is not
   * RUNNING_EXECUTION any more (then nothing in its tree changed).
   */
  async requestHalt(workflowInstanceId: number, state: 'READY_STOP' | 'READY_PAUSE'): Promise<boolean> {
    const changed = await runHaltTree(this.dataSource, HALT_TREE[HALT_ACTION[state]], [
      workflowInstanceId,
      ['RUNNING_EXECUTION'],
    ]);
    return changed.some((c) => c.id === workflowInstanceId);
  }

  /**
   * Stop of a PAUSE instance (DESIGN.md section 9: stop also ends a paused instance), in one
   * statement: PAUSE → STOP with end_time, its tasks still PAUSE → KILL ("stopped while
   * paused"), its paused sub-workflow descendants the same, running ones READY_STOP plus a
   * NOTIFY, submitted ones STOP. False when the instance is not PAUSE any more (nothing changed).
   */
  async stopPaused(workflowInstanceId: number): Promise<boolean> {
    const changed = await runHaltTree(this.dataSource, HALT_TREE.stop, [workflowInstanceId, ['PAUSE']]);
    return changed.some((c) => c.id === workflowInstanceId);
  }

  /**
   * Hands a finished or paused instance back to the masters: state SUBMITTED_SUCCESS, no
   * host, and a command of the given type for the same instance, in one statement and only
   * if the instance is still in one of fromStates. A rerun starts its clock again; the message
   * of the run before (why it failed) is cleared. Returns the command id, or null when the
   * state did not match.
   */
  async resubmit(
    workflowInstanceId: number,
    fromStates: readonly WorkflowState[],
    commandType: CommandType,
  ): Promise<ResubmitOutcome | null> {
    const rows = await queryRows<{ id: string; state: WorkflowState }>(
      this.dataSource,
      `WITH u AS (
         UPDATE workflow_instance w
         SET state = ${gatedStateSql(RESUBMIT_GATED)}, wait_seq = ${gatedWaitSeqSql(RESUBMIT_GATED)},
             host = NULL, command_type = $2, end_time = NULL, message = NULL,
             start_time = CASE WHEN $2 = 'REPEAT_RUNNING' THEN NULL ELSE w.start_time END,
             paused_ms = CASE WHEN $2 = 'REPEAT_RUNNING' THEN 0 ELSE w.paused_ms + ${pausedSinceEndMs('w.end_time')} END,
             updated_at = now()
         FROM workflow_definition d
         WHERE w.id = $1 AND w.state = ANY($3::text[]) AND d.code = w.workflow_code
         RETURNING w.id, w.workflow_code, w.workflow_version, w.params, w.state, w.wait_seq),
       c AS (${insertCommandsSql({ from: 'u', type: '$2', where: "state = 'SUBMITTED_SUCCESS'" })})
       SELECT coalesce((SELECT id FROM c), u.wait_seq) AS id, u.state FROM u`,
      [workflowInstanceId, commandType, [...fromStates]],
    );
    const row = rows[0];
    return row === undefined ? null : { commandId: Number(row.id), state: row.state };
  }
}
