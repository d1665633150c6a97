/**
 * Bad input against a running API server (DESIGN.md section 7, invariant 8; issue 12,
 * deliverable 6): property-based tests with fast-check against the API booted in-process as
 * main.ts boots it, on a real Postgres and the JDBC registry there.
 *
 * The routes come from the live OpenAPI document (/api/docs-json), so a new route is fuzzed
 * without touching this file. For each route: generated path params, query strings and headers,
 * arbitrary JSON bodies, mutations of a valid body (dropped, retyped, oversized fields, huge
 * and negative numbers, unicode, deep nesting), wrong content types, truncated and invalid
 * JSON. Every answer must be below 500; every 4xx a JSON `{ statusCode, error, message }`;
 * a refused call that could change something leaves every table (row counts and contents)
 * as it was; an accepted one is readable through its GET route afterwards; /health still
 * answers at the end.
 *
 * The seed is fixed (FUZZ_SEED overrides it, FUZZ_RUNS the cases per route and property);
 * a failure prints fast-check's seed and path, and the failing request.
 */
import type { INestApplication } from '@nestjs/common';
import { runMigrations } from '@porpoise/dao';
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import fc from 'fast-check';
import { Client } from 'pg';
import { startApiUnderTest } from './support/api-under-test';

const SECRET = 'api-fuzz-test-secret-0123456789abcdef';
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const FC_OPTIONS = { seed: SEED, numRuns: RUNS, endOnFailure: true } as const;

/** Every request header this file sends besides content-type: the tests' admin token. */
function headers(): Record<string, string> {
  return authHeaders();
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface Param {
  readonly name: string;
  readonly in: 'path' | 'query' | 'header';
  readonly schema?: { type?: string; enum?: string[] };
}

interface Route {
  readonly method: Method;
  /** OpenAPI path template, e.g. /api/v1/workflows/{code} */
  readonly template: string;
  readonly params: readonly Param[];
  readonly hasBody: boolean;
  readonly key: string;
}

interface Request {
  readonly method: Method;
  readonly path: string;
  readonly headers?: Record<string, string>;
  /** Sent as it is (already encoded). */
  readonly body?: string;
}

interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
  readonly json: unknown;
}

let pg: TestServer;
let db: Client;
let app: INestApplication;
let base = '';
let routes: Route[] = [];
let snapshotSql = '';
/** How often each route answered each status: printed at the end with FUZZ_STATS=1. */
const statusTally = new Map<string, number>();
/** Existing resources, so some generated requests reach the code behind the 404. */
const fixture: Record<string, string> = {};

// ---------------------------------------------------------------------------------------------
// HTTP and the database

async function send(req: Request): Promise<Reply> {
  const res = await fetch(`${base}${req.path}`, {
    method: req.method,
    headers: { ...headers(), ...req.headers },
    body: req.body,
    redirect: 'manual',
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text, json };
}

function jsonRequest(
  method: Method,
  path: string,
  body?: unknown,
  extra: Record<string, string> = {},
): Request {
  return body === undefined
    ? { method, path, headers: extra }
    : { method, path, headers: { 'content-type': 'application/json', ...extra }, body: JSON.stringify(body) };
}

/**
 * Row count and an md5 of the contents of every table but the registry's (which the server's
 * own heartbeat changes) and the audit log's (every changing call, refused or not, is audited
 * by design: DESIGN.md section 11), in one statement: a refused call must leave all of them unchanged,
 * including rows it could have half-updated.
 */
async function buildSnapshotSql(): Promise<string> {
  const { rows } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
        AND table_name NOT LIKE 'registry\\_%' AND table_name NOT IN ('migrations', 'audit_event')
      ORDER BY table_name`,
  );
  const parts = rows.map(({ table_name: t }) => {
    const q = `"${t.replace(/"/g, '""')}"`;
    return `'${t}', (SELECT count(*)::text || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM ${q} x)`;
  });
  return `SELECT json_build_object(${parts.join(', ')}) AS s`;
}

async function snapshot(): Promise<Record<string, string>> {
  const { rows } = await db.query<{ s: Record<string, string> }>(snapshotSql);
  return rows[0]?.s ?? {};
}

// ---------------------------------------------------------------------------------------------
// Routes from the OpenAPI document, and what a valid request to each looks like

const METHODS: readonly Method[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

async function loadRoutes(): Promise<Route[]> {
  const res = await send({ method: 'GET', path: '/api/docs-json' });
  const doc = res.json as {
    paths: Record<string, Record<string, { parameters?: Param[]; requestBody?: unknown }>>;
  };
  const found: Route[] = [];
  for (const [template, ops] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(ops)) {
      const method = m.toUpperCase() as Method;
      if (!METHODS.includes(method)) continue;
      found.push({
        method,
        template,
        params: op.parameters ?? [],
        hasBody: op.requestBody !== undefined,
        key: `${method} ${template}`,
      });
    }
  }
  return found;
}

const changes = (route: Route) => route.method !== 'GET';

let unique = 0;
const next = (prefix: string) => `${prefix}${Date.now().toString(36)}${(unique++).toString(36)}`;

/** A valid body per route; routes not listed get `{}` (still fuzzed, mutations start from it). */
function validBody(route: Route): unknown {
  switch (route.key) {
    case 'POST /api/v1/workflows':
    case 'PUT /api/v1/workflows/{code}':
      return {
        name: next('fuzz-wf-'),
        description: 'fuzz',
        params: { day: '2024-01-01' },
        tasks: [
          { name: 'a', type: 'SHELL', command: 'echo a', retries: 1, timeoutMs: 1000 },
          { name: 'b', type: 'SHELL', command: 'echo b' },
        ],
        edges: [{ from: 'a', to: 'b' }],
      };
    case 'POST /api/v1/workflows/{code}/runs':
      return { params: { day: '2024-02-02' } };
    case 'POST /api/v1/schedules':
      return { workflowCode: fixture.code, cron: '0 0 * * *', timezone: 'UTC', enabled: false };
    case 'PATCH /api/v1/schedules/{id}':
      return { cron: '0 5 * * *', enabled: false };
    case 'POST /api/v1/datasources':
      return { name: next('fuzzds'), type: 'postgres', url: 'postgres://u:p@127.0.0.1:1/db' };
    case 'POST /api/v1/workflows/{code}/backfill':
      return { start: '2024-01-01', end: '2024-01-02', cron: '0 0 * * *' };
    case 'POST /api/v1/task-groups':
      return { name: next('fuzz-tg-'), capacity: 2 };
    case 'PATCH /api/v1/task-groups/{name}':
      return { capacity: 3 };
    case 'POST /api/v1/tokens':
      return { name: next('fuzz-token-'), scopes: ['read'] };
    default:
      return {};
  }
}

/** A fresh resource for each path param, so a valid request to a changing route is accepted. */
async function freshParams(route: Route): Promise<Record<string, string> | undefined> {
  const values: Record<string, string> = {};
  for (const p of route.params.filter((x) => x.in === 'path')) {
    const collection = route.template.split('/{')[0] ?? route.template;
    const value = await freshResource(collection, p.name);
    if (value === undefined) return undefined;
    values[p.name] = value;
  }
  return values;
}

async function created(req: Request, field: string): Promise<string> {
  const res = await send(req);
  if (res.status >= 300) throw new Error(`fixture ${req.method} ${req.path}: ${res.status} ${res.text}`);
  return String((res.json as Record<string, unknown>)[field]);
}

async function freshResource(collection: string, param: string): Promise<string | undefined> {
  const wf = () =>
    created(jsonRequest('POST', '/api/v1/workflows', validBody(routeOf('POST /api/v1/workflows'))), 'code');
  switch (`${collection} ${param}`) {
    case '/api/v1/workflows code':
      return wf();
    case '/api/v1/workflow-instances id':
      return created(jsonRequest('POST', `/api/v1/workflows/${await wf()}/runs`), 'workflowInstanceId');
    case '/api/v1/schedules id':
      return created(
        jsonRequest('POST', '/api/v1/schedules', {
          workflowCode: await wf(),
          cron: '0 0 * * *',
          enabled: false,
        }),
        'id',
      );
    case '/api/v1/datasources name':
      return created(
        jsonRequest('POST', '/api/v1/datasources', validBody(routeOf('POST /api/v1/datasources'))),
        'name',
      );
    case '/api/v1/task-groups name':
      return created(
        jsonRequest('POST', '/api/v1/task-groups', validBody(routeOf('POST /api/v1/task-groups'))),
        'name',
      );
    case '/api/v1/tokens id':
      return created(jsonRequest('POST', '/api/v1/tokens', validBody(routeOf('POST /api/v1/tokens'))), 'id');
    case '/api/v1/backfills id':
      return created(
        jsonRequest('POST', `/api/v1/workflows/${await wf()}/backfill`, {
          start: '2024-01-01',
          end: '2024-01-01',
          cron: '0 0 * * *',
        }),
        'backfillId',
      );
    default:
      return undefined;
  }
}

function routeOf(key: string): Route {
  const route = routes.find((r) => r.key === key);
  if (!route) throw new Error(`no route ${key} in the OpenAPI document`);
  return route;
}

function fill(template: string, values: Record<string, string>, encode = true): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = values[name] ?? '';
    return encode ? encodeURIComponent(v) : v;
  });
}

// ---------------------------------------------------------------------------------------------
// The invariants

function describeRequest(req: Request): string {
  const body = req.body === undefined ? '' : ` body=${JSON.stringify(req.body.slice(0, 300))}`;
  return `${req.method} ${req.path.slice(0, 300)} headers=${JSON.stringify(req.headers ?? {})}${body}`;
}

/**
 * Sends one request and checks every invariant; throws (failing the property) with the
 * request in the message.
 */
async function check(route: Route, req: Request): Promise<Reply> {
  const before = changes(route) ? await snapshot() : undefined;
  const res = await send(req);
  const tally = `${route.key} ${res.status}`;
  statusTally.set(tally, (statusTally.get(tally) ?? 0) + 1);
  const fail = (what: string) => {
    throw new Error(
      `${what}\n  request: ${describeRequest(req)}\n  answer: ${res.status} ${res.text.slice(0, 500)}`,
    );
  };
  if (res.status >= 500) fail(`status ${res.status} (never >= 500 for bad input)`);
  if (res.status >= 400) {
    const body = res.json as { statusCode?: unknown; message?: unknown } | undefined;
    if (!res.contentType.includes('application/json')) fail('a 4xx without a JSON body');
    if (body?.statusCode !== res.status) fail('a 4xx whose body has no matching statusCode');
    if (typeof body?.message !== 'string' || body.message.trim() === '') fail('a 4xx without a message');
    if (before) {
      const after = await snapshot();
      const changed = Object.keys(after).filter((t) => after[t] !== before[t]);
      if (changed.length > 0) fail(`refused, yet tables changed: ${changed.join(', ')}`);
    }
  } else if (changes(route) && res.status < 300) {
    await expectReadable(route, req, res, fail);
  }
  return res;
}

function hasGetRoute(path: string): boolean {
  return routes.some(
    (r) =>
      r.method === 'GET' &&
      new RegExp(`^${r.template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`).test(
        path,
      ),
  );
}

/** The key a created resource is read back by. */
function createdId(body: Record<string, unknown>): string | number | undefined {
  for (const key of ['code', 'id', 'name']) {
    const v = body[key];
    if (typeof v === 'string' || typeof v === 'number') return v;
  }
  return undefined;
}

/** An accepted change is fully there: its GET route answers it. */
async function expectReadable(
  route: Route,
  req: Request,
  res: Reply,
  fail: (what: string) => never,
): Promise<void> {
  const body = (res.json ?? {}) as Record<string, unknown>;
  const path = req.path.split('?')[0] ?? req.path;
  let readPath: string | undefined;
  let expectGone = false;
  if (path.startsWith('/api/v1/tokens')) {
    // Tokens have no GET of their own: the list shows each, and a revoked one stays listed with
    // its revokedAt (DELETE revokes; it does not erase who had access).
    const id = route.method === 'DELETE' ? Number(path.split('/').pop()) : createdId(body);
    const list = await send({ method: 'GET', path: '/api/v1/tokens?limit=1000' });
    const listed = list.json as { items?: unknown[] } | unknown[] | undefined;
    const rows = (Array.isArray(listed) ? listed : (listed?.items ?? [])) as Array<Record<string, unknown>>;
    const row = rows.find((r) => String(r.id) === String(id));
    if (!row) fail(`accepted, yet token ${String(id)} is not in GET /api/v1/tokens`);
    if ((route.method === 'DELETE') !== (row?.revokedAt !== null)) {
      fail(`token ${String(id)} after ${route.method}: revokedAt=${JSON.stringify(row?.revokedAt)}`);
    }
    return;
  }
  if (typeof body.workflowInstanceId === 'number') {
    readPath = `/api/v1/workflow-instances/${body.workflowInstanceId}`;
  } else if (typeof body.backfillId === 'number') {
    readPath = `/api/v1/backfills/${body.backfillId}`;
  } else if (route.method === 'POST' && !route.template.includes('{')) {
    if (createdId(body) !== undefined) readPath = `${path}/${encodeURIComponent(String(createdId(body)))}`;
  } else if (route.method === 'DELETE') {
    readPath = path;
    expectGone = true;
  } else {
    readPath = path.replace(/\/(cancel|stop|pause|resume|rerun|resume-failed)$/, '');
  }
  // Only where the document has a GET route for it (a route without one, such as a token that is
  // shown once, has nothing to read back).
  if (!readPath || !hasGetRoute(readPath)) return;
  const read = await send({ method: 'GET', path: readPath });
  if (expectGone) {
    if (read.status !== 404) fail(`deleted, yet GET ${readPath} answers ${read.status}`);
    return;
  }
  if (read.status !== 200) {
    fail(`accepted, yet GET ${readPath} answers ${read.status} ${read.text.slice(0, 300)}`);
  }
  const isCreated = readPath === `${path}/${encodeURIComponent(String(createdId(body)))}`;
  if (route.method === 'PUT' || route.method === 'PATCH' || isCreated) {
    // The stored resource is what the answer said was stored (counters that move on their own aside).
    const got = read.json as Record<string, unknown>;
    for (const [k, v] of Object.entries(body)) {
      if (['held', 'waiting', 'nextFireTime', 'updatedAt'].includes(k)) continue;
      if (JSON.stringify(got[k]) !== JSON.stringify(v)) {
        fail(
          `accepted, yet GET ${readPath} has ${k}=${JSON.stringify(got[k])} instead of ${JSON.stringify(v)}`,
        );
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Generators

const unicode = fc.string({ unit: 'binary', maxLength: 40 });
const nastyStrings = fc.constantFrom(
  '',
  ' ',
  '0',
  '-1',
  '-9223372036854775809',
  '9223372036854775808',
  '99999999999999999999999999',
  '1e309',
  '1.5',
  '0x10',
  'NaN',
  'Infinity',
  'null',
  'undefined',
  'true',
  '[]',
  '{}',
  '__proto__',
  'constructor',
  "'; DROP TABLE workflow_definition; --",
  '../../etc/passwd',
  '\u0000',
  '١٢٣',
  '💥',
  '\uFEFF1',
  'a'.repeat(5000),
);
const huge = fc.constantFrom(
  1e308,
  -1e308,
  2 ** 53 + 1,
  -(2 ** 63),
  2 ** 64,
  -1,
  0,
  1.000001,
  -0,
  4294967296,
);
const scalar = fc.oneof(
  unicode,
  nastyStrings,
  huge,
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.constant(null),
);

/** A path param: a generated value, the existing fixture's value, or a raw (not encoded) one. */
function pathParam(name: string): fc.Arbitrary<{ value: string; raw: boolean }> {
  return fc.oneof(
    fc.record({ value: fc.oneof(unicode, nastyStrings, fc.integer().map(String)), raw: fc.constant(false) }),
    fc.record({ value: fc.constant(fixture[name] ?? 'x'), raw: fc.constant(false) }),
    fc.record({
      value: fc.constantFrom('%', '%zz', '%E0%A4%A', '%00', 'a%2Fb', '..', '.', '%2e%2e', ';a=b'),
      raw: fc.constant(true),
    }),
  );
}

/** A query string: declared params and stray ones, generated values, repeated and bracketed keys. */
function queryString(route: Route): fc.Arbitrary<string> {
  const declared = route.params.filter((p) => p.in === 'query').map((p) => p.name);
  const key = fc.oneof(
    fc.constantFrom(...(declared.length ? declared : ['limit'])),
    fc.constantFrom(
      'limit[]',
      'offset[a]',
      'state[0]',
      '__proto__',
      'constructor[prototype]',
      '',
      'a'.repeat(300),
    ),
    unicode,
  );
  const value = fc.oneof(
    scalar.map((v) => String(v)),
    fc.constant(''),
  );
  const pair = fc
    .tuple(key, value, fc.boolean())
    .map(
      ([k, v, rawKey]) =>
        `${rawKey ? k.replace(/[&=#]/g, '') : encodeURIComponent(k)}=${encodeURIComponent(v)}`,
    );
  return fc.array(pair, { maxLength: 6 }).map((pairs) => (pairs.length ? `?${pairs.join('&')}` : ''));
}

/** JSON nested `depth` levels deep, as text (deeper than any recursive code should walk). */
const deepJson = fc
  .tuple(fc.integer({ min: 100, max: 20_000 }), fc.boolean())
  .map(([depth, arrays]) =>
    arrays ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth),
  );

/** Bodies that are JSON, but of any shape and size; a few only expressible as raw text. */
const anyJsonBody = fc.oneof(
  { weight: 5, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: deepJson },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '1e400',
      '-1e400',
      '123456789012345678901234567890',
      '"\\ud800"',
      '{"__proto__":{"x":1}}',
      'null',
      '""',
      '[]',
      '0',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 400_000 }).map((n) => JSON.stringify({ name: 'x'.repeat(n) })),
  },
);

type Mutation =
  | { op: 'drop' | 'null'; path: number[] }
  | { op: 'set'; path: number[]; value: unknown }
  | { op: 'add'; path: number[]; key: string; value: unknown };

const anyValue = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.integer({ min: 10_000, max: 300_000 }).map((n) => '\u{1F4A5}'.repeat(n / 2)) },
  { weight: 1, arbitrary: fc.integer({ min: 50, max: 3000 }).map((d) => nest(d)) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1000, max: 50_000 }).map((n) => Array.from({ length: n }, (_, i) => i)),
  },
);

function nest(depth: number): unknown {
  let v: unknown = 'deep';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    op: fc.constantFrom('drop' as const, 'null' as const),
    path: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    op: fc.constant('set' as const),
    path: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
    value: anyValue,
  }),
  fc.record({
    op: fc.constant('add' as const),
    path: fc.array(fc.nat(), { maxLength: 3 }),
    key: fc.oneof(unicode, fc.constantFrom('__proto__', 'constructor', 'id', 'version', 'createdAt')),
    value: anyValue,
  }),
);

/** Applies mutations to a copy of `body`, walking the path by index into keys/elements. */
function mutate(body: unknown, mutations: Mutation[]): unknown {
  const root: { v: unknown } = { v: structuredClone(body) };
  for (const m of mutations) {
    let parent: Record<string, unknown> | unknown[] = root;
    let key: string | number = 'v';
    const steps = m.op === 'add' ? [...m.path] : m.path;
    for (const step of steps) {
      const current: unknown = parent[key as string];
      if (typeof current !== 'object' || current === null) break;
      const keys: Array<string | number> = Array.isArray(current)
        ? current.map((_: unknown, i: number) => i)
        : Object.keys(current);
      if (keys.length === 0) break;
      parent = current as Record<string, unknown>;
      key = keys[step % keys.length] ?? key;
    }
    const target = parent;
    if (m.op === 'drop') {
      if (Array.isArray(target)) target.splice(Number(key), 1);
      else delete target[key as string];
    } else if (m.op === 'null') target[key as string] = null;
    else if (m.op === 'set') target[key as string] = m.value;
    else if (m.op === 'add') {
      const obj = target[key as string];
      if (typeof obj === 'object' && obj !== null && !Array.isArray(obj)) {
        Object.defineProperty(obj, m.key, {
          value: m.value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else target[key as string] = m.value;
    }
  }
  return root.v;
}

/** A body sent with the wrong content type, or JSON that does not parse. */
const wrongEncoding = fc.oneof(
  fc.record({
    contentType: fc.constantFrom(
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
      'application/json; charset=utf-16',
      'application/json; charset=latin1',
      'application/json; charset=nope',
      'application/vnd.api+json',
      'application/json, text/plain',
      '',
    ),
    how: fc.constantFrom('valid', 'form', 'garbage'),
    cut: fc.constant(-1),
  }),
  fc.record({
    contentType: fc.constant('application/json'),
    how: fc.constantFrom('truncated', 'garbage', 'bom', 'empty'),
    cut: fc.nat(),
  }),
);

function encodeBody(
  valid: unknown,
  e: { contentType: string; how: string; cut: number },
  garbage: string,
): { body: string; contentType: string } {
  const text = JSON.stringify(valid);
  switch (e.how) {
    case 'form':
      return {
        body: Object.entries(valid as Record<string, unknown>)
          .map(
            ([k, v]) =>
              `${encodeURIComponent(k)}=${encodeURIComponent(typeof v === 'string' ? v : JSON.stringify(v))}`,
          )
          .join('&'),
        contentType: e.contentType,
      };
    case 'truncated':
      return {
        body: text.slice(0, text.length > 1 ? e.cut % (text.length - 1) : 0),
        contentType: e.contentType,
      };
    case 'garbage':
      return { body: garbage, contentType: e.contentType };
    case 'bom':
      return { body: `\uFEFF${text}`, contentType: e.contentType };
    case 'empty':
      return { body: '', contentType: e.contentType };
    default:
      return { body: text, contentType: e.contentType };
  }
}

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  pg = await startPostgres();
  await runMigrations(pg.endpoint);
  db = new Client({ connectionString: pg.endpoint });
  await db.connect();
  ({ app, base } = await startApiUnderTest(pg.endpoint, SECRET));
  routes = await loadRoutes();
  snapshotSql = await buildSnapshotSql();
  for (const [collection, param] of [
    ['/api/v1/workflows', 'code'],
    ['/api/v1/workflow-instances', 'id'],
    ['/api/v1/datasources', 'name'],
  ] as const) {
    fixture[param === 'id' ? 'id' : param] = (await freshResource(collection, param)) ?? '';
  }
});

afterAll(async () => {
  if (process.env.FUZZ_STATS) {
    console.log(
      [...statusTally]
        .sort()
        .map(([k, n]) => `${k}: ${n}`)
        .join('\n'),
    );
  }
  await app?.close();
  await db?.end();
  await pg?.dispose();
});

/** Runs `property` for every route `which` selects, reporting the route with a failure. */
async function forEveryRoute(
  which: (r: Route) => boolean,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  property: (route: Route) => fc.IAsyncProperty<any>,
): Promise<void> {
  const selected = routes.filter(which);
  expect(selected.length).toBeGreaterThan(0);
  for (const route of selected) {
    try {
      await fc.assert(property(route), FC_OPTIONS);
    } catch (err) {
      // fast-check prints the whole counterexample (megabytes for a huge body): keep each line short.
      const cause = err instanceof Error && err.cause instanceof Error ? `\n${err.cause.message}` : '';
      const message = `${err instanceof Error ? err.message : String(err)}${cause}`
        .split('\n')
        .map((line) => (line.length > 2000 ? `${line.slice(0, 2000)}… (${line.length} chars)` : line))
        .join('\n');
      throw new Error(`${route.key}: ${message}`);
    }
  }
}

const templatePath = (route: Route, values: Record<string, { value: string; raw: boolean }>) =>
  route.template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = values[name] ?? { value: '', raw: false };
    return v.raw ? v.value : encodeURIComponent(v.value);
  });

/** Declared header params (Idempotency-Key): printable ASCII only, as HTTP allows, up to 1,000 long. */
function headerParams(route: Route): fc.Arbitrary<Record<string, string>> {
  const names = route.params.filter((p) => p.in === 'header').map((p) => p.name);
  const value = fc.oneof(
    fc.string({
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
      maxLength: 40,
    }),
    fc.integer({ min: 150, max: 1000 }).map((n) => 'k'.repeat(n)),
    fc.constantFrom('', ' ', '0', '-1'),
  );
  return fc.record(Object.fromEntries(names.map((n) => [n, value])), { requiredKeys: [] }) as fc.Arbitrary<
    Record<string, string>
  >;
}

function pathParams(route: Route): fc.Arbitrary<Record<string, { value: string; raw: boolean }>> {
  const names = route.params.filter((p) => p.in === 'path').map((p) => p.name);
  return fc.record(Object.fromEntries(names.map((n) => [n, pathParam(n)])));
}

describe('every route of the OpenAPI document, fuzzed (seed printed on failure)', () => {
  it('finds the routes in the live OpenAPI document', () => {
    expect(routes.map((r) => r.key)).toEqual(
      expect.arrayContaining([
        'POST /api/v1/workflows',
        'GET /api/v1/workflow-instances/{id}',
        'DELETE /api/v1/schedules/{id}',
      ]),
    );
  });

  it('a valid request to each changing route is accepted and readable afterwards', async () => {
    for (const route of routes.filter(changes)) {
      const values = await freshParams(route);
      if (!values) continue;
      const body = route.hasBody ? validBody(route) : undefined;
      const res = await check(route, jsonRequest(route.method, fill(route.template, values), body));
      // The base case of every mutation below must really be valid, or the mutations test nothing.
      if (route.hasBody) {
        expect({ route: route.key, status: res.status < 300 ? 'accepted' : res.text }).toEqual({
          route: route.key,
          status: 'accepted',
        });
      }
    }
  });

  it('generated path params, query strings and header params: never a 500, a JSON 4xx, nothing half-stored', async () => {
    await forEveryRoute(
      () => true,
      (route) =>
        fc.asyncProperty(
          pathParams(route),
          queryString(route),
          headerParams(route),
          async (params, query, extra) => {
            const body = route.hasBody ? validBody(route) : undefined;
            const req = jsonRequest(route.method, templatePath(route, params) + query, body, extra);
            await check(route, req);
          },
        ),
    );
  });

  it('arbitrary JSON bodies (any shape, huge numbers, deep nesting, huge strings) on every changing route', async () => {
    await forEveryRoute(changes, (route) =>
      fc.asyncProperty(pathParams(route), anyJsonBody, async (params, body) => {
        await check(route, {
          method: route.method,
          path: templatePath(route, params),
          headers: { 'content-type': 'application/json' },
          body,
        });
      }),
    );
  });

  it('mutations of a valid body: dropped, retyped, oversized fields, unknown keys, unicode, nesting', async () => {
    await forEveryRoute(
      (r) => r.hasBody,
      (route) =>
        fc.asyncProperty(
          fc.array(mutation, { minLength: 1, maxLength: 3 }),
          fc.boolean(),
          async (mutations, existing) => {
            const values = existing
              ? Object.fromEntries(
                  route.params.filter((p) => p.in === 'path').map((p) => [p.name, fixture[p.name] ?? 'x']),
                )
              : ((await freshParams(route)) ?? {});
            const body = mutate(validBody(route), mutations);
            await check(route, jsonRequest(route.method, fill(route.template, values), body));
          },
        ),
    );
  });

  it('wrong content types, truncated and invalid JSON', async () => {
    await forEveryRoute(changes, (route) =>
      fc.asyncProperty(
        wrongEncoding,
        fc.string({ unit: 'binary', maxLength: 200 }),
        async (encoding, garbage) => {
          const values = Object.fromEntries(
            route.params.filter((p) => p.in === 'path').map((p) => [p.name, fixture[p.name] ?? 'x']),
          );
          const { body, contentType } = encodeBody(validBody(route), encoding, garbage);
          await check(route, {
            method: route.method,
            path: fill(route.template, values),
            headers: contentType ? { 'content-type': contentType } : {},
            body,
          });
        },
      ),
    );
  });

  it('still answers /health afterwards', async () => {
    const res = await send({ method: 'GET', path: '/health' });
    expect(res.status).toBe(200);
  });
});
