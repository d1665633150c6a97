import { Inject, Injectable } from '@nestjs/common';
import type { ConcurrencyPolicy } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { insertCommandsSql } from './command.repository';
import { inTransaction, queryRows } from './sql';

/**
 * The run gate (DESIGN.md section 10 "Run concurrency", README "Run concurrency"): runs of a
 * *limited* workflow (policy SERIAL_WAIT or SERIAL_DISCARD, or PARALLEL with max_runs) are written
 * as SERIAL_WAIT with a wait_seq and no command; a gate pass admits them. Runs of other workflows
 * never meet the gate: their write stays the one statement it was.
 */

/** SQL: the workflow_definition row `d` limits its runs. */
export const gateLimitedSql = (d: string): string =>
  `(${d}.concurrency_policy <> 'PARALLEL' OR ${d}.max_runs IS NOT NULL)`;

/**
 * SQL: the state a fresh or resubmitted run enters when `limited` (an SQL condition, see
 * gateLimitedSql) says whether it passes the gate: SERIAL_WAIT, else SUBMITTED_SUCCESS. A writer
 * inserts the command only for SUBMITTED_SUCCESS (`where: "state = 'SUBMITTED_SUCCESS'"`).
 */
export const gatedStateSql = (limited: string): string =>
  `CASE WHEN ${limited} THEN 'SERIAL_WAIT' ELSE 'SUBMITTED_SUCCESS' END`;

/**
 * SQL: the run's wait_seq when `limited`, else NULL. Taken from command_id_seq (or `commandId`, an
 * id the statement already reserved from it): the gate writes the run's command with this id, so
 * a command id answered at the trigger is the one the run gets, and its order is the order in
 * which runs entered the queue (a resubmitted old instance gets a new one: it does not jump it).
 */
export const gatedWaitSeqSql = (limited: string, commandId = "nextval('command_id_seq')"): string =>
  `CASE WHEN ${limited} THEN ${commandId} END`;

/** The states in which a run holds a slot of its workflow's gate (PAUSE does not). */
export const GATE_ACTIVE_STATES = [
  'SUBMITTED_SUCCESS',
  'RUNNING_EXECUTION',
  'READY_PAUSE',
  'READY_STOP',
] as const;
const ACTIVE_SQL = `(${GATE_ACTIVE_STATES.map((s) => `'${s}'`).join(', ')})`;

/** The message of a run SERIAL_DISCARD ended; `$running` is SQL giving the running instance's id. */
export const discardedMessageSql = (running: string): string =>
  `'discarded: instance ' || ${running} || ' of this workflow is running (SERIAL_DISCARD)'`;

export interface GatePassOutcome {
  /** Runs moved to SUBMITTED_SUCCESS, with the command written for each, in wait order. */
  readonly admitted: ReadonlyArray<{ readonly workflowInstanceId: number; readonly commandId: number }>;
  /** Runs SERIAL_DISCARD ended as STOP. */
  readonly discarded: readonly number[];
}

/** A workflow the sweep looks at: limited, or with runs waiting (it may have stopped being limited). */
export interface GateWorkflow {
  readonly code: string;
  readonly limited: boolean;
  readonly waiting: boolean;
}

/**
 * Statement 2 of a pass. $1 code, $2 how many runs may be active (NULL: no limit), $3 discard.
 * It runs AFTER statement 1 holds the workflow_definition row lock, so its snapshot is taken
 * with the lock held: it sees every admission of a pass before it.
 * - active: the runs holding a slot (sub-workflow children and failed-over runs included: they
 *   never wait, but they count);
 * - pick: the oldest waiters (wait_seq) that fit; with discard, at most one and only when none
 *   is active;
 * - admitted: pick → SUBMITTED_SUCCESS (re-checked under each row's lock: a run the API stopped
 *   meanwhile is skipped, and its end NOTIFY brings another pass). A resumed run (it has a
 *   start_time) does not count the wait against its timeoutMs: the time since it entered
 *   SERIAL_WAIT (updated_at, which nothing else moves while it waits) goes to paused_ms, as a
 *   pause does. cmd: their commands, of
 *   the type stored on the instance (START_PROCESS, SCHEDULER, a resume's ...), with id wait_seq;
 * - discarded: with discard, every other waiter → STOP now, naming the run it found running
 *   (the oldest active one, or the one this pass admitted); none when nothing runs. It never
 *   ran, so it has no tasks (a discarded rerun keeps the tasks of its earlier run).
 */
const PASS_SQL = `WITH active AS (
    SELECT count(*)::integer AS n, min(id) AS first_id FROM workflow_instance
    WHERE workflow_code = $1 AND state IN ${ACTIVE_SQL}),
  pick AS (
    SELECT id FROM workflow_instance
    WHERE workflow_code = $1 AND state = 'SERIAL_WAIT'
    ORDER BY wait_seq, id
    LIMIT (SELECT CASE WHEN $2::integer IS NULL THEN NULL ELSE greatest(0, $2::integer - n) END FROM active)),
  admitted AS (
    UPDATE workflow_instance w SET state = 'SUBMITTED_SUCCESS', updated_at = now(),
      paused_ms = CASE WHEN w.start_time IS NULL THEN w.paused_ms
        ELSE w.paused_ms + greatest(0, floor(extract(epoch FROM now() - w.updated_at) * 1000))::bigint END
    FROM pick WHERE w.id = pick.id AND w.state = 'SERIAL_WAIT'
    RETURNING w.id, w.workflow_code, w.workflow_version, w.params, w.command_type, w.wait_seq),
  cmd AS (${insertCommandsSql({
    from: 'admitted',
    type: 'command_type',
    id: 'wait_seq',
    returning: 'id, workflow_instance_id',
  })}),
  running AS (SELECT coalesce((SELECT first_id FROM active), (SELECT min(id) FROM admitted)) AS id),
  discarded AS (
    UPDATE workflow_instance w SET state = 'STOP', end_time = now(), updated_at = now(),
      message = ${discardedMessageSql('running.id')}
    FROM running
    WHERE $3::boolean AND running.id IS NOT NULL AND w.workflow_code = $1 AND w.state = 'SERIAL_WAIT'
      AND w.id NOT IN (SELECT id FROM admitted)
    RETURNING w.id)
  SELECT 'admitted' AS kind, workflow_instance_id AS id, id AS command_id FROM cmd
  UNION ALL
  SELECT 'discarded', id, NULL FROM discarded
  ORDER BY 1, 3, 2`;

/**
 * Runs gate passes and finds the workflows that need one. Any master may run a pass for any
 * workflow at any time: the decision is the database's, serialised by the workflow_definition row.
 */
@Injectable()
export class RunGateRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /**
   * One gate pass for a workflow, in ONE transaction of TWO statements:
   *  1. lock the workflow_definition row FOR NO KEY UPDATE (a row lock, not an advisory one:
   *     keyed by the real row, visible in pg_locks, released when a killed master's connection
   *     dies; NO KEY UPDATE does not block the KEY SHARE of an instance insert's foreign key, so
   *     triggers go on; it queues behind and ahead of a PUT of the workflow). It waits (no SKIP
   *     LOCKED): a run ending while another pass holds the lock is then seen by this one, so no
   *     wake-up is lost;
   *  2. count and admit (PASS_SQL), in a NEW statement.
   * They must stay two statements. Under READ COMMITTED a statement's snapshot is taken when it
   * starts; a single statement whose first CTE waits for the lock would count active runs and
   * pick waiters from the snapshot taken BEFORE the wait, missing what the pass that held the
   * lock admitted, and both would admit (the int test shows the interleaving: a waiter that
   * committed while the first pass waited is picked by the second pass too).
   * A workflow that is not limited (any more) admits all its waiters. Unknown code: nothing.
   */
  async pass(code: string): Promise<GatePassOutcome> {
    return inTransaction(this.dataSource, async (runner) => {
      const defs = await queryRows<{ concurrency_policy: ConcurrencyPolicy; max_runs: number | null }>(
        runner,
        'SELECT concurrency_policy, max_runs FROM workflow_definition WHERE code = $1 FOR NO KEY UPDATE',
        [code],
      );
      const def = defs[0];
      if (def === undefined) return { admitted: [], discarded: [] };
      const cap = def.concurrency_policy === 'PARALLEL' ? def.max_runs : 1;
      const rows = await queryRows<{ kind: 'admitted' | 'discarded'; id: string; command_id: string | null }>(
        runner,
        PASS_SQL,
        [code, cap, def.concurrency_policy === 'SERIAL_DISCARD'],
      );
      return {
        admitted: rows
          .filter((r) => r.kind === 'admitted')
          .map((r) => ({ workflowInstanceId: Number(r.id), commandId: Number(r.command_id) })),
        discarded: rows.filter((r) => r.kind === 'discarded').map((r) => Number(r.id)),
      };
    });
  }

  /**
   * The workflows a sweep considers, in one statement: the limited ones (whose run ends a master
   * reacts to) and those with runs in SERIAL_WAIT (each gets a pass).
   */
  async workflows(): Promise<GateWorkflow[]> {
    const rows = await queryRows<{ code: string; limited: boolean; waiting: boolean }>(
      this.dataSource,
      `SELECT d.code, ${gateLimitedSql('d')} AS limited, w.code IS NOT NULL AS waiting
       FROM workflow_definition d
       LEFT JOIN (SELECT DISTINCT workflow_code AS code FROM workflow_instance WHERE state = 'SERIAL_WAIT') w
         ON w.code = d.code
       WHERE ${gateLimitedSql('d')} OR w.code IS NOT NULL
       ORDER BY d.code`,
    );
    return rows.map((r) => ({ code: r.code, limited: r.limited, waiting: r.waiting }));
  }
}
