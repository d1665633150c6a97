import type { DataSource } from 'typeorm';
import { type CommandRepository, firstRow, queryRows, type InstanceFence } from '../../src';

/**
 * Runs as the API writes them and adoptions as a master makes them, for the repository tests
 * that need an instance a master owns (fencing, writer epochs, budgets, task groups).
 */

/**
 * A workflow `code` with an empty definition, one instance of it (host NULL) and its
 * START_PROCESS command, as POST /workflows/{code}/runs writes them. Returns the instance id.
 */
export async function triggerRun(source: DataSource, code: string): Promise<number> {
  await source.query(`INSERT INTO workflow_definition (code, name, version) VALUES ($1, $1, 1)`, [code]);
  await source.query(
    `INSERT INTO workflow_definition_version (code, version, name, tasks, edges) VALUES ($1, 1, $1, '[]', '[]')`,
    [code],
  );
  const rows = await queryRows<{ id: string }>(
    source,
    `WITH i AS (
       INSERT INTO workflow_instance (workflow_code, workflow_version, state, command_type)
       VALUES ($1, 1, 'SUBMITTED_SUCCESS', 'START_PROCESS') RETURNING id)
     INSERT INTO command (type, workflow_code, workflow_version, workflow_instance_id)
     SELECT 'START_PROCESS', $1, 1, id FROM i RETURNING workflow_instance_id AS id`,
    [code],
  );
  return Number(firstRow(rows, 'triggered instance').id);
}

/**
 * The master at `host` consumes commands (one slot of one) until it took the command of
 * `instanceId`; returns the fence of that ownership. Throws when that command was not taken.
 */
export async function adoptRun(
  consumer: CommandRepository,
  instanceId: number,
  host: string,
): Promise<InstanceFence> {
  const taken = await consumer.consume({ slot: 0, count: 1, host, batchSize: 100 });
  const mine = taken.find((c) => c.workflowInstanceId === instanceId && c.taken);
  if (!mine) throw new Error(`instance ${instanceId} was not taken`);
  return { instanceId, host, epoch: mine.epoch };
}
