/**
 * Task groups (DESIGN.md section 10) through the REST API on a real Postgres: create, list with
 * the slots held and the tasks waiting, get, change the capacity, delete (409 while in use); bad
 * input is a 400 naming the field; a workflow's taskGroup must name a group and a worker task.
 */
import type { INestApplication } from '@nestjs/common';
import { runMigrations } from '@porpoise/dao';
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { nth } from '@porpoise/test-harness/defined';
import { Client } from 'pg';
import { startApiUnderTest } from './support/api-under-test';

let pg: TestServer;
let db: Client;
let app: INestApplication;
let base: string;

interface Reply {
  status: number;
  json: unknown;
}

async function send(method: string, path: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: authHeaders(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
}

const message = (r: Reply): string => (r.json as { message?: string } | undefined)?.message ?? '';

beforeAll(async () => {
  pg = await startPostgres();
  await runMigrations(pg.endpoint);
  db = new Client({ connectionString: pg.endpoint });
  await db.connect();
  ({ app, base } = await startApiUnderTest(pg.endpoint, 'task-group-test-secret-0123456789'));
});

afterAll(async () => {
  await app?.close();
  await db?.end();
  await pg?.dispose();
});

/** A task of an instance holding (slotNo) or waiting for (null) a slot of group, as a master writes it. */
async function queueRow(group: string, slotNo: number | null): Promise<number> {
  const code = `wf_tg_${Math.random().toString(36).slice(2, 10)}`;
  await db.query(`INSERT INTO workflow_definition (code, name, version) VALUES ($1, $1, 1)`, [code]);
  await db.query(
    `INSERT INTO workflow_definition_version (code, version, name, tasks, edges) VALUES ($1, 1, $1, '[]', '[]')`,
    [code],
  );
  const i = await db.query<{ id: string }>(
    `INSERT INTO workflow_instance (workflow_code, workflow_version, state, command_type)
     VALUES ($1, 1, 'RUNNING_EXECUTION', 'START_PROCESS') RETURNING id`,
    [code],
  );
  const instanceId = nth(i.rows, 0).id;
  const t = await db.query<{ id: string }>(
    `INSERT INTO task_instance (workflow_instance_id, name, state, task_group)
     VALUES ($1, 'a', 'SUBMITTED_SUCCESS', $2) RETURNING id`,
    [instanceId, group],
  );
  const taskId = Number(nth(t.rows, 0).id);
  await db.query(
    `INSERT INTO task_group_queue (task_group, task_instance_id, workflow_instance_id, slot_no) VALUES ($1, $2, $3, $4)`,
    [group, taskId, instanceId, slotNo],
  );
  return taskId;
}

describe('task groups', () => {
  it('creates, lists with held and waiting, gets, changes the capacity and deletes a group', async () => {
    const created = await send('POST', '/task-groups', { name: 'etl', capacity: 2 });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: 'etl', capacity: 2, held: 0, waiting: 0 });
    expect((await send('POST', '/task-groups', { name: 'etl', capacity: 3 })).status).toBe(409);

    const holder = await queueRow('etl', 0);
    await queueRow('etl', null);
    const listed = await send('GET', '/task-groups');
    expect(listed.status).toBe(200);
    expect(listed.json).toMatchObject({ items: [{ name: 'etl', capacity: 2, held: 1, waiting: 1 }] });
    expect((await send('GET', '/task-groups/etl')).json).toMatchObject({ held: 1, waiting: 1 });
    expect((await send('GET', '/task-groups/nope')).status).toBe(404);

    const patched = await send('PATCH', '/task-groups/etl', { capacity: 5 });
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({ name: 'etl', capacity: 5, held: 1, waiting: 1 });
    expect((await send('PATCH', '/task-groups/nope', { capacity: 5 })).status).toBe(404);

    // In use: 409 until its tasks ended (the release trigger drops their rows).
    const inUse = await send('DELETE', '/task-groups/etl');
    expect(inUse.status).toBe(409);
    expect(message(inUse)).toContain('in use');
    await db.query(`UPDATE task_instance SET state = 'KILL' WHERE task_group = 'etl'`);
    expect(holder).toBeGreaterThan(0);
    expect((await send('GET', '/task-groups/etl')).json).toMatchObject({ held: 0, waiting: 0 });
    expect((await send('DELETE', '/task-groups/etl')).status).toBe(204);
    expect((await send('DELETE', '/task-groups/etl')).status).toBe(404);
  });

  it.each([
    ['no object', [1], /request body must be a JSON object/],
    ['no name', { capacity: 1 }, /missing field "name"/],
    ['a bad name', { name: 'a b', capacity: 1 }, /"name" "a b" is invalid/],
    ['no capacity', { name: 'x' }, /missing field "capacity"/],
    ['a fractional capacity', { name: 'x', capacity: 1.5 }, /"capacity" must be an integer/],
    ['a negative capacity', { name: 'x', capacity: -1 }, /"capacity" must be between 0 and 100000, got -1/],
    ['an unknown field', { name: 'x', capacity: 1, size: 2 }, /unknown field "size"/],
  ])('POST with %s is a 400 naming the field', async (_what, body, expected) => {
    const reply = await send('POST', '/task-groups', body);
    expect(reply.status).toBe(400);
    expect(message(reply)).toMatch(expected);
  });

  it('PATCH accepts only a capacity (400 naming the field)', async () => {
    await send('POST', '/task-groups', { name: 'p', capacity: 1 });
    const renamed = await send('PATCH', '/task-groups/p', { name: 'q' });
    expect(renamed.status).toBe(400);
    expect(message(renamed)).toMatch(/unknown field "name"/);
    const bad = await send('PATCH', '/task-groups/p', { capacity: 'many' });
    expect(bad.status).toBe(400);
    expect(message(bad)).toMatch(/"capacity" must be an integer/);
  });

  it("a workflow's taskGroup must name an existing group, on a task a worker runs", async () => {
    await send('POST', '/task-groups', { name: 'load', capacity: 1 });
    const ok = await send('POST', '/workflows', {
      name: 'grouped',
      tasks: [{ name: 'a', type: 'SHELL', command: 'true', taskGroup: 'load' }],
    });
    expect(ok.status).toBe(201);
    const unknown = await send('POST', '/workflows', {
      name: 'grouped',
      tasks: [{ name: 'a', type: 'SHELL', command: 'true', taskGroup: 'nope' }],
    });
    expect(unknown.status).toBe(400);
    expect(message(unknown)).toBe(
      'task "a": "taskGroup" names unknown task group "nope" (create it with POST /task-groups)',
    );
    const onMaster = await send('POST', '/workflows', {
      name: 'grouped',
      tasks: [
        { name: 'a', type: 'SHELL', command: 'true' },
        { name: 'c', type: 'CONDITIONS', conditions: { success: ['a'] }, taskGroup: 'load' },
      ],
      edges: [{ from: 'c', to: 'a' }],
    });
    expect(onMaster.status).toBe(400);
    expect(message(onMaster)).toMatch(/"taskGroup" is only for tasks run by workers, not CONDITIONS/);
  });

  it('the OpenAPI document has the task group routes and the taskGroup field', async () => {
    const res = await fetch(`${base}/api/docs-json`);
    const doc = (await res.json()) as {
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    };
    expect(Object.keys(doc.paths['/api/v1/task-groups'] ?? {})).toEqual(
      expect.arrayContaining(['get', 'post']),
    );
    expect(Object.keys(doc.paths['/api/v1/task-groups/{name}'] ?? {})).toEqual(
      expect.arrayContaining(['get', 'patch', 'delete']),
    );
    expect(Object.keys(doc.components.schemas.TaskGroupDto?.properties ?? {})).toEqual(
      expect.arrayContaining(['name', 'capacity', 'held', 'waiting']),
    );
    expect(Object.keys(doc.components.schemas.TaskDiagnosisDto?.properties ?? {})).toContain('taskGroup');
  });
});
