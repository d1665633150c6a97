import { Inject, Injectable } from '@nestjs/common';
import type { CommandType, WorkflowState } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { queryResult } from './sql';

/** A source of the commands {@link insertCommandsSql} writes: one row per workflow instance. */
export interface CommandSource {
  /**
   * A FROM clause (a CTE name, or a join of them) whose rows have the instance's `id`,
   * `workflow_code`, `workflow_version` and `params` as unambiguous column names.
   */
  readonly from: string;
  /** The command type: a quoted literal or a parameter such as `$2`. */
  readonly type: string;
  /** An expression of `from` giving the command's id (reserved from command_id_seq), if chosen by the caller. */
  readonly id?: string;
  /** A condition on `from`'s rows: only those get a command. */
  readonly where?: string;
  /** Columns of the inserted rows to return (default `id`). */
  readonly returning?: string;
}

/**
 * The only `INSERT INTO command` in the product (a guard test keeps it so, DESIGN.md section 4):
 * the statement every writer of commands embeds as a CTE of its own one-statement write (the
 * trigger, a rerun, a failover hand-back, a sub-workflow's child and its resume, a schedule's
 * fire), so that what a command carries and how it is ordered is decided in one place. The
 * insert trigger NOTIFYs porpoise_command at commit.
 */
export function insertCommandsSql(source: CommandSource): string {
  const idColumn = source.id === undefined ? '' : 'id, ';
  const idValue = source.id === undefined ? '' : `${source.id}, `;
  const where = source.where === undefined ? '' : ` WHERE ${source.where}`;
  // The priority is the workflow's current one (a column of its definition row, by primary key).
  return `INSERT INTO command (${idColumn}type, workflow_code, workflow_version, workflow_instance_id, params, priority)
         SELECT ${idValue}${source.type}, workflow_code, workflow_version, id, params,
                coalesce((SELECT pd.priority FROM workflow_definition pd WHERE pd.code = workflow_code), 2)
         FROM ${source.from}${where}
         RETURNING ${source.returning ?? 'id'}`;
}

/**
 * Deletes the pending commands of the instances `instanceIds` (a subquery or array parameter
 * expression) selects. With skipLocked, a command a consuming master holds is left alone (that
 * master then finds its instance final and drops it) instead of waited for: what a statement that
 * already holds instance rows needs to stay deadlock-free.
 */
export function deleteCommandsSql(instanceIds: string, options: { skipLocked: boolean }): string {
  return options.skipLocked
    ? `DELETE FROM command WHERE id IN (
         SELECT id FROM command WHERE workflow_instance_id IN (${instanceIds}) FOR UPDATE SKIP LOCKED)`
    : `DELETE FROM command WHERE workflow_instance_id IN (${instanceIds})`;
}

/** One command taken by a consume transaction, with what the master needs to drive its instance. */
export interface ConsumedCommand {
  commandId: number;
  type: CommandType;
  workflowInstanceId: number;
  /**
   * False when the command was deleted without taking its instance: the instance is owned by a
   * master already, is in a final state, or another command of the same batch named it.
   */
  taken: boolean;
  /** The following are set when taken. */
  epoch: number;
  state: WorkflowState;
  workflowCode: string;
  workflowVersion: number;
  params: Record<string, unknown>;
  /** The version's tasks and edges (jsonb), null if that version row is missing. */
  tasks: unknown;
  edges: unknown;
  /** The version's settings column (params, failureStrategy, timeoutMs; `{}` for old versions). */
  settings: unknown;
  /** Milliseconds since the instance's start_time, by the database's clock (workflow timeout). */
  elapsedMs: number;
  /** The run's schedule time: schedule_time, or start_time for a manual run (epoch ms). */
  scheduleTimeMs: number;
  /** The IANA time zone of the run's date built-ins (its schedule's; UTC for a manual run). */
  timezone: string;
  /** How long the command waited: its created_at to this consume, by the database's clock (ms). */
  waitMs: number;
}

interface RawConsumed {
  command_id: string;
  type: CommandType;
  workflow_instance_id: string;
  taken: boolean | null;
  epoch: string | null;
  state: WorkflowState | null;
  workflow_code: string | null;
  workflow_version: number | null;
  params: Record<string, unknown> | null;
  tasks: unknown;
  edges: unknown;
  settings: unknown;
  elapsed_ms: string | null;
  schedule_ms: string | null;
  timezone: string | null;
  wait_ms: string;
}

/**
 * Command consumption (DESIGN.md section 6): ONE statement, hence one transaction and one round
 * trip per batch, which
 *  1. locks this master's share of the commands (`id % count = slot`), highest priority first,
 *     then oldest (FOR UPDATE SKIP LOCKED: a command locked by another consumer is skipped, never
 *     waited for or taken twice);
 *  2. deletes them;
 *  3. takes each referenced instance: host = me, epoch + 1, RUNNING_EXECUTION (an instance that
 *     was stopping or pausing when its previous owner died keeps READY_STOP / READY_PAUSE so the
 *     new owner finishes that), start_time kept if set, end_time cleared, command_type = the
 *     command's. Only an instance nobody owns (host NULL) and not final is taken: commands are
 *     only ever written together with host = NULL, so anything else is a stale duplicate;
 *  4. returns the taken instances with their definition version (tasks, edges, settings) and
 *     the time since start_time on the database's clock (what is left of a workflow timeout).
 * The data-modifying CTEs all run on one snapshot and commit together.
 */
@Injectable()
export class CommandRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async consume(args: {
    slot: number;
    count: number;
    host: string;
    batchSize: number;
    /**
     * A master at its MASTER_MAX_RUNNING_INSTANCES cap: only commands of these types, and those of
     * sub-workflow children (their parent already runs); all commands when absent.
     */
    onlyTypes?: readonly string[];
  }): Promise<ConsumedCommand[]> {
    const { rows } = await queryResult<RawConsumed>(
      this.dataSource,
      `WITH c AS (
         SELECT id, type, workflow_instance_id, created_at, priority FROM command
         WHERE id % $1 = $2
           AND ($5::text[] IS NULL OR type = ANY ($5::text[])
                OR EXISTS (SELECT 1 FROM workflow_instance p
                           WHERE p.id = command.workflow_instance_id AND p.parent_instance_id IS NOT NULL))
         ORDER BY priority, id LIMIT $3 FOR UPDATE SKIP LOCKED),
       del AS (DELETE FROM command WHERE id IN (SELECT id FROM c)),
       pick AS (
         SELECT DISTINCT ON (workflow_instance_id) id, type, workflow_instance_id FROM c
         ORDER BY workflow_instance_id, id DESC),
       u AS (
         UPDATE workflow_instance w SET
           host = $4, epoch = w.epoch + 1, command_type = pick.type,
           state = CASE WHEN w.state IN ('READY_STOP', 'READY_PAUSE') THEN w.state ELSE 'RUNNING_EXECUTION' END,
           start_time = coalesce(w.start_time, now()), end_time = NULL, updated_at = now()
         FROM pick
         WHERE w.id = pick.workflow_instance_id AND w.host IS NULL
           AND w.state NOT IN ('SUCCESS', 'FAILURE', 'STOP', 'PAUSE', 'SERIAL_WAIT')
         RETURNING w.id, w.epoch, w.state, w.workflow_code, w.workflow_version, w.params, pick.id AS command_id,
           floor(extract(epoch FROM now() - w.start_time) * 1000)::bigint - w.paused_ms AS elapsed_ms,
           floor(extract(epoch FROM coalesce(w.schedule_time, w.start_time)) * 1000)::bigint AS schedule_ms,
           w.timezone)
       SELECT c.id AS command_id, c.type, c.workflow_instance_id, u.command_id IS NOT NULL AS taken,
              u.epoch, u.state, u.workflow_code, u.workflow_version, u.params, v.tasks, v.edges, v.settings,
              u.elapsed_ms, u.schedule_ms, u.timezone,
              greatest(0, floor(extract(epoch FROM clock_timestamp() - c.created_at) * 1000))::bigint AS wait_ms
       FROM c
       LEFT JOIN u ON u.command_id = c.id
       LEFT JOIN workflow_definition_version v ON v.code = u.workflow_code AND v.version = u.workflow_version
       ORDER BY c.priority, c.id`,
      [args.count, args.slot, args.batchSize, args.host, args.onlyTypes ?? null],
    );
    return rows.map((r) => ({
      commandId: Number(r.command_id),
      type: r.type,
      workflowInstanceId: Number(r.workflow_instance_id),
      taken: r.taken === true,
      epoch: Number(r.epoch ?? 0),
      state: r.state ?? 'SUBMITTED_SUCCESS',
      workflowCode: r.workflow_code ?? '',
      workflowVersion: r.workflow_version ?? 0,
      params: r.params ?? {},
      tasks: r.tasks ?? null,
      edges: r.edges ?? null,
      settings: r.settings ?? {},
      elapsedMs: Number(r.elapsed_ms ?? 0),
      scheduleTimeMs: Number(r.schedule_ms ?? 0),
      timezone: r.timezone ?? 'UTC',
      waitMs: Number(r.wait_ms),
    }));
  }

  /**
   * Commands written and not yet taken by any master (a taken command is deleted in the consume
   * statement, so this is the table's size): one count, for the backlog gauge at scrape time.
   */
  async backlog(): Promise<number> {
    const { rows } = await queryResult<{ n: string }>(this.dataSource, 'SELECT count(*) AS n FROM command');
    return Number(rows[0]?.n ?? 0);
  }
}
