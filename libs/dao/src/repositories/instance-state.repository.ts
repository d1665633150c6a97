import { Inject, Injectable } from '@nestjs/common';
import { FINAL_WORKFLOW_STATES, type CommandType, type WorkflowState } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { insertCommandsSql } from './command.repository';
import { queryResult } from './sql';

/**
 * The ownership a master holds on a workflow instance: every write it makes is conditional on
 * `workflow_instance.host = host AND epoch = epoch` (DESIGN.md section 6, fencing), so a master
 * that lost the instance can never overwrite its successor.
 */
export interface InstanceFence {
  readonly instanceId: number;
  readonly host: string;
  readonly epoch: number;
}

/**
 * Locks the instance row in share mode while this statement runs, and only if this master still
 * owns it: a concurrent takeover (an UPDATE of host/epoch) either waits for us to commit or has
 * already committed, in which case the row no longer matches and we write nothing.
 * Parameters $1 = instance id, $2 = host, $3 = epoch.
 */
export const OWN_CTE =
  'own AS (SELECT id FROM workflow_instance WHERE id = $1 AND host = $2 AND epoch = $3 FOR SHARE)';

export const fenceParams = (f: InstanceFence): unknown[] => [f.instanceId, f.host, f.epoch];

/** The final states as an SQL list (constants, never input). */
const FINAL_STATES_SQL = `(${FINAL_WORKFLOW_STATES.map((s) => `'${s}'`).join(', ')})`;

export interface InstanceOwnership {
  id: number;
  state: WorkflowState;
  host: string | null;
  epoch: number;
}

/** An unfinished instance some master owns. */
export type HostedInstance = InstanceOwnership & { host: string };

/** Instance-level reads and writes of a master. */
@Injectable()
export class InstanceStateRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /**
   * Ends an instance in a final state with end_time, and why when the engine says so (a workflow
   * timeout, a definition it cannot run). False when this master no longer owns it (or it already
   * ended, which only its owner could have done).
   */
  async finish(fence: InstanceFence, state: WorkflowState, message?: string): Promise<boolean> {
    const { rowCount } = await queryResult(
      this.dataSource,
      `UPDATE workflow_instance SET state = $4, message = coalesce($5, message), end_time = now(), updated_at = now()
       WHERE id = $1 AND host = $2 AND epoch = $3 AND state NOT IN ${FINAL_STATES_SQL}`,
      [...fenceParams(fence), state, message ?? null],
    );
    return rowCount === 1;
  }

  /** The instance's state if this master still owns it, else undefined. */
  async readOwnedState(fence: InstanceFence): Promise<WorkflowState | undefined> {
    const { rows } = await queryResult<{ state: WorkflowState }>(
      this.dataSource,
      'SELECT state FROM workflow_instance WHERE id = $1 AND host = $2 AND epoch = $3',
      fenceParams(fence),
    );
    return rows[0]?.state;
  }

  /** Who owns an instance, for answering events about instances this master does not drive. */
  async lookup(instanceId: number): Promise<InstanceOwnership | undefined> {
    const { rows } = await queryResult<{
      id: string;
      state: WorkflowState;
      host: string | null;
      epoch: string;
    }>(this.dataSource, 'SELECT id, state, host, epoch FROM workflow_instance WHERE id = $1', [instanceId]);
    const r = rows[0];
    return r && { id: Number(r.id), state: r.state, host: r.host, epoch: Number(r.epoch) };
  }

  /** States of several instances this master drives (one round trip; for a missed-NOTIFY sweep). */
  async ownedStates(host: string, instanceIds: number[]): Promise<InstanceOwnership[]> {
    if (instanceIds.length === 0) return [];
    const { rows } = await queryResult<{
      id: string;
      state: WorkflowState;
      host: string | null;
      epoch: string;
    }>(
      this.dataSource,
      'SELECT id, state, host, epoch FROM workflow_instance WHERE id = ANY($1::bigint[]) AND host = $2',
      [instanceIds, host],
    );
    return rows.map((r) => ({ id: Number(r.id), state: r.state, host: r.host, epoch: Number(r.epoch) }));
  }

  /**
   * Unfinished instances whose host is one of hosts (failover: what a dead master, or an
   * earlier process on this master's address, left). Uses the partial index on host.
   */
  async unfinishedOwnedBy(hosts: readonly string[]): Promise<HostedInstance[]> {
    if (hosts.length === 0) return [];
    return this.owners(`host = ANY($1::text[])`, [hosts]);
  }

  /** Unfinished instances with a host that is none of hosts (failover sweep: hosts = the live masters). */
  async unfinishedNotOwnedBy(hosts: readonly string[]): Promise<HostedInstance[]> {
    return this.owners(`host IS NOT NULL AND host <> ALL($1::text[])`, [hosts]);
  }

  private async owners(where: string, params: unknown[]): Promise<HostedInstance[]> {
    const { rows } = await queryResult<{
      id: string;
      state: WorkflowState;
      host: string;
      epoch: string;
    }>(
      this.dataSource,
      `SELECT id, state, host, epoch FROM workflow_instance
       WHERE state NOT IN ${FINAL_STATES_SQL} AND ${where} ORDER BY id`,
      params,
    );
    return rows.map((r) => ({ id: Number(r.id), state: r.state, host: r.host, epoch: Number(r.epoch) }));
  }

  /**
   * Gives an unfinished instance up (host NULL, epoch + 1) and queues its
   * RECOVER_TOLERANCE_FAULT_PROCESS command, in one statement, conditional on the fence: the
   * same transaction failover runs for a dead master, so whichever commits first wins.
   * Returns the new command id, or undefined when the fence no longer held.
   */
  async handBack(
    fence: InstanceFence,
    type: CommandType = 'RECOVER_TOLERANCE_FAULT_PROCESS',
  ): Promise<number | undefined> {
    const { rows } = await queryResult<{ id: string }>(
      this.dataSource,
      `WITH u AS (
         UPDATE workflow_instance SET host = NULL, epoch = epoch + 1, updated_at = now()
         WHERE id = $1 AND host = $2 AND epoch = $3 AND state NOT IN ${FINAL_STATES_SQL}
         RETURNING id, workflow_code, workflow_version, params)
       ${insertCommandsSql({ from: 'u', type: '$4' })}`,
      [...fenceParams(fence), type],
    );
    return rows[0] ? Number(rows[0].id) : undefined;
  }
}
