/**
 * The instance views and controls of the workflow language (DESIGN.md sections 4 and 9) through
 * the REST API on a real Postgres: task outputs, the sub-workflow links both ways (a task's child,
 * a child's parent and parent task), the instance's message, and stop of a paused instance
 * reaching its sub-workflow tree. Rows are written as a master leaves them, so this tests the API
 * alone, whatever the engine does.
 */
import type { INestApplication } from '@nestjs/common';
import { runMigrations } from '@porpoise/dao';
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { nth } from '@porpoise/test-harness/defined';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { startApiUnderTest } from './support/api-under-test';

const MASTER = '127.0.0.1:5678';
const OTHER_MASTER = '127.0.0.1:5679';

let pg: TestServer;
let db: Client;
let listener: Client;
let app: INestApplication;
let base: string;
const notified: string[] = [];

interface Reply {
  status: number;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- answers are checked field by field
}

async function send(method: string, path: string): Promise<Reply> {
  const res = await fetch(`${base}${path}`, { method, headers: authHeaders() });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
}

/** Sends a request and counts the SQL statements the API ran for it (one per route: no N+1). */
async function sendCounted(path: string): Promise<Reply & { statements: number }> {
  const logger = app.get(DataSource).logger;
  const original = logger.logQuery.bind(logger);
  let statements = 0;
  logger.logQuery = (q, p, r) => {
    statements++;
    original(q, p, r);
  };
  try {
    return { ...(await send('GET', path)), statements };
  } finally {
    logger.logQuery = original;
  }
}

const control = (id: number, action: string): Promise<Reply> =>
  send('POST', `/api/v1/workflow-instances/${id}/${action}`);

beforeAll(async () => {
  pg = await startPostgres();
  await runMigrations(pg.endpoint);
  db = new Client({ connectionString: pg.endpoint });
  await db.connect();
  listener = new Client({ connectionString: pg.endpoint });
  await listener.connect();
  listener.on('notification', (n) => {
    if (n.payload !== undefined) notified.push(n.payload);
  });
  await listener.query('LISTEN porpoise_instance_control');
  for (const code of ['etl', 'load_part']) {
    await db.query(`INSERT INTO workflow_definition (code, name, version) VALUES ($1, $1, 1)`, [code]);
    await db.query(
      `INSERT INTO workflow_definition_version (code, version, name, tasks, edges) VALUES ($1, 1, $1, '[]', '[]')`,
      [code],
    );
  }
  ({ app, base } = await startApiUnderTest(pg.endpoint, 'instances-language-test-secret-0123'));
});

afterAll(async () => {
  await app?.close();
  await listener?.end();
  await db?.end();
  await pg?.dispose();
});

async function instance(
  code: string,
  state: string,
  host: string | null,
  parent?: { instanceId: number; taskId: number },
): Promise<number> {
  const res = await db.query<{ id: string }>(
    `INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type,
       start_time, parent_instance_id, parent_task_instance_id)
     VALUES ($1, 1, $2, $3, 1, 'START_PROCESS', now(), $4, $5) RETURNING id`,
    [code, state, host, parent?.instanceId ?? null, parent?.taskId ?? null],
  );
  return Number(nth(res.rows, 0).id);
}

async function task(
  instanceId: number,
  name: string,
  state: string,
  outputs: Record<string, string> = {},
): Promise<number> {
  const res = await db.query<{ id: string }>(
    `INSERT INTO task_instance (workflow_instance_id, name, state, host, outputs)
     VALUES ($1, $2, $3, '127.0.0.1:7001', $4::jsonb) RETURNING id`,
    [instanceId, name, state, JSON.stringify(outputs)],
  );
  return Number(nth(res.rows, 0).id);
}

const stateOf = async (id: number): Promise<string> =>
  nth((await db.query<{ state: string }>('SELECT state FROM workflow_instance WHERE id = $1', [id])).rows, 0)
    .state;

describe('instance views: outputs and sub-workflow links', () => {
  it('GET /workflow-instances/{id}: tasks carry outputs and their child; the child names its parent', async () => {
    const parent = await instance('etl', 'RUNNING_EXECUTION', MASTER);
    const extract = await task(parent, 'extract', 'SUCCESS', { rows: '42', status: '200' });
    const sub = await task(parent, 'load', 'RUNNING_EXECUTION');
    const skipped = await task(parent, 'fallback', 'SKIPPED');
    const child = await instance('load_part', 'RUNNING_EXECUTION', OTHER_MASTER, {
      instanceId: parent,
      taskId: sub,
    });
    await db.query("UPDATE workflow_instance SET message = 'why it ended' WHERE id = $1", [child]);

    const got = await sendCounted(`/api/v1/workflow-instances/${parent}`);
    expect(got.status).toBe(200);
    expect(got.statements).toBe(1);
    expect(got.json).toMatchObject({
      id: parent,
      workflowCode: 'etl',
      state: 'RUNNING_EXECUTION',
      host: MASTER,
      commandType: 'START_PROCESS',
      startTime: expect.any(String),
      endTime: null,
      parentInstanceId: null,
      parentTaskInstanceId: null,
      message: null,
    });
    expect(got.json.tasks).toEqual([
      {
        id: extract,
        name: 'extract',
        state: 'SUCCESS',
        host: '127.0.0.1:7001',
        attempt: 1,
        startTime: null,
        endTime: null,
        exitCode: null,
        message: null,
        outputs: { rows: '42', status: '200' },
        subWorkflowInstanceId: null,
      },
      expect.objectContaining({ id: sub, name: 'load', outputs: {}, subWorkflowInstanceId: child }),
      expect.objectContaining({ id: skipped, state: 'SKIPPED', subWorkflowInstanceId: null }),
    ]);

    const up = await send('GET', `/api/v1/workflow-instances/${child}`);
    expect(up.json).toMatchObject({
      id: child,
      workflowCode: 'load_part',
      parentInstanceId: parent,
      parentTaskInstanceId: sub,
      message: 'why it ended',
      tasks: [],
    });
  });

  it('GET /workflow-instances lists the new fields, with total and paging on one snapshot', async () => {
    const parent = await instance('etl', 'SUCCESS', MASTER);
    const sub = await task(parent, 'load', 'SUCCESS');
    const child = await instance('load_part', 'SUCCESS', MASTER, { instanceId: parent, taskId: sub });
    const all = await sendCounted('/api/v1/workflow-instances?workflowCode=load_part&state=SUCCESS');
    expect(all.status).toBe(200);
    expect(all.statements).toBe(1);
    expect(all.json.total).toBe(1);
    expect(all.json.items).toEqual([
      expect.objectContaining({
        id: child,
        parentInstanceId: parent,
        parentTaskInstanceId: sub,
        message: null,
      }),
    ]);
    expect(all.json.items[0]).not.toHaveProperty('tasks');

    const everything = await send('GET', '/api/v1/workflow-instances?limit=1000');
    const total = everything.json.total as number;
    expect(everything.json.items).toHaveLength(total);
    const ids = (everything.json.items as Array<{ id: number }>).map((i) => i.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    const page = await send('GET', '/api/v1/workflow-instances?limit=1&offset=1');
    expect(page.json).toEqual({ items: [expect.objectContaining({ id: ids[1] })], total });
    // Past the last page: no items, the total still counted.
    expect((await send('GET', `/api/v1/workflow-instances?offset=${total}`)).json).toEqual({
      items: [],
      total,
    });
    expect((await send('GET', '/api/v1/workflow-instances?workflowCode=nothing_here')).json).toEqual({
      items: [],
      total: 0,
    });
  });

  it('the OpenAPI document has the new fields', async () => {
    const doc = (await send('GET', '/api/docs-json')).json;
    const schemas = doc.components.schemas;
    expect(Object.keys(schemas.TaskInstanceDto.properties)).toEqual(
      expect.arrayContaining(['outputs', 'subWorkflowInstanceId']),
    );
    expect(Object.keys(schemas.WorkflowInstanceDto.properties)).toEqual(
      expect.arrayContaining(['parentInstanceId', 'parentTaskInstanceId', 'message']),
    );
    expect(schemas.TaskInstanceDto.properties.state.enum).toContain('SKIPPED');
  });
});

describe('stop and pause of a sub-workflow tree', () => {
  it('stop of a PAUSE instance: STOP at once, its paused tasks KILL, its paused child STOP, its running child asked', async () => {
    const parent = await instance('etl', 'PAUSE', MASTER);
    await task(parent, 'extract', 'SUCCESS');
    const waiting = await task(parent, 'transform', 'PAUSE');
    const sub = await task(parent, 'load', 'PAUSE');
    const pausedChild = await instance('load_part', 'PAUSE', MASTER, { instanceId: parent, taskId: sub });
    const childTask = await task(pausedChild, 'part', 'PAUSE');
    const sub2 = await task(parent, 'load_more', 'PAUSE');
    const runningChild = await instance('load_part', 'READY_PAUSE', OTHER_MASTER, {
      instanceId: parent,
      taskId: sub2,
    });

    const stopped = await control(parent, 'stop');
    expect(stopped.status).toBe(202);
    expect(stopped.json).toEqual({ workflowInstanceId: parent, state: 'STOP' });

    const view = (await send('GET', `/api/v1/workflow-instances/${parent}`)).json;
    expect(view).toMatchObject({ state: 'STOP', endTime: expect.any(String) });
    const byId = new Map(
      (view.tasks as Array<{ id: number; state: string; message: string | null }>).map((t) => [t.id, t]),
    );
    expect(byId.get(waiting)).toMatchObject({ state: 'KILL', message: 'stopped while paused' });
    expect(byId.get(sub)).toMatchObject({ state: 'KILL', subWorkflowInstanceId: pausedChild });
    const childView = (await send('GET', `/api/v1/workflow-instances/${pausedChild}`)).json;
    expect(childView).toMatchObject({
      state: 'STOP',
      parentInstanceId: parent,
      tasks: [{ id: childTask, state: 'KILL' }],
    });
    // The child still pausing is asked to stop instead, and its master is told.
    expect(await stateOf(runningChild)).toBe('READY_STOP');
    await waitFor('the running child notified', () => notified.includes(String(runningChild)), 10_000);

    const again = await control(parent, 'stop');
    expect(again.status).toBe(409);
    expect(again.json.message).toContain(
      `cannot stop workflow instance ${parent}: its state is STOP (stop applies to RUNNING_EXECUTION, SUBMITTED_SUCCESS, SERIAL_WAIT, PAUSE)`,
    );
  });

  it('pause of a PAUSE instance is still a 409', async () => {
    const paused = await instance('etl', 'PAUSE', MASTER);
    const res = await control(paused, 'pause');
    expect(res.status).toBe(409);
    expect(res.json.message).toContain(
      'its state is PAUSE (pause applies to RUNNING_EXECUTION, SUBMITTED_SUCCESS, SERIAL_WAIT)',
    );
  });

  it('stop and pause of a running parent reach its running child with a NOTIFY of the child id', async () => {
    for (const [action, ready] of [
      ['pause', 'READY_PAUSE'],
      ['stop', 'READY_STOP'],
    ] as const) {
      const parent = await instance('etl', 'RUNNING_EXECUTION', MASTER);
      const sub = await task(parent, 'load', 'RUNNING_EXECUTION');
      const child = await instance('load_part', 'RUNNING_EXECUTION', OTHER_MASTER, {
        instanceId: parent,
        taskId: sub,
      });
      const res = await control(parent, action);
      expect(res.json).toEqual({ workflowInstanceId: parent, state: ready });
      expect(await stateOf(child)).toBe(ready);
      await waitFor(
        `${action} notifications`,
        () => notified.includes(String(parent)) && notified.includes(String(child)),
        10_000,
      );
    }
  });
});
