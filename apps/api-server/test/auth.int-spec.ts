/**
 * API authentication, scopes, tokens, the audit log and the browser rules (DESIGN.md section 11),
 * on two API servers sharing one real Postgres. The scope table is checked against the live
 * OpenAPI document, so a route added without an entry here (or without @Scope) fails.
 */
import type { INestApplication } from '@nestjs/common';
import { runMigrations } from '@porpoise/dao';
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { authHeaders, TEST_ADMIN_TOKEN } from '@porpoise/test-harness/api-token';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startApiUnderTest } from './support/api-under-test';

type Scope = 'read' | 'run' | 'edit' | 'admin';

/** Every /api/v1 operation and the scope it needs (DESIGN.md section 11). */
const SCOPE_TABLE: Record<string, Scope> = {
  'POST /api/v1/workflows': 'edit',
  'GET /api/v1/workflows': 'read',
  'GET /api/v1/workflows/{code}': 'read',
  'PUT /api/v1/workflows/{code}': 'edit',
  'POST /api/v1/workflows/{code}/runs': 'run',
  'POST /api/v1/workflows/{code}/backfill': 'run',
  'GET /api/v1/backfills/{id}': 'read',
  'POST /api/v1/backfills/{id}/cancel': 'run',
  'GET /api/v1/workflow-instances': 'read',
  'GET /api/v1/workflow-instances/{id}': 'read',
  'GET /api/v1/workflow-instances/{id}/diagnosis': 'read',
  'POST /api/v1/workflow-instances/{id}/stop': 'run',
  'POST /api/v1/workflow-instances/{id}/pause': 'run',
  'POST /api/v1/workflow-instances/{id}/resume': 'run',
  'POST /api/v1/workflow-instances/{id}/rerun': 'run',
  'POST /api/v1/workflow-instances/{id}/resume-failed': 'run',
  'GET /api/v1/task-instances/{id}/log': 'read',
  'POST /api/v1/schedules': 'edit',
  'GET /api/v1/schedules': 'read',
  'GET /api/v1/schedules/{id}': 'read',
  'PATCH /api/v1/schedules/{id}': 'edit',
  'DELETE /api/v1/schedules/{id}': 'edit',
  'GET /api/v1/cluster/nodes': 'read',
  'POST /api/v1/datasources': 'edit',
  'GET /api/v1/datasources': 'read',
  'GET /api/v1/datasources/{name}': 'read',
  'DELETE /api/v1/datasources/{name}': 'edit',
  'POST /api/v1/task-groups': 'edit',
  'GET /api/v1/task-groups': 'read',
  'GET /api/v1/task-groups/{name}': 'read',
  'PATCH /api/v1/task-groups/{name}': 'edit',
  'DELETE /api/v1/task-groups/{name}': 'edit',
  'POST /api/v1/tokens': 'admin',
  'GET /api/v1/tokens': 'admin',
  'DELETE /api/v1/tokens/{id}': 'admin',
  'GET /api/v1/audit': 'admin',
};

const CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

interface Reply {
  status: number;
  headers: Headers;
  json: { message?: string } & Record<string, unknown>;
}

let pg: TestServer;
let db: Client;
let apiA: { app: INestApplication; base: string };
let apiB: { app: INestApplication; base: string };
let document: { paths: Record<string, Record<string, { security?: unknown }>> };

async function call(
  base: string,
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const token = options.token === undefined ? TEST_ADMIN_TOKEN : options.token;
  const headers: Record<string, string> = { ...options.headers };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  let json: Reply['json'] = {};
  try {
    json = text ? (JSON.parse(text) as Reply['json']) : {};
  } catch {
    json = { message: text };
  }
  return { status: res.status, headers: res.headers, json };
}

/** A raw HTTP request, for headers fetch will not let a caller set (Host). */
function raw(
  base: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path, method: 'GET', headers, setHost: false },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function createToken(name: string, scopes: Scope[]): Promise<{ id: number; token: string }> {
  const res = await call(apiA.base, 'POST', '/api/v1/tokens', { body: { name, scopes } });
  expect(res.status).toBe(201);
  return res.json as unknown as { id: number; token: string };
}

/** A concrete path for an operation, with ids that name nothing. */
const concrete = (path: string): string =>
  path
    .replace(/\{id\}/g, '999999')
    .replace(/\{code\}/g, 'no_such_code')
    .replace(/\{name\}/g, 'no-such-name');

beforeAll(async () => {
  pg = await startPostgres();
  await runMigrations(pg.endpoint);
  db = new Client({ connectionString: pg.endpoint });
  await db.connect();
  apiA = await startApiUnderTest(pg.endpoint, 'auth-test-secret-0123456789');
  apiB = await startApiUnderTest(pg.endpoint, 'auth-test-secret-0123456789', {
    CORS_ORIGINS: 'https://console.example.com',
  });
  document = (await (await fetch(`${apiA.base}/api/docs-json`)).json()) as typeof document;
});

afterAll(async () => {
  await apiA?.app.close();
  await apiB?.app.close();
  await db?.end();
  await pg?.dispose();
});

describe('the route list', () => {
  it('is exactly the scope table, and the document requires the bearer scheme on every /api/v1 operation', () => {
    const operations: string[] = [];
    for (const [path, ops] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const key = `${method.toUpperCase()} ${path}`;
        if (path.startsWith('/api/v1')) {
          operations.push(key);
          expect({ key, security: op.security }).toEqual({ key, security: [{ bearer: [] }] });
        } else {
          expect({ key, security: op.security }).toEqual({ key, security: [] });
        }
      }
    }
    expect(operations.sort()).toEqual(Object.keys(SCOPE_TABLE).sort());
  });
});

describe('authentication and scopes', () => {
  const tokens = {} as Record<Exclude<Scope, 'admin'>, string>;

  beforeAll(async () => {
    for (const scope of ['read', 'run', 'edit'] as const) {
      tokens[scope] = (await createToken(`table-${scope}`, [scope])).token;
    }
  });

  it.each(Object.entries(SCOPE_TABLE))('%s needs "%s"', async (key, needed) => {
    const [method, path] = key.split(' ') as [string, string];
    const url = concrete(path);
    const body = CHANGING.has(method) ? {} : undefined;

    const missing = await call(apiA.base, method, url, { token: null, body });
    expect([missing.status, missing.json.message]).toEqual([
      401,
      expect.stringMatching(/^missing bearer token/),
    ]);
    const malformed = await call(apiA.base, method, url, {
      token: null,
      body,
      headers: { authorization: 'Basic dXNlcjpwYXNz' },
    });
    expect([malformed.status, malformed.json.message]).toEqual([
      401,
      expect.stringMatching(/^malformed Authorization header/),
    ]);
    const wrong = await call(apiA.base, method, url, {
      token: `pp_${randomBytes(32).toString('base64url')}`,
      body,
    });
    expect([wrong.status, wrong.json.message]).toEqual([401, 'unknown or revoked token']);

    for (const scope of ['read', 'run', 'edit', 'admin'] as const) {
      const res = await call(apiA.base, method, url, {
        token: scope === 'admin' ? TEST_ADMIN_TOKEN : tokens[scope],
        body,
      });
      if (scope === 'admin' || scope === needed) {
        expect({ scope, refused: [401, 403].includes(res.status), status: res.status }).toEqual({
          scope,
          refused: false,
          status: res.status,
        });
      } else {
        expect({ scope, status: res.status, message: res.json.message }).toEqual({
          scope,
          status: 403,
          message: expect.stringContaining(`needs the "${needed}" scope`),
        });
      }
    }
  });

  it('keeps /health, /metrics and /api/docs open', async () => {
    for (const path of ['/health', '/metrics', '/api/docs', '/api/docs-json']) {
      expect({ path, status: (await fetch(`${apiA.base}${path}`)).status }).toEqual({ path, status: 200 });
    }
  });

  it('refuses a caller without a token before parsing its body', async () => {
    // Larger than the body limit: parsed, it would be a 413.
    const huge = 'x'.repeat(9 * 1024 * 1024);
    const res = await fetch(`${apiA.base}/api/v1/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: huge,
    });
    expect(res.status).toBe(401);
  });
});

describe('tokens', () => {
  it('creates (shown once), lists (never the token or its hash) and revokes, refused at once on another API server', async () => {
    const created = await call(apiA.base, 'POST', '/api/v1/tokens', {
      body: { name: 'ci deploy', scopes: ['read', 'run'] },
    });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({
      id: expect.any(Number),
      name: 'ci deploy',
      scopes: ['read', 'run'],
      token: expect.stringMatching(/^pp_[A-Za-z0-9_-]{43}$/),
      createdAt: expect.any(String),
      revokedAt: null,
    });
    const { id, token } = created.json as { id: number; token: string };
    const stored = await db.query<{ token_hash: Buffer }>('SELECT token_hash FROM api_token WHERE id = $1', [
      id,
    ]);
    expect(stored.rows[0]?.token_hash.toString('utf8')).not.toContain(token);

    const list = await call(apiA.base, 'GET', '/api/v1/tokens');
    expect(list.status).toBe(200);
    const text = JSON.stringify(list.json);
    expect(text).not.toContain(token);
    expect(text).not.toMatch(/hash/i);
    expect((list.json.items as Array<{ id: number }>).some((t) => t.id === id)).toBe(true);

    expect((await call(apiB.base, 'GET', '/api/v1/workflows', { token })).status).toBe(200);
    expect((await call(apiA.base, 'DELETE', `/api/v1/tokens/${id}`)).status).toBe(204);
    const after = await call(apiB.base, 'GET', '/api/v1/workflows', { token });
    expect([after.status, after.json.message]).toEqual([401, 'unknown or revoked token']);
    expect((await call(apiA.base, 'DELETE', '/api/v1/tokens/987654')).status).toBe(404);
  });

  it('refuses a bad token body with a message', async () => {
    for (const [body, message] of [
      [{ name: 'x', scopes: ['root'] }, /unknown scope "root"/],
      [{ name: 'x', scopes: [] }, /"scopes" must be a non-empty array/],
      [{ scopes: ['read'] }, /missing field "name"/],
      [{ name: 'admin', scopes: ['read'] }, /reserved for ADMIN_TOKEN/],
      [{ name: 'x', scopes: ['read'], token: 'mine' }, /unknown field "token"/],
    ] as const) {
      const res = await call(apiA.base, 'POST', '/api/v1/tokens', { body });
      expect([res.status, res.json.message]).toEqual([400, expect.stringMatching(message)]);
    }
  });
});

describe('the audit log', () => {
  it('audits a changing call whose id holds a NUL (stored as U+FFFD), not drops it', async () => {
    const res = await call(apiA.base, 'DELETE', '/api/v1/schedules/nul%00here');
    expect(res.status).toBeGreaterThanOrEqual(400);
    await waitFor('the audit row of the NUL id', async () => {
      const rows = (await db.query(`SELECT target, route FROM audit_event WHERE target LIKE 'nul%here'`))
        .rows;
      return rows.length === 1 && rows[0].target === 'nul\uFFFDhere';
    });
  });

  it('records who, what, when and the result of every changing call past authentication, and nothing else', async () => {
    // Rows of other tests arrive after their responses: this test looks at its own tokens' rows
    // (and ADMIN_TOKEN's on a target no other test uses).
    const admin = await createToken('auditor-admin', ['admin']);
    const reader = await createToken('auditor-reader', ['read']);
    await call(apiA.base, 'GET', '/api/v1/workflows', { token: admin.token });
    await call(apiA.base, 'POST', '/api/v1/workflows/no_such_code/runs', { token: reader.token });
    await call(apiA.base, 'POST', '/api/v1/workflows/no_such_code/runs', { token: null });
    await call(apiB.base, 'DELETE', '/api/v1/schedules/424242');
    await call(apiA.base, 'POST', '/api/v1/workflows', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      token: reader.token,
    });
    const form = await fetch(`${apiA.base}/api/v1/task-groups`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${admin.token}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'name=x&capacity=1',
    });
    expect(form.status).toBe(415);
    // Creating calls: the new thing's id (in the answer, not the path) is the target.
    const made = await call(apiA.base, 'POST', '/api/v1/tokens', {
      token: admin.token,
      body: { name: 'auditor-made', scopes: ['read'] },
    });
    expect(made.status).toBe(201);
    const workflow = await call(apiA.base, 'POST', '/api/v1/workflows', {
      token: admin.token,
      body: { name: 'auditor-workflow', tasks: [{ name: 't', type: 'SHELL', command: 'true' }] },
    });
    expect(workflow.status).toBe(201);

    type Row = {
      tokenName: string;
      tokenId: number | null;
      method: string;
      route: string;
      target: string | null;
      status: number;
      at: string;
    };
    const ours = (r: Row) => r.tokenName.startsWith('auditor-') || r.target === '424242';
    let items: Row[] = [];
    await waitFor('the audit rows', async () => {
      const res = await call(apiA.base, 'GET', '/api/v1/audit?limit=1000');
      items = (res.json.items as Row[]).filter(ours);
      return items.length >= 6;
    });
    const rows = items.map(({ tokenName, method, route, target, status }) => ({
      tokenName,
      method,
      route,
      target,
      status,
    }));
    expect(rows).toEqual(
      expect.arrayContaining([
        {
          tokenName: 'auditor-reader',
          method: 'POST',
          route: '/api/v1/workflows/:code/runs',
          target: 'no_such_code',
          status: 403,
        },
        {
          tokenName: 'auditor-reader',
          method: 'POST',
          route: '/api/v1/workflows',
          target: null,
          status: 403,
        },
        {
          tokenName: 'admin',
          method: 'DELETE',
          route: '/api/v1/schedules/:id',
          target: '424242',
          status: 404,
        },
        {
          tokenName: 'auditor-admin',
          method: 'POST',
          route: '/api/v1/task-groups',
          target: null,
          status: 415,
        },
        {
          tokenName: 'auditor-admin',
          method: 'POST',
          route: '/api/v1/tokens',
          target: String(made.json.id),
          status: 201,
        },
        {
          tokenName: 'auditor-admin',
          method: 'POST',
          route: '/api/v1/workflows',
          target: String(workflow.json.code),
          status: 201,
        },
      ]),
    );
    // No GET, no 401.
    expect(rows).toHaveLength(6);
    expect(items.every((r) => !Number.isNaN(Date.parse(r.at)))).toBe(true);
    expect(items.find((r) => r.tokenName === 'auditor-reader')?.tokenId).toBe(reader.id);
    expect(items.find((r) => r.tokenName === 'admin')?.tokenId).toBeNull();
    const stored = JSON.stringify((await db.query('SELECT * FROM audit_event')).rows);
    for (const secret of [TEST_ADMIN_TOKEN, admin.token, reader.token, 'capacity=1']) {
      expect(stored).not.toContain(secret);
    }
    const page = await call(apiA.base, 'GET', '/api/v1/audit?limit=1&offset=1');
    expect([(page.json.items as Row[]).length, page.json.total]).toEqual([1, expect.any(Number)]);
  });
});

describe('browsers', () => {
  it('takes only JSON bodies on changing routes (415 before parsing)', async () => {
    for (const [type, body] of [
      ['application/x-www-form-urlencoded', 'name=x'],
      ['text/plain', '{"name":"x"}'],
      [
        'multipart/form-data; boundary=b',
        '--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n',
      ],
    ] as const) {
      const res = await fetch(`${apiA.base}/api/v1/task-groups`, {
        method: 'POST',
        headers: authHeaders({ 'content-type': type }),
        body,
      });
      const json = (await res.json()) as { message: string };
      expect({ type, status: res.status, message: json.message }).toEqual({
        type,
        status: 415,
        message: expect.stringMatching(/^request body must be application\/json/),
      });
    }
    // No body at all stays allowed where the route takes none.
    const noBody = await fetch(`${apiA.base}/api/v1/workflow-instances/999999/stop`, {
      method: 'POST',
      headers: authHeaders(),
    });
    expect(noBody.status).toBe(404);
  });

  it('refuses a Host that is not loopback when listening on loopback (421), and accepts loopback ones', async () => {
    const port = new URL(apiA.base).port;
    for (const host of ['evil.example.com', `evil.example.com:${port}`, `127.0.0.1.nip.io:${port}`]) {
      const res = await raw(apiA.base, '/api/v1/workflows', { host, ...authHeaders() });
      expect({ host, status: res.status }).toEqual({ host, status: 421 });
      expect(res.body).toMatch(/serves only loopback Host names/);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`]) {
      const res = await raw(apiA.base, '/api/v1/workflows', { host, ...authHeaders() });
      expect({ host, status: res.status }).toEqual({ host, status: 200 });
    }
  });

  it('sets no cookie', async () => {
    const responses = [
      await call(apiA.base, 'GET', '/api/v1/workflows'),
      await call(apiA.base, 'POST', '/api/v1/task-groups', { body: { name: 'cookie-check', capacity: 1 } }),
      await call(apiA.base, 'GET', '/api/v1/workflows', { token: null }),
    ];
    for (const r of responses) expect(r.headers.get('set-cookie')).toBeNull();
    for (const path of ['/health', '/api/docs']) {
      expect((await fetch(`${apiA.base}${path}`)).headers.get('set-cookie')).toBeNull();
    }
  });

  it('answers CORS only for CORS_ORIGINS', async () => {
    const origin = 'https://console.example.com';
    const preflight = (base: string, from: string) =>
      fetch(`${base}/api/v1/workflows`, {
        method: 'OPTIONS',
        headers: {
          origin: from,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      });
    // Off by default.
    const off = await preflight(apiA.base, origin);
    expect(off.headers.get('access-control-allow-origin')).toBeNull();
    const offGet = await fetch(`${apiA.base}/api/v1/workflows`, { headers: authHeaders({ origin }) });
    expect(offGet.headers.get('access-control-allow-origin')).toBeNull();
    // On for the configured origin only.
    const on = await preflight(apiB.base, origin);
    expect(on.status).toBeLessThan(300);
    expect(on.headers.get('access-control-allow-origin')).toBe(origin);
    expect(on.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(on.headers.get('access-control-allow-credentials')).toBeNull();
    const get = await fetch(`${apiB.base}/api/v1/workflows`, { headers: authHeaders({ origin }) });
    expect([get.status, get.headers.get('access-control-allow-origin')]).toEqual([200, origin]);
    const other = await preflight(apiB.base, 'https://evil.example.com');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('a failing token lookup', () => {
  it('is a JSON error naming nothing of the server, not an HTML page', async () => {
    const { token } = await createToken('lookup-failure', ['read']);
    await db.query('ALTER TABLE api_token RENAME TO api_token_away');
    try {
      const res = await fetch(`${apiA.base}/api/v1/workflows`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({
        statusCode: 500,
        error: 'Internal Server Error',
        message: 'internal error',
      });
    } finally {
      await db.query('ALTER TABLE api_token_away RENAME TO api_token');
    }
  });
});

describe('the OpenAPI document', () => {
  it('passes redocly lint with the recommended rules', () => {
    const dir = mkdtempSync(join(tmpdir(), 'porpoise-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(document));
      const lint = spawnSync('npx', ['redocly', 'lint', '--extends=recommended', file], {
        encoding: 'utf8',
        cwd: join(__dirname, '..', '..', '..'),
        timeout: 120_000,
      });
      expect({
        status: lint.status,
        output: lint.status === 0 ? '' : `${lint.stdout}\n${lint.stderr}`,
      }).toEqual({
        status: 0,
        output: '',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
