/**
 * The REST API of DESIGN.md section 4, booted in-process (createApiServerApp, as main.ts does)
 * against a real Postgres and the JDBC registry on the same database, spoken to over HTTP.
 * Every bad input answers 400 with a message naming the problem and stores nothing (row
 * counts before and after). One Postgres and one API server for the whole file.
 */
import type { INestApplication } from '@nestjs/common';
import { loadConfig, type ApiServerConfig } from '@porpoise/common';
import { runMigrations } from '@porpoise/dao';
import { createRegistry, type Registry } from '@porpoise/registry';
import {
  GrpcServer,
  RpcNotFound,
  type LogChunk,
  type ReadLogRequest,
  type WorkerTaskHandlers,
} from '@porpoise/rpc';
import { freePort, startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { authHeaders, TEST_ADMIN_TOKEN } from '@porpoise/test-harness/api-token';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { NestFactory } from '@nestjs/core';
import { createApiServerApp } from '../src/api-app';
import { ApiServerModule } from '../src/api-server.module';

const SECRET = 'api-server-test-secret-0123456789';
const TABLES = [
  'workflow_definition',
  'workflow_definition_version',
  'workflow_instance',
  'command',
  'idempotency_key',
  'schedule',
  'task_instance',
  'datasource',
] as const;

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

let pg: TestServer;
let db: Client;
let app: INestApplication;
let base: string;
let config: ApiServerConfig;

async function send(
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; contentType?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = authHeaders(options.headers);
  let body: string | undefined;
  if (options.raw !== undefined) {
    body = options.raw;
    headers['content-type'] = options.contentType ?? 'application/json';
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

async function counts(): Promise<Record<string, number>> {
  const sql = TABLES.map((t) => `(SELECT count(*) FROM ${t})::int AS ${t}`).join(', ');
  return (await db.query(`SELECT ${sql}`)).rows[0] as Record<string, number>;
}

/** Expects a 400 naming the problem and no row written anywhere. */
async function expectRejected(
  method: string,
  path: string,
  options: Parameters<typeof send>[2],
  message: RegExp,
): Promise<void> {
  const before = await counts();
  const res = await send(method, path, options);
  expect({ status: res.status, body: res.json }).toEqual({
    status: 400,
    body: { statusCode: 400, error: 'Bad Request', message: expect.stringMatching(message) },
  });
  expect(await counts()).toEqual(before);
}

const task = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'SHELL',
  command: `echo ${name}`,
  ...extra,
});

async function createWorkflow(body?: Record<string, unknown>): Promise<string> {
  const res = await send('POST', '/api/v1/workflows', {
    body: body ?? { name: 'wf', tasks: [task('a'), task('b')], edges: [{ from: 'a', to: 'b' }] },
  });
  expect(res.status).toBe(201);
  return res.json.code as string;
}

async function trigger(code: string, headers: Record<string, string> = {}, body?: unknown): Promise<Reply> {
  return send('POST', `/api/v1/workflows/${code}/runs`, { body, headers });
}

beforeAll(async () => {
  pg = await startPostgres();
  await runMigrations(pg.endpoint);
  db = new Client({ connectionString: pg.endpoint });
  await db.connect();
  config = loadConfig(
    {
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      DATABASE_URL: pg.endpoint,
      REGISTRY_TYPE: 'jdbc',
      CLUSTER_SECRET: SECRET,
      REGISTRY_SESSION_TIMEOUT_MS: '3000',
      HEARTBEAT_INTERVAL_MS: '500',
    },
    'api-server',
  );
  app = await createApiServerApp(config, { logger: ['error'] });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  base = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await app?.close();
  await db?.end();
  await pg?.dispose();
});

describe('workflows', () => {
  const body = {
    name: 'etl',
    description: 'extract then load',
    tasks: [
      task('extract', { retries: 2, retryIntervalMs: 10, timeoutMs: 60000, workerGroup: 'g1' }),
      task('load'),
    ],
    edges: [{ from: 'extract', to: 'load' }],
  };

  it('creates version 1 with defaults filled in, reads it back, and PUT stores version 2', async () => {
    const created = await send('POST', '/api/v1/workflows', { body });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({
      code: expect.stringMatching(/^wf_[a-z2-7]{16}$/),
      version: 1,
      name: 'etl',
      description: 'extract then load',
      params: {},
      failureStrategy: 'END',
      timeoutMs: 0,
      concurrency: { policy: 'PARALLEL' },
      tasks: [
        {
          name: 'extract',
          type: 'SHELL',
          command: 'echo extract',
          retries: 2,
          retryIntervalMs: 10,
          timeoutMs: 60000,
          workerGroup: 'g1',
        },
        {
          name: 'load',
          type: 'SHELL',
          command: 'echo load',
          retries: 0,
          retryIntervalMs: 1000,
          timeoutMs: 0,
          workerGroup: 'default',
        },
      ],
      edges: [{ from: 'extract', to: 'load' }],
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const code = created.json.code as string;
    // Fields in the documented order (jsonb alone would sort them by length).
    expect(Object.keys(created.json.tasks[0])).toEqual([
      'name',
      'type',
      'command',
      'retries',
      'retryIntervalMs',
      'timeoutMs',
      'workerGroup',
    ]);
    expect(Object.keys(created.json.edges[0])).toEqual(['from', 'to']);
    expect(await send('GET', `/api/v1/workflows/${code}`)).toMatchObject({ status: 200, json: created.json });

    const put = await send('PUT', `/api/v1/workflows/${code}`, {
      body: { name: 'etl2', tasks: [task('only')] },
    });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({
      code,
      version: 2,
      name: 'etl2',
      description: '',
      params: {},
      failureStrategy: 'END',
      timeoutMs: 0,
      edges: [],
    });
    expect(put.json.tasks.map((t: { name: string }) => t.name)).toEqual(['only']);
    expect((await send('GET', `/api/v1/workflows/${code}`)).json).toMatchObject({ version: 2, name: 'etl2' });
    expect((await send('GET', `/api/v1/workflows/${code}?version=1`)).json).toMatchObject({
      version: 1,
      name: 'etl',
    });
    const rows = await db.query(
      'SELECT version FROM workflow_definition_version WHERE code = $1 ORDER BY 1',
      [code],
    );
    expect(rows.rows.map((r: { version: number }) => r.version)).toEqual([1, 2]);

    const list = await send('GET', '/api/v1/workflows?limit=1000');
    expect(list.status).toBe(200);
    expect(list.json.total).toBeGreaterThanOrEqual(1);
    expect(list.json.items.find((w: { code: string }) => w.code === code)).toMatchObject({
      version: 2,
      name: 'etl2',
    });
  });

  it('lists newest first and pages', async () => {
    const first = await createWorkflow();
    const second = await createWorkflow();
    const page = await send('GET', '/api/v1/workflows?limit=2&offset=0');
    expect(page.json.items.map((w: { code: string }) => w.code)).toEqual([second, first]);
    const next = await send('GET', '/api/v1/workflows?limit=1&offset=1');
    expect(next.json.items.map((w: { code: string }) => w.code)).toEqual([first]);
  });

  it('lists each workflow with its newest run (null before the first)', async () => {
    const code = await createWorkflow();
    const lastRunOf = async () =>
      (
        (await send('GET', '/api/v1/workflows?limit=1000')).json.items as Array<{
          code: string;
          lastRun: unknown;
        }>
      ).find((w) => w.code === code)?.lastRun;
    expect(await lastRunOf()).toBeNull();
    const older = (await trigger(code)).json.workflowInstanceId as number;
    const newer = (await trigger(code)).json.workflowInstanceId as number;
    expect(newer).toBeGreaterThan(older);
    const instance = (await send('GET', `/api/v1/workflow-instances/${newer}`)).json;
    expect(await lastRunOf()).toEqual({
      id: newer,
      state: instance.state,
      startTime: instance.startTime ?? null,
      endTime: instance.endTime ?? null,
    });
  });

  it('404 names an unknown workflow on GET, PUT and runs', async () => {
    for (const [method, path, b] of [
      ['GET', '/api/v1/workflows/wf_nope', undefined],
      ['PUT', '/api/v1/workflows/wf_nope', { name: 'x', tasks: [task('a')] }],
      ['POST', '/api/v1/workflows/wf_nope/runs', undefined],
    ] as const) {
      const res = await send(method, path, { body: b });
      expect({ method, status: res.status, message: res.json.message }).toEqual({
        method,
        status: 404,
        message: 'workflow "wf_nope" not found',
      });
    }
    const code = await createWorkflow();
    expect((await send('GET', `/api/v1/workflows/${code}?version=7`)).json.message).toBe(
      `workflow "${code}" version 7 not found`,
    );
  });

  describe('bad definitions: 400 naming the problem, nothing stored', () => {
    const cases: [string, unknown, RegExp][] = [
      [
        'a cycle',
        {
          name: 'c',
          tasks: [task('a'), task('b'), task('c')],
          edges: [
            { from: 'a', to: 'b' },
            { from: 'b', to: 'c' },
            { from: 'c', to: 'a' },
          ],
        },
        /^cycle: a -> b -> c -> a$/,
      ],
      ['a duplicate task name', { name: 'd', tasks: [task('a'), task('a')] }, /duplicate task name "a"/],
      [
        'an edge to an unknown task',
        { name: 'e', tasks: [task('a')], edges: [{ from: 'a', to: 'zzz' }] },
        /edge 0 \("a" -> "zzz"\): unknown task "zzz"/,
      ],
      [
        'an edge from an unknown task',
        { name: 'e', tasks: [task('a')], edges: [{ from: 'yyy', to: 'a' }] },
        /unknown task "yyy"/,
      ],
      [
        'an unknown type',
        { name: 't', tasks: [task('a', { type: 'PYTHON' })] },
        /unknown task type "PYTHON" for task "a"/,
      ],
      ['a missing name', { tasks: [task('a')] }, /missing field "name"/],
      ['missing tasks', { name: 'x' }, /missing field "tasks"/],
      [
        'a task without command',
        { name: 'x', tasks: [{ name: 'a', type: 'SHELL' }] },
        /task "a": missing field "command"/,
      ],
      [
        'a task without type',
        { name: 'x', tasks: [{ name: 'a', command: 'true' }] },
        /task "a": missing field "type"/,
      ],
      [
        'a task without name',
        { name: 'x', tasks: [{ type: 'SHELL', command: 'true' }] },
        /task 0: missing field "name"/,
      ],
      ['an empty task list', { name: 'x', tasks: [] }, /"tasks" must not be empty/],
      ['tasks not an array', { name: 'x', tasks: {} }, /"tasks" must be an array/],
      ['an empty name', { name: '  ', tasks: [task('a')] }, /"name" must not be empty/],
      ['a name too long', { name: 'n'.repeat(201), tasks: [task('a')] }, /"name" is longer than 200/],
      ['a task name too long', { name: 'x', tasks: [task('t'.repeat(101))] }, /"name" is longer than 100/],
      ['a numeric name', { name: 5, tasks: [task('a')] }, /"name" must be a string, got a number/],
      ['an empty command', { name: 'x', tasks: [task('a', { command: '' })] }, /"command" must not be empty/],
      ['an unknown top-level field', { name: 'x', tasks: [task('a')], owner: 'me' }, /unknown field "owner"/],
      [
        'an unknown task field',
        { name: 'x', tasks: [task('a', { retry: 3 })] },
        /task "a": unknown field "retry"/,
      ],
      [
        'an unknown edge field',
        { name: 'x', tasks: [task('a'), task('b')], edges: [{ from: 'a', to: 'b', weight: 1 }] },
        /edge 0: unknown field "weight"/,
      ],
      [
        'retries out of range',
        { name: 'x', tasks: [task('a', { retries: 101 })] },
        /"retries" must be between 0 and 100/,
      ],
      [
        'fractional retries',
        { name: 'x', tasks: [task('a', { retries: 1.5 })] },
        /"retries" must be an integer/,
      ],
      [
        'a negative timeout',
        { name: 'x', tasks: [task('a', { timeoutMs: -1 })] },
        /"timeoutMs" must be between 0/,
      ],
      [
        'a string retry interval',
        { name: 'x', tasks: [task('a', { retryIntervalMs: '10' })] },
        /"retryIntervalMs" must be an integer/,
      ],
      [
        'a bad worker group',
        { name: 'x', tasks: [task('a', { workerGroup: 'no spaces' })] },
        /"workerGroup" "no spaces" is invalid/,
      ],
      [
        'a self edge',
        { name: 'x', tasks: [task('a')], edges: [{ from: 'a', to: 'a' }] },
        /a task cannot depend on itself/,
      ],
      [
        'a duplicate edge',
        {
          name: 'x',
          tasks: [task('a'), task('b')],
          edges: [
            { from: 'a', to: 'b' },
            { from: 'a', to: 'b' },
          ],
        },
        /edge 1 \("a" -> "b"\): duplicate edge/,
      ],
      [
        'an edge that is not an object',
        { name: 'x', tasks: [task('a')], edges: ['a->b'] },
        /edge 0 must be an object/,
      ],
      ['a body that is an array', [task('a')], /request body must be a JSON object/],
      // The workflow language (DESIGN.md section 9); every check is in parse-definition.spec.ts.
      [
        'an unknown failure strategy',
        { name: 'x', tasks: [task('a')], failureStrategy: 'STOP' },
        /^workflow: "failureStrategy" must be one of END, CONTINUE, got "STOP"$/,
      ],
      [
        'a param name that is not an identifier',
        { name: 'x', tasks: [task('a')], params: { 'a-b': '1' } },
        /^workflow: param name "a-b" in "params" is invalid/,
      ],
      [
        'a param that is not a string',
        { name: 'x', tasks: [task('a')], params: { n: 1 } },
        /^workflow: param "n" in "params" must be a string, got a number$/,
      ],
      [
        'a negative workflow timeout',
        { name: 'x', tasks: [task('a')], timeoutMs: -1 },
        /^workflow: "timeoutMs" must be between 0 and 2147483647, got -1$/,
      ],
      [
        'a DEPENDENT task without an interval',
        { name: 'x', tasks: [{ name: 'd', type: 'DEPENDENT', dependent: { workflowCode: 'wf_a' } }] },
        /^task "d": missing field "dependent.interval"$/,
      ],
      [
        'a DEPENDENT task waiting for an unknown workflow',
        {
          name: 'x',
          tasks: [{ name: 'd', type: 'DEPENDENT', dependent: { workflowCode: 'wf_nope', interval: 'day' } }],
        },
        /^task "d": "dependent.workflowCode" names unknown workflow "wf_nope"$/,
      ],
      [
        'a field of another type',
        { name: 'x', tasks: [task('a', { http: { method: 'GET', url: 'http://x/' } })] },
        /^task "a": unknown field "http" \(allowed for SHELL:/,
      ],
      [
        'an HTTP task with an ftp URL',
        { name: 'x', tasks: [{ name: 'h', type: 'HTTP', http: { method: 'GET', url: 'ftp://x/f' } }] },
        /^task "h": "http.url" must be an absolute http:\/\/ or https:\/\/ URL, got "ftp:\/\/x\/f"$/,
      ],
      [
        'an HTTP task with an unknown method',
        { name: 'x', tasks: [{ name: 'h', type: 'HTTP', http: { method: 'FETCH', url: 'http://x/' } }] },
        /^task "h": "http.method" must be one of GET, POST/,
      ],
      [
        'an HTTP status out of range',
        {
          name: 'x',
          tasks: [
            { name: 'h', type: 'HTTP', http: { method: 'GET', url: 'http://x/', expectStatus: [700] } },
          ],
        },
        /^task "h": "http.expectStatus\[0\]" must be an integer from 100 to 599, got 700$/,
      ],
      [
        'a SQL statement with a param inside quotes',
        {
          name: 'x',
          tasks: [{ name: 'q', type: 'SQL', sql: { datasource: 'dw', statement: "select '%${x}%'" } }],
        },
        /^task "q": "sql.statement" is invalid: \$\{x\} inside a string literal/,
      ],
      [
        'a SQL task naming an unknown data source',
        {
          name: 'x',
          tasks: [{ name: 'q', type: 'SQL', sql: { datasource: 'nope', statement: 'select 1' } }],
        },
        /^task "q": "sql.datasource" names unknown data source "nope" \(register it with POST \/datasources\)$/,
      ],
      [
        'a SUB_WORKFLOW task naming an unknown workflow',
        { name: 'x', tasks: [{ name: 's', type: 'SUB_WORKFLOW', subWorkflow: { workflowCode: 'wf_nope' } }] },
        /^task "s": "subWorkflow.workflowCode" names unknown workflow "wf_nope"$/,
      ],
      [
        'a CONDITIONS target that is not a direct downstream task',
        {
          name: 'x',
          tasks: [task('a'), { name: 'c', type: 'CONDITIONS', conditions: { success: ['a'] } }],
          edges: [{ from: 'a', to: 'c' }],
        },
        /^task "c": "conditions.success\[0\]" "a" is not a direct downstream task of "c"/,
      ],
      [
        'a SWITCH expression that does not parse',
        {
          name: 'x',
          tasks: [
            { name: 's', type: 'SWITCH', switch: { cases: [{ when: '${x} === 1', then: 'a' }] } },
            task('a'),
          ],
          edges: [{ from: 's', to: 'a' }],
        },
        /^task "s": "switch.cases\[0\].when" is invalid: switch expression .*===/,
      ],
      [
        'a SWITCH target listed twice',
        {
          name: 'x',
          tasks: [
            {
              name: 's',
              type: 'SWITCH',
              switch: { cases: [{ when: '${x} == 1', then: 'a' }], default: 'a' },
            },
            task('a'),
          ],
          edges: [{ from: 's', to: 'a' }],
        },
        /^task "s": "switch.default" "a" is already the task of "switch.cases\[0\].then"/,
      ],
    ];

    it.each(cases)('POST /workflows with %s', async (_what, b, message) => {
      await expectRejected('POST', '/api/v1/workflows', { body: b }, message);
    });

    it('PUT /workflows/{code} with a cycle keeps the current version', async () => {
      const code = await createWorkflow();
      await expectRejected(
        'PUT',
        `/api/v1/workflows/${code}`,
        {
          body: {
            name: 'c',
            tasks: [task('a'), task('b')],
            edges: [
              { from: 'a', to: 'b' },
              { from: 'b', to: 'a' },
            ],
          },
        },
        /^cycle: a -> b -> a$/,
      );
      expect((await send('GET', `/api/v1/workflows/${code}`)).json.version).toBe(1);
    });

    it('malformed JSON', async () => {
      await expectRejected(
        'POST',
        '/api/v1/workflows',
        { raw: '{"name": "x", "tasks": [' },
        /malformed JSON body/,
      );
      await expectRejected('POST', '/api/v1/workflows', { raw: "{'name': 'x'}" }, /malformed JSON body/);
    });

    it('a body that is not JSON at all', async () => {
      // Another media type is refused unparsed (415, DESIGN.md section 11); no body at all is a 400.
      const before = await counts();
      const res = await send('POST', '/api/v1/workflows', { raw: 'name=x', contentType: 'text/plain' });
      expect({ status: res.status, message: (res.json as { message?: string }).message }).toEqual({
        status: 415,
        message: 'request body must be application/json, got "text/plain"',
      });
      expect(await counts()).toEqual(before);
      await expectRejected('POST', '/api/v1/workflows', {}, /request body must be a JSON object/);
    });

    it('bad query parameters', async () => {
      for (const [query, message] of [
        ['limit=0', /"limit" must be between 1 and 1000, got 0/],
        ['limit=1001', /"limit" must be between 1 and 1000/],
        ['limit=ten', /"limit" must be an integer, got "ten"/],
        ['offset=-1', /"offset" must be between 0/],
        ['limit=1&limit=2', /"limit" must be given once/],
        ['sort=name', /unknown query parameter "sort"/],
      ] as const) {
        await expectRejected('GET', `/api/v1/workflows?${query}`, {}, message);
      }
    });
  });
});

describe('the workflow language: every task type, settings, references', () => {
  let childCode: string;
  const full = () => ({
    name: 'every type',
    description: 'one task of each type',
    params: { day: '2024-01-01', region: 'eu' },
    failureStrategy: 'CONTINUE',
    timeoutMs: 3_600_000,
    priority: 'HIGH',
    tasks: [
      {
        name: 'start',
        type: 'SHELL',
        command: 'echo ${day} $[yyyyMMdd-1]',
        retries: 2,
        retryIntervalMs: 10,
        timeoutMs: 60_000,
        workerGroup: 'g1',
        priority: 'LOWEST',
      },
      { name: 'noop', type: 'EMPTY', workerGroup: 'g2' },
      {
        name: 'call',
        type: 'HTTP',
        http: {
          method: 'POST',
          url: 'https://example.org/hook?day=${day}',
          headers: { 'Content-Type': 'application/json', 'X-Region': '${region}' },
          body: '{"day": "${day}"}',
          expectStatus: [200, 202],
          timeoutMs: 5000,
        },
      },
      { name: 'count', type: 'SQL', sql: { datasource: 'dw', statement: 'select ${day} as day' } },
      {
        name: 'child',
        type: 'SUB_WORKFLOW',
        subWorkflow: { workflowCode: childCode, params: { day: '${day}' } },
      },
      { name: 'check', type: 'CONDITIONS', conditions: { success: ['route'], failure: ['alert'] } },
      {
        name: 'route',
        type: 'SWITCH',
        switch: { cases: [{ when: "${region} == 'eu' && ${day} >= '2024'", then: 'eu' }], default: 'other' },
      },
      { name: 'alert', type: 'EMPTY' },
      { name: 'eu', type: 'EMPTY' },
      { name: 'other', type: 'EMPTY' },
    ],
    edges: [
      ['start', 'noop'],
      ['noop', 'call'],
      ['call', 'count'],
      ['count', 'child'],
      ['child', 'check'],
      ['check', 'route'],
      ['check', 'alert'],
      ['route', 'eu'],
      ['route', 'other'],
    ].map(([from, to]) => ({ from, to })),
  });
  const DEFAULTS = { retries: 0, retryIntervalMs: 1000, timeoutMs: 0, workerGroup: 'default' };

  beforeAll(async () => {
    childCode = await createWorkflow();
    const ds = await send('POST', '/api/v1/datasources', {
      body: { name: 'dw', type: 'postgres', url: 'postgres://reader:secret@127.0.0.1:5432/dw' },
    });
    expect(ds.status).toBe(201);
  });

  it('a definition with a task of every type round-trips through POST, GET and PUT', async () => {
    const body = full();
    const expected = {
      ...body,
      concurrency: { policy: 'PARALLEL' },
      tasks: body.tasks.map((t) => ({ ...DEFAULTS, ...t })),
      code: expect.stringMatching(/^wf_/),
      version: 1,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    };
    const created = await send('POST', '/api/v1/workflows', { body });
    expect({ status: created.status, json: created.json }).toEqual({ status: 201, json: expected });
    const code = created.json.code as string;
    const got = await send('GET', `/api/v1/workflows/${code}`);
    expect(got.json).toEqual(created.json);
    // Fields in the documented order, nested ones too (jsonb alone would sort them by length).
    const call = got.json.tasks[2];
    expect(Object.keys(call)).toEqual(['name', 'type', 'http', ...Object.keys(DEFAULTS)]);
    expect(Object.keys(call.http)).toEqual(['method', 'url', 'headers', 'body', 'expectStatus', 'timeoutMs']);
    expect(Object.keys(got.json.tasks[6].switch)).toEqual(['cases', 'default']);
    expect(Object.keys(got.json.tasks[6].switch.cases[0])).toEqual(['when', 'then']);
    // The workflow-level fields live in the settings column.
    const row = await db.query('SELECT settings FROM workflow_definition_version WHERE code = $1', [code]);
    expect(row.rows[0].settings).toEqual({
      params: { day: '2024-01-01', region: 'eu' },
      failureStrategy: 'CONTINUE',
      timeoutMs: 3_600_000,
      priority: 'HIGH',
    });
    // The current version's priority is on the definition row too: commands copy it (section 10).
    const rank = async () =>
      (await db.query('SELECT priority FROM workflow_definition WHERE code = $1', [code])).rows[0].priority;
    expect(await rank()).toBe(1);

    const { priority: _dropped, ...withoutPriority } = body as { priority?: string };
    const put = await send('PUT', `/api/v1/workflows/${code}`, {
      body: { ...withoutPriority, failureStrategy: 'END', params: {} },
    });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({ version: 2, failureStrategy: 'END', params: {}, timeoutMs: 3_600_000 });
    expect(put.json.priority).toBeUndefined();
    expect(await rank()).toBe(2);
    expect((await send('GET', `/api/v1/workflows/${code}?version=1`)).json).toEqual(created.json);
  });

  it('a version stored before the settings column existed answers with the default settings', async () => {
    const code = await createWorkflow();
    await db.query(`UPDATE workflow_definition_version SET settings = '{}' WHERE code = $1`, [code]);
    expect((await send('GET', `/api/v1/workflows/${code}`)).json).toMatchObject({
      params: {},
      failureStrategy: 'END',
      timeoutMs: 0,
    });
  });

  it('a SUB_WORKFLOW task may not lead back to the workflow, directly or through others; nothing stored', async () => {
    const a = await createWorkflow();
    const subTask = (workflowCode: string) => ({
      name: 's',
      type: 'SUB_WORKFLOW',
      subWorkflow: { workflowCode },
    });
    await expectRejected(
      'PUT',
      `/api/v1/workflows/${a}`,
      { body: { name: 'a', tasks: [subTask(a)] } },
      /^task "s": "subWorkflow.workflowCode" "wf_\w+" is this workflow: a workflow cannot run itself$/,
    );
    // b runs c, c runs a: a may not run b.
    const c = (await send('POST', '/api/v1/workflows', { body: { name: 'c', tasks: [subTask(a)] } })).json
      .code as string;
    const b = (await send('POST', '/api/v1/workflows', { body: { name: 'b', tasks: [subTask(c)] } })).json
      .code as string;
    await expectRejected(
      'PUT',
      `/api/v1/workflows/${a}`,
      { body: { name: 'a', tasks: [subTask(b)] } },
      new RegExp(
        `^task "s": "subWorkflow.workflowCode" "${b}" runs this workflow again through its sub-workflows`,
      ),
    );
    expect((await send('GET', `/api/v1/workflows/${a}`)).json.version).toBe(1);
    // A sub-workflow that does not lead back is fine.
    const put = await send('PUT', `/api/v1/workflows/${a}`, {
      body: { name: 'a', tasks: [subTask(childCode)] },
    });
    expect(put.status).toBe(200);
  });

  it('a DEPENDENT task is stored with its defaults; it may wait for its own workflow only in an earlier interval', async () => {
    const a = await createWorkflow();
    const dependentTask = (workflowCode: string, offset?: number) => ({
      name: 'd',
      type: 'DEPENDENT',
      dependent: { workflowCode, interval: 'day', ...(offset === undefined ? {} : { offset }) },
    });
    const created = await send('POST', '/api/v1/workflows', {
      body: { name: 'waits', tasks: [dependentTask(a)] },
    });
    expect(created.status).toBe(201);
    expect(created.json.tasks).toEqual([
      {
        name: 'd',
        type: 'DEPENDENT',
        dependent: { workflowCode: a, interval: 'day', offset: 0, checkIntervalMs: 10_000 },
        retries: 0,
        retryIntervalMs: 1000,
        timeoutMs: 0,
        workerGroup: 'default',
      },
    ]);
    await expectRejected(
      'PUT',
      `/api/v1/workflows/${a}`,
      { body: { name: 'a', tasks: [dependentTask(a)] } },
      /^task "d": "dependent.workflowCode" "wf_\w+" is this workflow with "dependent.offset" 0: a run would wait for itself/,
    );
    const put = await send('PUT', `/api/v1/workflows/${a}`, {
      body: { name: 'a', tasks: [dependentTask(a, -1)] },
    });
    expect(put.status).toBe(200);
  });

  it('PUT naming an unknown data source keeps the current version', async () => {
    const code = await createWorkflow();
    await expectRejected(
      'PUT',
      `/api/v1/workflows/${code}`,
      {
        body: {
          name: 'q',
          tasks: [{ name: 'q', type: 'SQL', sql: { datasource: 'gone', statement: 'select 1' } }],
        },
      },
      /^task "q": "sql.datasource" names unknown data source "gone"/,
    );
    expect((await send('GET', `/api/v1/workflows/${code}`)).json.version).toBe(1);
  });
});

describe('runs', () => {
  let code: string;
  beforeAll(async () => {
    code = await createWorkflow();
  });

  it('one statement inserts the instance and its command; the instance answers 200 at once', async () => {
    const dataSource = app.get(DataSource);
    const logger = dataSource.logger;
    const original = logger.logQuery.bind(logger);
    const statements: string[] = [];
    logger.logQuery = (query, parameters, runner) => {
      // The audit row is written after the response, apart from the trigger (section 11).
      if (!query.startsWith('INSERT INTO audit_event')) statements.push(query);
      original(query, parameters, runner);
    };
    let res: Reply;
    try {
      res = await trigger(code, {}, { params: { day: '2024-01-01', Empty: '' } });
    } finally {
      logger.logQuery = original;
    }
    expect(statements).toHaveLength(1);
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ commandId: expect.any(Number), workflowInstanceId: expect.any(Number) });
    const { commandId, workflowInstanceId } = res.json as { commandId: number; workflowInstanceId: number };

    const instance = await send('GET', `/api/v1/workflow-instances/${workflowInstanceId}`);
    expect(instance.status).toBe(200);
    expect(instance.json).toMatchObject({
      id: workflowInstanceId,
      workflowCode: code,
      workflowVersion: 1,
      state: 'SUBMITTED_SUCCESS',
      host: null,
      commandType: 'START_PROCESS',
      params: { day: '2024-01-01', Empty: '' },
      startTime: null,
      endTime: null,
      tasks: [],
    });
    const row = (
      await db.query('SELECT epoch, host, state FROM workflow_instance WHERE id = $1', [workflowInstanceId])
    ).rows[0];
    expect(row).toEqual({ epoch: '0', host: null, state: 'SUBMITTED_SUCCESS' });
    const command = (await db.query('SELECT * FROM command WHERE id = $1', [commandId])).rows[0];
    expect(command).toMatchObject({
      type: 'START_PROCESS',
      workflow_code: code,
      workflow_version: 1,
      workflow_instance_id: String(workflowInstanceId),
      params: { day: '2024-01-01', Empty: '' },
    });
  });

  it('runs the current version', async () => {
    const c = await createWorkflow();
    await send('PUT', `/api/v1/workflows/${c}`, { body: { name: 'v2', tasks: [task('x')] } });
    const res = await trigger(c);
    expect(
      (await send('GET', `/api/v1/workflow-instances/${res.json.workflowInstanceId}`)).json.workflowVersion,
    ).toBe(2);
  });

  it('the trigger fires NOTIFY porpoise_command', async () => {
    const listener = new Client({ connectionString: pg.endpoint });
    await listener.connect();
    try {
      const got: string[] = [];
      listener.on('notification', (n) => got.push(`${n.channel}:${n.payload}`));
      await listener.query('LISTEN porpoise_command');
      const res = await trigger(code);
      await waitFor('notification', () => got.includes(`porpoise_command:${res.json.commandId}`), 5000);
    } finally {
      await listener.end();
    }
  });

  it('a repeated Idempotency-Key returns the first answer and starts nothing', async () => {
    const first = await trigger(code, { 'Idempotency-Key': 'nightly-2024-01-01' });
    expect(first.status).toBe(202);
    const before = await counts();
    const again = await trigger(
      code,
      { 'Idempotency-Key': 'nightly-2024-01-01' },
      { params: { other: 'x' } },
    );
    expect(again.status).toBe(202);
    expect(again.json).toEqual(first.json);
    expect(await counts()).toEqual(before);
    // Keys are per workflow: the same key on another workflow is a new run.
    const other = await trigger(await createWorkflow(), { 'Idempotency-Key': 'nightly-2024-01-01' });
    expect(other.json.workflowInstanceId).not.toBe(first.json.workflowInstanceId);
  });

  it('10 concurrent requests with one Idempotency-Key make one instance and one command', async () => {
    const c = await createWorkflow();
    const replies = await Promise.all(
      Array.from({ length: 10 }, () => trigger(c, { 'Idempotency-Key': 'concurrent-key' })),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(10).fill(202));
    expect(new Set(replies.map((r) => JSON.stringify(r.json))).size).toBe(1);
    const instances = await db.query('SELECT id FROM workflow_instance WHERE workflow_code = $1', [c]);
    const commands = await db.query('SELECT id, workflow_instance_id FROM command WHERE workflow_code = $1', [
      c,
    ]);
    // Every reply is the same (checked above): the first stands for all.
    const first = replies[0]?.json;
    expect(instances.rows).toEqual([{ id: String(first.workflowInstanceId) }]);
    expect(commands.rows).toEqual([
      { id: String(first.commandId), workflow_instance_id: String(first.workflowInstanceId) },
    ]);
  });

  it.each([
    ['params not an object', { params: ['a'] }, /"params" must be an object of strings, got an array/],
    ['a bad param name', { params: { '1st': 'x' } }, /param name "1st" is invalid/],
    ['a dashed param name', { params: { 'a-b': 'x' } }, /param name "a-b" is invalid/],
    ['a non-string value', { params: { n: 5 } }, /param "n" must be a string, got a number/],
    ['a value over 64 KiB', { params: { big: 'x'.repeat(65537) } }, /param "big" is larger than 65536 bytes/],
    ['an unknown field', { params: {}, priority: 'high' }, /run: unknown field "priority"/],
    ['a body that is a string', 'go', /request body must be a JSON object|malformed JSON/],
  ] as const)('rejects %s', async (_what, b, message) => {
    await expectRejected('POST', `/api/v1/workflows/${code}/runs`, { body: b }, message);
  });

  it('rejects malformed JSON and a bad Idempotency-Key', async () => {
    await expectRejected(
      'POST',
      `/api/v1/workflows/${code}/runs`,
      { raw: '{"params": {' },
      /malformed JSON body/,
    );
    await expectRejected(
      'POST',
      `/api/v1/workflows/${code}/runs`,
      { headers: { 'Idempotency-Key': 'k'.repeat(201) } },
      /Idempotency-Key header is longer than 200 characters/,
    );
  });

  it('accepts an empty JSON body (curl -X POST -H "Content-Type: application/json")', async () => {
    const res = await send('POST', `/api/v1/workflows/${code}/runs`, { raw: '' });
    expect(res.status).toBe(202);
    const instance = await send('GET', `/api/v1/workflow-instances/${res.json.workflowInstanceId}`);
    expect(instance.json.params).toEqual({});
  });

  it('accepts a 64 KiB param value', async () => {
    const res = await trigger(code, {}, { params: { big: 'x'.repeat(65536) } });
    expect(res.status).toBe(202);
  });
});

describe('workflow instances', () => {
  let code: string;
  beforeAll(async () => {
    code = await createWorkflow();
  });

  const start = async () => (await trigger(code)).json as { commandId: number; workflowInstanceId: number };
  const setState = (id: number, state: string, host: string | null = '127.0.0.1:5678') =>
    db.query('UPDATE workflow_instance SET state = $2, host = $3 WHERE id = $1', [id, state, host]);
  /** What a master does when it takes the command. */
  const take = async (id: number) => {
    await db.query('DELETE FROM command WHERE workflow_instance_id = $1', [id]);
    await db.query(
      "UPDATE workflow_instance SET state = 'RUNNING_EXECUTION', host = '127.0.0.1:5678', epoch = epoch + 1, start_time = now() WHERE id = $1",
      [id],
    );
  };
  const control = (id: number, action: string) => send('POST', `/api/v1/workflow-instances/${id}/${action}`);
  const commandsOf = async (id: number) =>
    (await db.query('SELECT type FROM command WHERE workflow_instance_id = $1 ORDER BY id', [id])).rows.map(
      (r: { type: string }) => r.type,
    );

  it('returns tasks in id order, every attempt, in at most two queries', async () => {
    const { workflowInstanceId: id } = await start();
    await take(id);
    await db.query(
      `INSERT INTO task_instance (workflow_instance_id, name, state, host, attempt, start_time, end_time, exit_code, log_path)
       VALUES ($1, 'a', 'FAILURE', '127.0.0.1:1234', 1, now(), now(), 3, '/x/1.log'),
              ($1, 'a', 'SUCCESS', '127.0.0.1:1235', 2, now(), now(), 0, '/x/2.log'),
              ($1, 'b', 'SUBMITTED_SUCCESS', NULL, 1, NULL, NULL, NULL, NULL)`,
      [id],
    );
    const dataSource = app.get(DataSource);
    const logger = dataSource.logger;
    const original = logger.logQuery.bind(logger);
    let statements = 0;
    logger.logQuery = (q, p, r) => {
      statements++;
      original(q, p, r);
    };
    let res: Reply;
    try {
      res = await send('GET', `/api/v1/workflow-instances/${id}`);
    } finally {
      logger.logQuery = original;
    }
    expect(statements).toBeLessThanOrEqual(2);
    expect(res.json).toMatchObject({ id, state: 'RUNNING_EXECUTION', host: '127.0.0.1:5678' });
    expect(res.json.startTime).toEqual(expect.stringMatching(/^\d{4}-\d\d-\d\dT/));
    expect(res.json.tasks).toEqual([
      {
        id: expect.any(Number),
        name: 'a',
        state: 'FAILURE',
        host: '127.0.0.1:1234',
        attempt: 1,
        startTime: expect.any(String),
        endTime: expect.any(String),
        exitCode: 3,
        message: null,
        outputs: {},
        subWorkflowInstanceId: null,
      },
      expect.objectContaining({ name: 'a', state: 'SUCCESS', attempt: 2, exitCode: 0 }),
      expect.objectContaining({
        name: 'b',
        state: 'SUBMITTED_SUCCESS',
        host: null,
        exitCode: null,
        startTime: null,
      }),
    ]);
    const ids = res.json.tasks.map((t: { id: number }) => t.id);
    expect([...ids].sort((x: number, y: number) => x - y)).toEqual(ids);
  });

  it('lists with filters, newest first, with the total', async () => {
    const c = await createWorkflow();
    // One after the other, so the ids are in creation order.
    const oldest: number = (await trigger(c)).json.workflowInstanceId;
    const middle: number = (await trigger(c)).json.workflowInstanceId;
    const newest: number = (await trigger(c)).json.workflowInstanceId;
    const ids = [oldest, middle, newest];
    await setState(oldest, 'SUCCESS');
    const all = await send('GET', `/api/v1/workflow-instances?workflowCode=${c}`);
    expect(all.json.total).toBe(3);
    expect(all.json.items.map((i: { id: number }) => i.id)).toEqual([...ids].reverse());
    const page = await send('GET', `/api/v1/workflow-instances?workflowCode=${c}&limit=1&offset=1`);
    expect(page.json).toMatchObject({ total: 3, items: [{ id: middle }] });
    const done = await send('GET', `/api/v1/workflow-instances?workflowCode=${c}&state=SUCCESS`);
    expect(done.json).toMatchObject({ total: 1, items: [{ id: oldest, state: 'SUCCESS', workflowCode: c }] });
    expect(done.json.items[0].tasks).toBeUndefined();
  });

  it('rejects bad query parameters and ids', async () => {
    for (const [query, message] of [
      ['state=DONE', /"state" "DONE" is not a workflow state/],
      ['state=success', /"state" "success" is not a workflow state/],
      ['limit=0', /"limit" must be between 1 and 1000/],
      ['limit=2000', /"limit" must be between 1 and 1000/],
      ['limit=1.5', /"limit" must be an integer/],
      ['offset=x', /"offset" must be an integer/],
      ['workflowCode=a%20b', /"workflowCode" "a b" is not a workflow code/],
      ['page=2', /unknown query parameter "page"/],
    ] as const) {
      await expectRejected('GET', `/api/v1/workflow-instances?${query}`, {}, message);
    }
    await expectRejected(
      'GET',
      '/api/v1/workflow-instances/abc',
      {},
      /workflow instance id must be a positive integer, got "abc"/,
    );
    await expectRejected(
      'POST',
      '/api/v1/workflow-instances/-1/stop',
      {},
      /workflow instance id must be a positive integer/,
    );
    await expectRejected('GET', '/api/v1/workflow-instances/0', {}, /must be a positive integer, got "0"/);
    expect((await send('GET', '/api/v1/workflow-instances/99999999999999999999')).status).toBe(404);
    const missing = await send('GET', '/api/v1/workflow-instances/999999999');
    expect(missing.status).toBe(404);
    expect(missing.json.message).toBe('workflow instance 999999999 not found');
    const missingStop = await control(999999999, 'stop');
    expect(missingStop.status).toBe(404);
    expect(missingStop.json.message).toBe('workflow instance 999999999 not found');
    const missingRerun = await control(999999999, 'rerun');
    expect(missingRerun.status).toBe(404);
  });

  it('stop of an instance no master took: STOP at once and its command deleted', async () => {
    const { workflowInstanceId: id } = await start();
    const res = await control(id, 'stop');
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ workflowInstanceId: id, state: 'STOP' });
    expect(await commandsOf(id)).toEqual([]);
    const instance = (await send('GET', `/api/v1/workflow-instances/${id}`)).json;
    expect(instance).toMatchObject({ state: 'STOP', endTime: expect.any(String) });
    const again = await control(id, 'stop');
    expect(again.status).toBe(409);
    expect(again.json).toEqual({
      statusCode: 409,
      error: 'Conflict',
      message: expect.stringContaining(`cannot stop workflow instance ${id}: its state is STOP`),
    });
  });

  it('pause of a submitted instance, then resume with RECOVER_SUSPENDED_PROCESS', async () => {
    const { workflowInstanceId: id } = await start();
    expect((await control(id, 'pause')).json).toEqual({ workflowInstanceId: id, state: 'PAUSE' });
    expect(await commandsOf(id)).toEqual([]);
    const resumed = await control(id, 'resume');
    expect(resumed.status).toBe(202);
    expect(resumed.json).toEqual({
      workflowInstanceId: id,
      state: 'SUBMITTED_SUCCESS',
      commandId: expect.any(Number),
    });
    expect(await commandsOf(id)).toEqual(['RECOVER_SUSPENDED_PROCESS']);
    expect((await send('GET', `/api/v1/workflow-instances/${id}`)).json).toMatchObject({
      state: 'SUBMITTED_SUCCESS',
      host: null,
      commandType: 'RECOVER_SUSPENDED_PROCESS',
    });
    const twice = await control(id, 'resume');
    expect(twice.status).toBe(409);
    expect(twice.json.message).toContain('its state is SUBMITTED_SUCCESS');
  });

  it('stop and pause of a running instance ask its master (READY_*) with NOTIFY porpoise_instance_control', async () => {
    const listener = new Client({ connectionString: pg.endpoint });
    await listener.connect();
    try {
      const got: string[] = [];
      listener.on('notification', (n) => got.push(`${n.channel}:${n.payload}`));
      await listener.query('LISTEN porpoise_instance_control');
      const a = (await start()).workflowInstanceId;
      const b = (await start()).workflowInstanceId;
      await take(a);
      await take(b);
      expect((await control(a, 'stop')).json).toEqual({ workflowInstanceId: a, state: 'READY_STOP' });
      expect((await control(b, 'pause')).json).toEqual({ workflowInstanceId: b, state: 'READY_PAUSE' });
      await waitFor(
        'notifications',
        () =>
          got.includes(`porpoise_instance_control:${a}`) && got.includes(`porpoise_instance_control:${b}`),
        5000,
      );
      const conflict = await control(a, 'pause');
      expect(conflict.status).toBe(409);
      expect(conflict.json.message).toContain('its state is READY_STOP');
      expect((await db.query('SELECT host FROM workflow_instance WHERE id = $1', [a])).rows[0].host).toBe(
        '127.0.0.1:5678',
      );
    } finally {
      await listener.end();
    }
  });

  it('rerun from a final state, resume-failed from FAILURE only, each with its command', async () => {
    const { workflowInstanceId: id } = await start();
    await take(id);
    for (const action of ['rerun', 'resume-failed', 'resume']) {
      const res = await control(id, action);
      expect({ action, status: res.status, message: res.json.message }).toEqual({
        action,
        status: 409,
        message: expect.stringContaining('its state is RUNNING_EXECUTION'),
      });
    }
    await db.query("UPDATE workflow_instance SET state = 'SUCCESS', end_time = now() WHERE id = $1", [id]);
    expect((await control(id, 'resume-failed')).status).toBe(409);
    const rerun = await control(id, 'rerun');
    expect(rerun.json).toEqual({
      workflowInstanceId: id,
      state: 'SUBMITTED_SUCCESS',
      commandId: expect.any(Number),
    });
    expect(await commandsOf(id)).toEqual(['REPEAT_RUNNING']);
    expect((await send('GET', `/api/v1/workflow-instances/${id}`)).json).toMatchObject({
      state: 'SUBMITTED_SUCCESS',
      host: null,
      endTime: null,
      commandType: 'REPEAT_RUNNING',
    });

    await take(id);
    await setState(id, 'FAILURE');
    const resumeFailed = await control(id, 'resume-failed');
    expect(resumeFailed.status).toBe(202);
    expect(await commandsOf(id)).toEqual(['START_FAILURE_TASK_PROCESS']);
    const row = (await db.query('SELECT state, host FROM workflow_instance WHERE id = $1', [id])).rows[0];
    expect(row).toEqual({ state: 'SUBMITTED_SUCCESS', host: null });
  });

  it('concurrent stops of one submitted instance: one wins, the rest get 409', async () => {
    const { workflowInstanceId: id } = await start();
    const replies = await Promise.all(Array.from({ length: 5 }, () => control(id, 'stop')));
    expect(replies.map((r) => r.status).sort()).toEqual([202, 409, 409, 409, 409]);
    expect(await commandsOf(id)).toEqual([]);
  });

  it('an unknown action is a 404', async () => {
    const { workflowInstanceId: id } = await start();
    const res = await control(id, 'explode');
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({ statusCode: 404, error: 'Not Found' });
  });
});

describe('task logs', () => {
  let worker: GrpcServer;
  let workerAddress: string;
  const logs = new Map<number, Buffer>();
  let instanceId: number;
  const reads: ReadLogRequest[] = [];

  beforeAll(async () => {
    // A real gRPC server with the worker's service; it answers ReadLog 7 bytes at a time so
    // that the API has to page.
    const handlers: WorkerTaskHandlers = {
      dispatch: async () => ({ accepted: false, reason: 'test' }),
      kill: async () => ({ killed: false }),
      takeOver: async () => ({ status: 'UNKNOWN', result: null, startTimeMs: 0 }),
      readLog: async (req) => {
        reads.push(req);
        const log = logs.get(Number(req.taskInstanceId));
        if (!log) return { found: false, content: Buffer.alloc(0), nextOffset: 0, eof: true };
        const offset = Number(req.offset);
        const end = Math.min(log.length, offset + Math.min(7, req.limit || 7));
        return { found: true, content: log.subarray(offset, end), nextOffset: end, eof: end >= log.length };
      },
    };
    worker = new GrpcServer({
      bindHost: '127.0.0.1',
      port: 0,
      clusterSecret: SECRET,
      logger: { warn: () => undefined, error: () => undefined },
      worker: handlers,
    });
    workerAddress = `127.0.0.1:${await worker.start()}`;
    const code = await createWorkflow();
    instanceId = (await trigger(code)).json.workflowInstanceId;
  });
  afterAll(async () => {
    await worker?.stop(100);
  });

  const addTask = async (name: string, host: string | null, logPath: string | null): Promise<number> =>
    Number(
      (
        await db.query(
          `INSERT INTO task_instance (workflow_instance_id, name, state, host, attempt, log_path)
           VALUES ($1, $2, 'SUCCESS', $3, 1, $4) RETURNING id`,
          [instanceId, name, host, logPath],
        )
      ).rows[0].id,
    );

  it('returns the whole log as text/plain, read from the worker in chunks', async () => {
    const id = await addTask('printer', workerAddress, '/data/logs/1/1.log');
    const text = 'hello from the task\nsecond line: ünïcödé\n';
    logs.set(id, Buffer.from(text));
    const res = await send('GET', `/api/v1/task-instances/${id}/log`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.text).toBe(text);
    expect(reads.filter((r) => Number(r.taskInstanceId) === id).length).toBeGreaterThan(3);
  });

  it('404 for an unknown task, a task with no log yet, and a log the worker does not have', async () => {
    const unknown = await send('GET', '/api/v1/task-instances/987654321/log');
    expect({ status: unknown.status, message: unknown.json.message }).toEqual({
      status: 404,
      message: 'task instance 987654321 not found',
    });
    const pending = await addTask('pending', null, null);
    const noLog = await send('GET', `/api/v1/task-instances/${pending}/log`);
    expect({ status: noLog.status, message: noLog.json.message }).toEqual({
      status: 404,
      message: `task instance ${pending} has no log yet`,
    });
    const lost = await addTask('lost', workerAddress, '/data/logs/1/x.log');
    const gone = await send('GET', `/api/v1/task-instances/${lost}/log`);
    expect({ status: gone.status, message: gone.json.message }).toEqual({
      status: 404,
      message: `worker ${workerAddress} has no log of task instance ${lost}`,
    });
    await expectRejected(
      'GET',
      '/api/v1/task-instances/x1/log',
      {},
      /task instance id must be a positive integer/,
    );
  });

  describe('streamed (StreamLog)', () => {
    let streaming: GrpcServer;
    let streamingAddress: string;
    /** Bytes of content the fake worker has produced so far, per task. */
    const produced = new Map<number, number>();

    beforeAll(async () => {
      // A worker with StreamLog: 64 KiB per message, produced only as the stream pulls them.
      streaming = new GrpcServer({
        bindHost: '127.0.0.1',
        port: 0,
        clusterSecret: SECRET,
        logger: { warn: () => undefined, error: () => undefined },
        worker: {
          dispatch: async () => ({ accepted: false, reason: 'test' }),
          kill: async () => ({ killed: false }),
          takeOver: async () => ({ status: 'UNKNOWN', result: null, startTimeMs: 0 }),
          readLog: async () => {
            throw new Error('the API must stream, not page');
          },
          streamLog: async (req) => {
            const id = Number(req.taskInstanceId);
            const log = logs.get(id);
            if (!log) throw new RpcNotFound(`no log of task instance ${id}`);
            const offset = Math.min(Number(req.offset), log.length);
            produced.set(id, 0);
            return (async function* (): AsyncGenerator<LogChunk> {
              yield { size: log.length - offset, content: Buffer.alloc(0) };
              for (let at = offset; at < log.length; at += 65_536) {
                const content = log.subarray(at, Math.min(log.length, at + 65_536));
                produced.set(id, (produced.get(id) ?? 0) + content.length);
                yield { size: 0, content };
              }
            })();
          },
        },
      });
      streamingAddress = `127.0.0.1:${await streaming.start()}`;
    });
    afterAll(async () => {
      await streaming?.stop(100);
    });

    /** 20 MiB and a bit of numbered lines: past the old 16 MiB cap of one request. */
    function bigLog(): Buffer {
      const lines: string[] = [];
      let size = 0;
      for (let i = 0; size <= 20 * 1024 * 1024; i++) {
        const line = `line ${i} ${'x'.repeat(i % 97)}\n`;
        lines.push(line);
        size += line.length;
      }
      return Buffer.from(lines.join(''));
    }

    it('returns a log larger than the old 16 MiB limit whole and byte-exact, with its Content-Length', async () => {
      const id = await addTask('big', streamingAddress, '/data/logs/1/big.log');
      const log = bigLog();
      logs.set(id, log);
      const res = await send('GET', `/api/v1/task-instances/${id}/log`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(res.headers.get('content-length')).toBe(String(log.length));
      expect(res.text.length).toBe(log.length);
      expect(res.text === log.toString()).toBe(true);
      expect(res.headers.get('x-porpoise-log-truncated')).toBeNull();
      const tail = await send('GET', `/api/v1/task-instances/${id}/log?offset=${log.length - 20}`);
      expect(tail.text).toBe(log.subarray(log.length - 20).toString());
    });

    it('pulls from the worker only as the client reads (a reader that stops holds the worker back)', async () => {
      const id = await addTask('slow reader', streamingAddress, '/data/logs/1/slow.log');
      const log = bigLog();
      logs.set(id, log);
      const res = await fetch(`${base}/api/v1/task-instances/${id}/log`);
      const reader = res.body?.getReader();
      if (!reader) throw new Error('no body');
      const first = await reader.read();
      expect(first.done).toBe(false);
      // The reader stops: flow control stops the worker's producer long before the end.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(produced.get(id) ?? 0).toBeLessThan(log.length / 2);
      await reader.cancel();
    });

    it('404 when the worker has no such log; 400 for a bad offset', async () => {
      const lost = await addTask('lost streamed', streamingAddress, '/data/logs/1/y.log');
      const gone = await send('GET', `/api/v1/task-instances/${lost}/log`);
      expect({ status: gone.status, message: gone.json.message }).toEqual({
        status: 404,
        message: `worker ${streamingAddress} has no log of task instance ${lost}`,
      });
      await expectRejected('GET', `/api/v1/task-instances/${lost}/log?offset=-1`, {}, /"offset"/);
      await expectRejected('GET', `/api/v1/task-instances/${lost}/log?limit=5`, {}, /"limit"/);
    });
  });

  it('503 naming the worker when it cannot be reached', async () => {
    const deadAddress = `127.0.0.1:${await freePort()}`;
    const id = await addTask('orphan', deadAddress, '/data/logs/1/2.log');
    const res = await send('GET', `/api/v1/task-instances/${id}/log`);
    expect(res.status).toBe(503);
    expect(res.json).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      message: expect.stringContaining(`worker ${deadAddress} is unreachable`),
    });
  });
});

describe('schedules', () => {
  let code: string;
  beforeAll(async () => {
    code = await createWorkflow();
  });

  it('creates with the next fire time, lists, deletes (204, then 404)', async () => {
    const before = Date.now();
    const res = await send('POST', '/api/v1/schedules', {
      body: { workflowCode: code, cron: '0 0 * * *', timezone: 'Europe/Berlin' },
    });
    expect(res.status).toBe(201);
    expect(res.json).toEqual({
      id: expect.any(Number),
      workflowCode: code,
      cron: '0 0 * * *',
      timezone: 'Europe/Berlin',
      params: {},
      startTime: null,
      endTime: null,
      enabled: true,
      misfirePolicy: 'RUN_ONCE',
      revision: 0,
      nextFireTime: expect.any(String),
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const next = new Date(res.json.nextFireTime as string);
    expect(next.getTime()).toBeGreaterThan(before);
    expect(next.getTime()).toBeLessThanOrEqual(before + 25 * 3600_000);
    // Midnight in Berlin is 22:00 or 23:00 UTC.
    expect([22, 23]).toContain(next.getUTCHours());
    expect(next.getUTCMinutes()).toBe(0);

    const utc = await send('POST', '/api/v1/schedules', {
      body: { workflowCode: code, cron: '*/10 * * * * *' },
    });
    expect(utc.json.timezone).toBe('UTC');

    const list = await send('GET', `/api/v1/schedules?workflowCode=${code}`);
    expect(list.json.total).toBe(2);
    expect(list.json.items.map((s: { id: number }) => s.id)).toEqual([utc.json.id, res.json.id]);

    expect((await send('DELETE', `/api/v1/schedules/${res.json.id}`)).status).toBe(204);
    const again = await send('DELETE', `/api/v1/schedules/${res.json.id}`);
    expect({ status: again.status, message: again.json.message }).toEqual({
      status: 404,
      message: `schedule ${res.json.id} not found`,
    });
    expect((await send('GET', '/api/v1/schedules')).json.total).toBe(1);
  });

  it.each([
    ['a bad cron', { cron: 'every day', timezone: 'UTC' }, /invalid cron expression "every day"/],
    ['an out-of-range cron field', { cron: '0 25 * * *' }, /invalid cron expression "0 25 \* \* \*"/],
    [
      'a cron that never fires',
      { cron: '0 0 30 2 *' },
      /^schedule: cron expression "0 0 30 2 \*" never fires$/,
    ],
    [
      'an unknown timezone',
      { cron: '0 0 * * *', timezone: 'Mars/Olympus' },
      /unknown timezone "Mars\/Olympus"/,
    ],
    ['a missing cron', {}, /missing field "cron"/],
    ['an unknown field', { cron: '0 0 * * *', active: true }, /unknown field "active"/],
    ['a bad misfire policy', { cron: '0 0 * * *', misfirePolicy: 'ALL' }, /"misfirePolicy" must be one of/],
    ['a start time without an offset', { cron: '0 0 * * *', startTime: '2030-01-01T00:00' }, /"startTime"/],
  ] as const)('rejects %s', async (_what, extra, message) => {
    await expectRejected('POST', '/api/v1/schedules', { body: { workflowCode: code, ...extra } }, message);
  });

  it('GET and PATCH one schedule: any field, revision + 1, pause and resume, 400 naming the field, 404', async () => {
    const created = await send('POST', '/api/v1/schedules', {
      body: {
        workflowCode: code,
        cron: '0 * * * *',
        params: { REGION: 'eu' },
        startTime: '2030-01-01T00:00:00Z',
        misfirePolicy: 'SKIP',
      },
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      params: { REGION: 'eu' },
      startTime: '2030-01-01T00:00:00.000Z',
      misfirePolicy: 'SKIP',
      // The first fire time is the start time itself (inclusive).
      nextFireTime: '2030-01-01T00:00:00.000Z',
    });
    const id = created.json.id as number;
    expect((await send('GET', `/api/v1/schedules/${id}`)).json).toEqual(created.json);

    const paused = await send('PATCH', `/api/v1/schedules/${id}`, { body: { enabled: false } });
    expect(paused.status).toBe(200);
    expect(paused.json).toMatchObject({
      enabled: false,
      nextFireTime: null,
      revision: 1,
      misfirePolicy: 'SKIP',
    });
    const resumed = await send('PATCH', `/api/v1/schedules/${id}`, {
      body: { enabled: true, startTime: null, cron: '*/5 * * * *', params: {} },
    });
    expect(resumed.json).toMatchObject({ enabled: true, startTime: null, revision: 2, params: {} });
    // From the database's now(): within the next five minutes.
    const dbNow = (await db.query('SELECT now() AS now')).rows[0].now as Date;
    const next = new Date(resumed.json.nextFireTime as string).getTime();
    expect(next).toBeGreaterThan(dbNow.getTime() - 1000);
    expect(next).toBeLessThanOrEqual(dbNow.getTime() + 300_000);
    const ended = await send('PATCH', `/api/v1/schedules/${id}`, {
      body: { endTime: '2000-01-01T00:00:00Z' },
    });
    expect(ended.json).toMatchObject({
      endTime: '2000-01-01T00:00:00.000Z',
      nextFireTime: null,
      revision: 3,
    });

    await expectRejected(
      'PATCH',
      `/api/v1/schedules/${id}`,
      { body: { enabled: 'yes' } },
      /"enabled" must be true or false/,
    );
    await expectRejected('PATCH', `/api/v1/schedules/${id}`, { body: {} }, /nothing to change/);
    await expectRejected(
      'PATCH',
      `/api/v1/schedules/${id}`,
      { body: { cron: 'nope' } },
      /invalid cron expression "nope"/,
    );
    await expectRejected(
      'PATCH',
      `/api/v1/schedules/${id}`,
      { body: { timezone: 'Mars/Base' } },
      /unknown timezone/,
    );
    const unchanged = await send('GET', `/api/v1/schedules/${id}`);
    expect(unchanged.json.revision).toBe(3);
    const unknownWorkflow = await send('PATCH', `/api/v1/schedules/${id}`, {
      body: { workflowCode: 'wf_nope' },
    });
    expect({ status: unknownWorkflow.status, message: unknownWorkflow.json.message }).toEqual({
      status: 404,
      message: 'workflow "wf_nope" not found',
    });
    for (const [method, body] of [
      ['GET', undefined],
      ['PATCH', { enabled: false }],
    ] as const) {
      const missing = await send(method, '/api/v1/schedules/999999', body ? { body } : {});
      expect({ status: missing.status, message: missing.json.message }).toEqual({
        status: 404,
        message: 'schedule 999999 not found',
      });
    }
    expect((await send('DELETE', `/api/v1/schedules/${id}`)).status).toBe(204);
  });

  it('rejects a missing workflow code and names an unknown workflow (404)', async () => {
    await expectRejected(
      'POST',
      '/api/v1/schedules',
      { body: { cron: '0 0 * * *' } },
      /missing field "workflowCode"/,
    );
    const before = await counts();
    const res = await send('POST', '/api/v1/schedules', {
      body: { workflowCode: 'wf_nope', cron: '0 0 * * *' },
    });
    expect({ status: res.status, message: res.json.message }).toEqual({
      status: 404,
      message: 'workflow "wf_nope" not found',
    });
    expect(await counts()).toEqual(before);
    await expectRejected('DELETE', '/api/v1/schedules/zero', {}, /schedule id must be a positive integer/);
  });
});

describe('cluster nodes', () => {
  let registry: Registry;
  beforeAll(async () => {
    registry = createRegistry({
      type: 'jdbc',
      databaseUrl: pg.endpoint,
      sessionTimeoutMs: 3000,
      heartbeatIntervalMs: 500,
    });
    await registry.start();
  });
  afterAll(async () => {
    await registry?.close();
  });

  const heartbeat = (port: number, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      host: '127.0.0.1',
      port,
      startTime: 1_700_000_000_000,
      heartbeatTime: 1_700_000_005_000,
      cpuUsage: 0.25,
      memoryUsage: 0.5,
      loadAverage: 1.5,
      serving: true,
      ...extra,
    });

  it('lists valid masters and workers and skips entries with bad JSON or shape', async () => {
    await registry.put('/nodes/master/127.0.0.1:5678', heartbeat(5678), { ephemeral: true });
    await registry.put('/nodes/master/127.0.0.1:5679', '{not json', { ephemeral: true });
    await registry.put('/nodes/master/127.0.0.1:5680', heartbeat(5680, { cpuUsage: 'high' }), {
      ephemeral: true,
    });
    await registry.put(
      '/nodes/worker/default/127.0.0.1:1234',
      heartbeat(1234, { group: 'default', runningTasks: 2, capacity: 8, extra: 'dropped' }),
      { ephemeral: true },
    );
    await registry.put('/nodes/worker/default/127.0.0.1:1235', heartbeat(1235, { group: 'default' }), {
      ephemeral: true,
    });
    await registry.put('/nodes/worker/gpu/127.0.0.1:1236', '[]', { ephemeral: true });

    const res = await send('GET', '/api/v1/cluster/nodes');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      masters: [
        {
          address: '127.0.0.1:5678',
          host: '127.0.0.1',
          port: 5678,
          startTime: 1_700_000_000_000,
          heartbeatTime: 1_700_000_005_000,
          cpuUsage: 0.25,
          memoryUsage: 0.5,
          loadAverage: 1.5,
          serving: true,
        },
      ],
      workers: [
        {
          address: '127.0.0.1:1234',
          host: '127.0.0.1',
          port: 1234,
          startTime: 1_700_000_000_000,
          heartbeatTime: 1_700_000_005_000,
          cpuUsage: 0.25,
          memoryUsage: 0.5,
          loadAverage: 1.5,
          serving: true,
          group: 'default',
          runningTasks: 2,
          capacity: 8,
        },
      ],
    });
  });
});

describe('operations', () => {
  it('GET /health answers 200 when Postgres and the registry answer', async () => {
    const res = await send('GET', '/health');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: 'ok', database: 'ok', registry: 'ok' });
    expect((await send('GET', '/api/v1/health')).status).toBe(404);
  });

  it('GET /metrics: process metrics, requests by route and status, instances by state', async () => {
    await send('GET', '/api/v1/workflow-instances/abc');
    const res = await send('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(res.text).toContain('porpoise_api_process_cpu_user_seconds_total');
    expect(res.text).toMatch(
      /porpoise_api_http_requests_total\{method="POST",route="\/api\/v1\/workflows",status="201"\} \d+/,
    );
    expect(res.text).toMatch(
      /porpoise_api_http_requests_total\{method="GET",route="\/api\/v1\/workflow-instances\/:id",status="400"\} \d+/,
    );
    expect(res.text).toContain('porpoise_api_http_request_duration_seconds_bucket');
    // Refused by the body parser before any route matched: still counted.
    expect(res.text).toMatch(
      /porpoise_api_http_requests_total\{method="POST",route="unmatched",status="400"\} \d+/,
    );
    const submitted = (
      await db.query("SELECT count(*)::int AS n FROM workflow_instance WHERE state = 'SUBMITTED_SUCCESS'")
    ).rows[0].n as number;
    expect(res.text).toContain(`porpoise_workflow_instances{state="SUBMITTED_SUCCESS"} ${submitted}`);
    expect(res.text).toContain('porpoise_workflow_instances{state="READY_STOP"}');
  });

  it('GET /api/docs-json documents every route; /api/docs is served locally', async () => {
    const doc = await send('GET', '/api/docs-json');
    expect(doc.status).toBe(200);
    const paths = doc.json.paths as Record<string, Record<string, unknown>>;
    const routes = Object.entries(paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`),
    );
    expect(routes.sort()).toEqual(
      [
        'GET /health',
        'GET /metrics',
        'POST /api/v1/workflows',
        'GET /api/v1/workflows',
        'GET /api/v1/workflows/{code}',
        'PUT /api/v1/workflows/{code}',
        'POST /api/v1/workflows/{code}/runs',
        'GET /api/v1/workflow-instances',
        'GET /api/v1/workflow-instances/{id}',
        'GET /api/v1/workflow-instances/{id}/diagnosis',
        'POST /api/v1/workflow-instances/{id}/stop',
        'POST /api/v1/workflow-instances/{id}/pause',
        'POST /api/v1/workflow-instances/{id}/resume',
        'POST /api/v1/workflow-instances/{id}/rerun',
        'POST /api/v1/workflow-instances/{id}/resume-failed',
        'GET /api/v1/task-instances/{id}/log',
        'POST /api/v1/schedules',
        'GET /api/v1/schedules',
        'GET /api/v1/schedules/{id}',
        'PATCH /api/v1/schedules/{id}',
        'DELETE /api/v1/schedules/{id}',
        'GET /api/v1/cluster/nodes',
        'POST /api/v1/datasources',
        'GET /api/v1/datasources',
        'GET /api/v1/datasources/{name}',
        'DELETE /api/v1/datasources/{name}',
        'POST /api/v1/workflows/{code}/backfill',
        'GET /api/v1/backfills/{id}',
        'POST /api/v1/backfills/{id}/cancel',
        'POST /api/v1/task-groups',
        'GET /api/v1/task-groups',
        'GET /api/v1/task-groups/{name}',
        'PATCH /api/v1/task-groups/{name}',
        'DELETE /api/v1/task-groups/{name}',
        'POST /api/v1/tokens',
        'GET /api/v1/tokens',
        'DELETE /api/v1/tokens/{id}',
        'GET /api/v1/audit',
      ].sort(),
    );
    const create = paths['/api/v1/workflows']?.post as {
      requestBody: unknown;
      responses: Record<string, unknown>;
    };
    expect(JSON.stringify(create.requestBody)).toContain('WorkflowBodyDto');
    expect(JSON.stringify(create.responses['201'])).toContain('WorkflowDto');
    // A task is one of the per-type schemas, told apart by `type`.
    const schemas = doc.json.components.schemas;
    const taskTypes = ['SHELL', 'EMPTY', 'HTTP', 'SQL', 'SUB_WORKFLOW', 'CONDITIONS', 'SWITCH', 'DEPENDENT'];
    for (const holder of ['WorkflowBodyDto', 'WorkflowDto']) {
      const items = schemas[holder].properties.tasks.items;
      expect(Object.keys(items.discriminator.mapping)).toEqual(taskTypes);
      expect(items.oneOf).toHaveLength(taskTypes.length);
      for (const { $ref } of items.oneOf as Array<{ $ref: string }>) {
        const schema = schemas[$ref.replace('#/components/schemas/', '')];
        expect(schema.required).toEqual(expect.arrayContaining(['name', 'type']));
      }
    }
    expect(schemas.HttpTaskDto.properties.type.enum).toEqual(['HTTP']);
    expect(schemas.HttpRequestDto.required).toEqual(['method', 'url']);
    expect(schemas.DependentDto.required).toEqual(['workflowCode', 'interval']);
    expect(schemas.DependentDto.properties.interval.enum).toEqual(['hour', 'day', 'week', 'month']);
    expect(Object.keys(schemas.WorkflowBodyDto.properties)).toEqual(
      expect.arrayContaining(['params', 'failureStrategy', 'timeoutMs']),
    );

    const page = await send('GET', '/api/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.text).not.toMatch(/https?:\/\//);
    for (const asset of ['swagger-ui-bundle.js', 'swagger-ui.css', 'swagger-init.js']) {
      const res = await fetch(`${base}/api/docs/${asset}`);
      expect({ asset, status: res.status }).toEqual({ asset, status: 200 });
      await res.arrayBuffer();
    }
    expect((await send('GET', '/api/docs/..%2Fpackage.json')).status).toBe(404);
  });

  it('ApiServerModule alone (no configureApiApp) serves its docs and JSON errors, and refuses /api/v1 (no auth gates)', async () => {
    const bare = await NestFactory.create(ApiServerModule.forRoot(config), {
      logger: false,
      abortOnError: false,
    });
    try {
      await bare.listen(0, '127.0.0.1');
      const url = `http://127.0.0.1:${(bare.getHttpServer().address() as { port: number }).port}`;
      // Without the gates nothing authenticates: ScopeGuard fails closed, even for ADMIN_TOKEN.
      const refused = await fetch(`${url}/api/v1/workflows?limit=1`, { headers: authHeaders() });
      expect(refused.status).toBe(401);
      expect((await fetch(`${url}/api/docs-json`)).status).toBe(200);
      expect((await fetch(`${url}/health`)).status).toBe(200);
      const bad = await fetch(`${url}/api/v1/workflows`, {
        method: 'POST',
        headers: authHeaders({ 'content-type': 'application/json' }),
        body: '{',
      });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({
        statusCode: 400,
        message: expect.stringMatching(/^malformed JSON body/),
      });
    } finally {
      await bare.close();
    }
  });

  it('an unknown route is a JSON 404', async () => {
    const res = await send('GET', '/api/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.json).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: expect.stringContaining('/api/v1/nothing-here'),
    });
  });

  it('a body over the limit is a JSON 413', async () => {
    const res = await send('POST', '/api/v1/workflows', {
      body: { name: 'big', tasks: [task('a', { command: 'x'.repeat(9 * 1024 * 1024) })] },
    });
    expect(res.status).toBe(413);
    expect(res.json).toMatchObject({
      statusCode: 413,
      error: 'Payload Too Large',
      message: expect.stringMatching(/too large/),
    });
  });
});
