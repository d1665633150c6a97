import { nth } from '@porpoise/test-harness/defined';
/** Writing and reading rows the way the API server does (no master code imported). */
import type { EdgeDefinition, TaskDefinition, WorkflowSettings } from '@porpoise/common';
import { waitFor } from '@porpoise/test-harness';
import { Pool } from 'pg';

export interface InstanceRow {
  id: number;
  state: string;
  host: string | null;
  epoch: number;
  command_type: string;
  start_time: Date | null;
  end_time: Date | null;
  message: string | null;
}

export interface TaskRowView {
  id: number;
  name: string;
  state: string;
  host: string | null;
  attempt: number;
  exit_code: number | null;
  message: string | null;
}

/** The database as the API server writes and reads it (DESIGN.md, the brief's Trigger rule). */
export class Db {
  readonly pool: Pool;
  private codes = 0;

  constructor(url: string) {
    this.pool = new Pool({ connectionString: url, max: 4 });
    // An idle connection the server drops must not crash the test process; the next query
    // opens a new one.
    this.pool.on('error', () => undefined);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async createWorkflow(
    tasks: TaskDefinition[],
    edges: EdgeDefinition[] = [],
    settings: Partial<WorkflowSettings> = {},
  ): Promise<string> {
    const code = `wf-${process.pid}-${++this.codes}`;
    await this.pool.query(
      `WITH d AS (INSERT INTO workflow_definition (code, name, version) VALUES ($1, $1, 1) RETURNING code)
       INSERT INTO workflow_definition_version (code, version, name, tasks, edges, settings)
       SELECT code, 1, code, $2, $3, $4 FROM d`,
      [code, JSON.stringify(tasks), JSON.stringify(edges), JSON.stringify(settings)],
    );
    return code;
  }

  /** One transaction: the instance (SUBMITTED_SUCCESS, no host, epoch 0) and its START_PROCESS command. */
  async trigger(code: string, params: Record<string, string> = {}): Promise<number> {
    const { rows } = await this.pool.query<{ id: string }>(
      `WITH i AS (
         INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type, params)
         VALUES ($1, 1, 'SUBMITTED_SUCCESS', NULL, 0, 'START_PROCESS', $2) RETURNING id)
       INSERT INTO command (type, workflow_code, workflow_version, workflow_instance_id, params)
       SELECT 'START_PROCESS', $1, 1, id, $2 FROM i RETURNING workflow_instance_id AS id`,
      [code, JSON.stringify(params)],
    );
    return Number(nth(rows, 0).id);
  }

  async instance(id: number): Promise<InstanceRow> {
    const { rows } = await this.pool.query(
      'SELECT id, state, host, epoch, command_type, start_time, end_time, message FROM workflow_instance WHERE id = $1',
      [id],
    );
    return { ...rows[0], id: Number(nth(rows, 0).id), epoch: Number(nth(rows, 0).epoch) } as InstanceRow;
  }

  async tasks(instanceId: number): Promise<TaskRowView[]> {
    const { rows } = await this.pool.query(
      `SELECT id, name, state, host, attempt, exit_code, message FROM task_instance
       WHERE workflow_instance_id = $1 ORDER BY name, attempt`,
      [instanceId],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id) }) as TaskRowView);
  }

  /** Waits until the instance is in one of states (no timing asserted: a generous bound). */
  async waitForState(id: number, states: string[], timeoutMs = 30_000): Promise<InstanceRow> {
    return waitFor(
      `instance ${id} in ${states.join('|')}`,
      async () => {
        const row = await this.instance(id);
        return states.includes(row.state) ? row : undefined;
      },
      timeoutMs,
      50,
    );
  }

  async waitForTask(instanceId: number, name: string, state: string, attempt = 1): Promise<TaskRowView> {
    return waitFor(
      `task ${name} attempt ${attempt} of instance ${instanceId} in ${state}`,
      async () =>
        (await this.tasks(instanceId)).find(
          (t) => t.name === name && t.attempt === attempt && t.state === state,
        ),
      30_000,
      25,
    );
  }
}
