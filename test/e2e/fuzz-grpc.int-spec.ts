/**
 * Bad input against running nodes over gRPC (DESIGN.md section 7, invariant 8; issue 12,
 * deliverable 6). A master and a worker run as their own processes from the built code
 * (npm run build first) on a real Postgres with the JDBC registry; an API server drives a real
 * workflow through them at the end.
 *
 * Every method of every service in proto/ is found from the .proto files (a new method is
 * fuzzed without touching this file) and called with messages this file encodes itself from
 * the descriptors, so it can send what no generated client would: random values of every
 * field type (out-of-range varints, invalid UTF-8, huge strings), unknown fields, wrong wire
 * types, duplicated and truncated fields, and plain random bytes; each with the right cluster
 * secret (so validation is reached), with a wrong one, and with none.
 *
 * The answer is OK or a client-error code with a message (never INTERNAL or UNKNOWN); without
 * the secret always UNAUTHENTICATED; a refused call changes no table and leaves no task on the
 * worker; and afterwards both processes are alive, answer Health, and run a real workflow.
 * FUZZ_SEED and FUZZ_RUNS as in apps/api-server/test/fuzz.int-spec.ts.
 */
import { Client as GrpcClient, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import fc from 'fast-check';
import { Client } from 'pg';
import { startNode, stopNodes, type NodeProcess } from './cluster-processes';

const SECRET = 'grpc-fuzz-cluster-secret-0123456789';
const SECRET_KEY = 'x-porpoise-secret';
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const FC_OPTIONS = { seed: SEED, numRuns: RUNS, endOnFailure: true } as const;
const PROTO_ROOT = join(__dirname, '..', '..', 'proto');

/** Codes that say "your call is wrong" (or "not here"), each with a message. */
const CLIENT_ERRORS = new Set([
  status.INVALID_ARGUMENT,
  status.UNAUTHENTICATED,
  status.NOT_FOUND,
  status.FAILED_PRECONDITION,
  status.OUT_OF_RANGE,
  status.ALREADY_EXISTS,
  status.PERMISSION_DENIED,
  status.RESOURCE_EXHAUSTED,
  status.UNIMPLEMENTED,
]);

// ---------------------------------------------------------------------------------------------
// Every method of every service in proto/

interface Method {
  readonly service: string;
  readonly name: string;
  readonly path: string;
  readonly requestType: string;
  readonly responseStream: boolean;
  readonly responseDeserialize: (b: Buffer) => unknown;
}

interface FieldDescriptor {
  readonly name: string;
  readonly number: number;
  readonly label: string;
  readonly type: string;
  readonly typeName: string;
}

interface MessageDescriptor {
  readonly name: string;
  readonly field: FieldDescriptor[];
  readonly nestedType: MessageDescriptor[];
  readonly options?: { mapEntry?: boolean } | null;
}

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return protoFiles(path);
    return name.endsWith('.proto') ? [relative(PROTO_ROOT, path)] : [];
  });
}

const definition = loadSync(protoFiles(PROTO_ROOT), {
  includeDirs: [PROTO_ROOT],
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** Message descriptors by fully qualified name, nested map-entry types included. */
const messages = new Map<string, MessageDescriptor>();
for (const [name, value] of Object.entries(definition)) {
  const type = (value as { format?: string; type?: unknown }).type as MessageDescriptor | undefined;
  if ((value as { format?: string; type?: unknown }).format === 'Protocol Buffer 3 DescriptorProto' && type) {
    messages.set(name, type);
  }
}

const methods: Method[] = Object.entries(definition).flatMap(([service, value]) => {
  if ('format' in value || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, MethodDefinition<unknown, unknown>>).map(([name, m]) => ({
    service,
    name,
    path: m.path,
    requestType: `${service.slice(0, service.lastIndexOf('.'))}.${
      (m.requestType as unknown as { type: { name: string } }).type.name
    }`,
    responseStream: m.responseStream,
    responseDeserialize: m.responseDeserialize,
  }));
});

/** Resolves a field's type name relative to the message's package, or its nested map entry. */
function fieldMessage(
  owner: MessageDescriptor,
  ownerName: string,
  field: FieldDescriptor,
): MessageDescriptor | undefined {
  const nested = owner.nestedType.find((n) => n.name === field.typeName);
  if (nested) return nested;
  const pkg = ownerName.slice(0, ownerName.lastIndexOf('.'));
  return messages.get(
    field.typeName.includes('.') ? field.typeName.replace(/^\./, '') : `${pkg}.${field.typeName}`,
  );
}

// ---------------------------------------------------------------------------------------------
// A protobuf wire encoder that also writes what the schema forbids

function varint(value: bigint): number[] {
  let v = BigInt.asUintN(64, value);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

const key = (number: number, wire: number) => varint((BigInt(number) << 3n) | BigInt(wire));
const lengthDelimited = (number: number, bytes: Uint8Array | number[]) => [
  ...key(number, 2),
  ...varint(BigInt(bytes.length)),
  ...bytes,
];

/** One encoded field value: bytes of the right wire type for its declared type. */
type Encoded = number[];

const int64Edge = fc.constantFrom(
  0n,
  1n,
  -1n,
  2n ** 53n + 1n,
  2n ** 63n - 1n,
  -(2n ** 63n),
  2n ** 64n - 1n,
  2n ** 31n,
);
/** Mostly small positive values, so that some messages pass validation and reach deeper code. */
const anyInt = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt({ min: 1n, max: 100n }) },
  { weight: 1, arbitrary: int64Edge },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }) },
);

/**
 * Instance ids far above the ones the real workflow at the end gets. A TakeOver with the secret is
 * a master's word: for a task the worker does not know it remembers the epoch and refuses that
 * task's later Dispatch (by design), so a fuzzed id 1 would block the real task 1.
 */
const anyId = fc.oneof(
  { weight: 6, arbitrary: fc.bigInt({ min: 1_000_000n, max: 1_000_100n }) },
  { weight: 1, arbitrary: int64Edge.filter((v) => v > 1_000_000n || v <= 0n) },
  {
    weight: 1,
    arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }).filter((v) => v > 1_000_000n || v <= 0n),
  },
);

/** A few field names get values that keep a Dispatch harmless when it is accepted. */
const SAFE_COMMAND = fc.oneof(
  fc.constantFrom('true', 'exit 3', ': fuzz', '', ' '),
  fc.string({ maxLength: 60 }).map((s) => `: ${s.replace(/[^A-Za-z0-9 _.,-]/g, '')}`),
);

function stringBytes(name: string): fc.Arbitrary<Uint8Array> {
  const utf8 = (s: string) => new TextEncoder().encode(s);
  if (name === 'command') return SAFE_COMMAND.map(utf8);
  // A task that is accepted reports to this address: nowhere (port 1) rather than a real peer.
  if (name === 'masterAddress' || name === 'newMasterAddress' || name === 'workerAddress') {
    return fc
      .constantFrom(
        '127.0.0.1:1',
        '127.0.0.1:1',
        '',
        'nohost',
        'a:99999',
        '[::1]:1',
        `${'x'.repeat(300_000)}:1`,
      )
      .map(utf8);
  }
  // Valid often enough that some Dispatches pass validation and reach the executor.
  if (name === 'payloadJson') {
    return fc
      .oneof(
        fc.constantFrom('', '{}'),
        fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
      )
      .map(utf8);
  }
  if (name === 'key' || name === 'taskName') {
    return fc
      .oneof(fc.constantFrom('DAY', 'a', '_x'), fc.string({ unit: 'binary', maxLength: 20 }))
      .map(utf8);
  }
  if (name === 'taskType') {
    return fc.constantFrom('SHELL', 'EMPTY', 'HTTP', 'SQL', 'shell', '', 'SUB_WORKFLOW', '💥').map(utf8);
  }
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 50 }).map(utf8) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => utf8(JSON.stringify(v))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.integer({ min: 10_000, max: 300_000 }).map((n) => utf8('x'.repeat(n))) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array([0xff, 0xfe, 0xc0, 0x80])) },
  );
}

function fieldValue(
  owner: MessageDescriptor,
  ownerName: string,
  field: FieldDescriptor,
  depth: number,
): fc.Arbitrary<Encoded> {
  switch (field.type) {
    case 'TYPE_STRING':
    case 'TYPE_BYTES':
      return stringBytes(field.name).map((b) => lengthDelimited(field.number, b));
    case 'TYPE_MESSAGE': {
      const nested = fieldMessage(owner, ownerName, field);
      if (!nested || depth > 4) {
        return fc.uint8Array({ maxLength: 20 }).map((b) => lengthDelimited(field.number, b));
      }
      return messageBytes(nested, ownerName, depth + 1).map((b) => lengthDelimited(field.number, b));
    }
    case 'TYPE_DOUBLE':
    case 'TYPE_FIXED64':
    case 'TYPE_SFIXED64':
      return fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => [...key(field.number, 1), ...b]);
    case 'TYPE_FLOAT':
    case 'TYPE_FIXED32':
    case 'TYPE_SFIXED32':
      return fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => [...key(field.number, 5), ...b]);
    default:
      // Every varint type: int32/64, uint, sint, bool, enum, out of range on purpose too.
      return (field.name.endsWith('InstanceId') ? anyId : anyInt).map((v) => [
        ...key(field.number, 0),
        ...varint(v),
      ]);
  }
}

/** A field sent with a wire type other than its own, or a field number the schema lacks. */
const strayField = fc.oneof(
  fc.record({
    number: fc.integer({ min: 1, max: 2 ** 29 - 1 }),
    wire: fc.constantFrom(0, 1, 2, 5),
    payload: fc.uint8Array({ maxLength: 16 }),
  }),
  fc.record({
    number: fc.integer({ min: 1, max: 12 }),
    wire: fc.constantFrom(0, 1, 2, 5),
    payload: fc.uint8Array({ maxLength: 16 }),
  }),
);

function encodeStray(s: { number: number; wire: number; payload: Uint8Array }): Encoded {
  switch (s.wire) {
    case 0:
      return [...key(s.number, 0), ...varint(BigInt(s.payload[0] ?? 0) * 1_000_003n)];
    case 1:
      return [...key(s.number, 1), ...Array.from({ length: 8 }, (_, i) => s.payload[i] ?? 0)];
    case 5:
      return [...key(s.number, 5), ...Array.from({ length: 4 }, (_, i) => s.payload[i] ?? 0)];
    default:
      return lengthDelimited(s.number, s.payload);
  }
}

/** A message of the given descriptor: each field absent, present, or repeated; stray fields mixed in. */
function messageBytes(desc: MessageDescriptor, name: string, depth = 0): fc.Arbitrary<Uint8Array> {
  const fields = desc.field.map((f) =>
    fc.oneof(
      { weight: 1, arbitrary: fc.constant<Encoded[]>([]) },
      { weight: 4, arbitrary: fieldValue(desc, name, f, depth).map((e) => [e]) },
      { weight: 1, arbitrary: fc.array(fieldValue(desc, name, f, depth), { minLength: 2, maxLength: 3 }) },
    ),
  );
  return fc
    .tuple(fc.tuple(...fields), depth === 0 ? fc.array(strayField, { maxLength: 3 }) : fc.constant([]))
    .map(([encoded, strays]) => {
      const parts = [...encoded.flat(), ...strays.map(encodeStray)];
      return Uint8Array.from(parts.flat());
    });
}

/** What is sent: a generated message, the same cut short, or random bytes. */
function requestBytes(method: Method): fc.Arbitrary<{ kind: string; bytes: Uint8Array }> {
  const desc = messages.get(method.requestType);
  const generated = desc ? messageBytes(desc, method.requestType) : fc.uint8Array({ maxLength: 64 });
  return fc.oneof(
    { weight: 6, arbitrary: generated.map((bytes) => ({ kind: 'message', bytes })) },
    {
      weight: 1,
      arbitrary: fc.tuple(generated, fc.nat()).map(([b, cut]) => ({
        kind: 'truncated',
        bytes: b.slice(0, b.length > 1 ? 1 + (cut % (b.length - 1)) : 0),
      })),
    },
    {
      weight: 2,
      arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ kind: 'random bytes', bytes })),
    },
  );
}

// ---------------------------------------------------------------------------------------------

let pg: TestServer;
let db: Client;
let nodes: NodeProcess[] = [];
let api = '';
let master: NodeProcess;
let worker: NodeProcess;
const clients = new Map<string, GrpcClient>();
let snapshotSql = '';

function client(address: string): GrpcClient {
  let c = clients.get(address);
  if (!c) {
    c = new GrpcClient(address, credentials.createInsecure());
    clients.set(address, c);
  }
  return c;
}

/** The nodes that serve a service: workers the worker service, masters the master's, both Health. */
function targets(method: Method): NodeProcess[] {
  if (/Worker/.test(method.service)) return [worker];
  if (/Master/.test(method.service)) return [master];
  return [master, worker];
}

interface Answer {
  readonly code: status;
  readonly details: string;
  readonly response?: Buffer;
}

function call(
  node: NodeProcess,
  method: Method,
  bytes: Uint8Array,
  secret: string | undefined,
): Promise<Answer> {
  const metadata = new Metadata();
  if (secret !== undefined) metadata.set(SECRET_KEY, secret);
  const options = { deadline: new Date(Date.now() + 15_000) };
  if (method.responseStream) {
    // A server stream (Health.Watch): its first message or its error is the answer.
    return new Promise((resolve) => {
      const stream = client(`127.0.0.1:${node.port}`).makeServerStreamRequest<Buffer, Buffer>(
        method.path,
        (b) => b,
        (b) => b,
        Buffer.from(bytes),
        metadata,
        options,
      );
      stream.on('data', (response: Buffer) => {
        resolve({ code: status.OK, details: '', response });
        stream.cancel();
      });
      stream.on('error', (err: ServiceError) => resolve({ code: err.code, details: err.details }));
    });
  }
  return new Promise((resolve) => {
    client(`127.0.0.1:${node.port}`).makeUnaryRequest<Buffer, Buffer>(
      method.path,
      (b) => b,
      (b) => b,
      Buffer.from(bytes),
      metadata,
      options,
      (err: ServiceError | null, response?: Buffer) =>
        resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: '', response }),
    );
  });
}

async function snapshot(): Promise<Record<string, string>> {
  return (await db.query<{ s: Record<string, string> }>(snapshotSql)).rows[0]?.s ?? {};
}

async function buildSnapshotSql(): Promise<string> {
  const { rows } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
        AND table_name NOT LIKE 'registry\\_%' AND table_name <> 'migrations'
      ORDER BY table_name`,
  );
  const parts = rows.map(
    ({ table_name: t }) =>
      `'${t}', (SELECT count(*)::text || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM "${t}" x)`,
  );
  return `SELECT json_build_object(${parts.join(', ')}) AS s`;
}

/** The task instance id a Dispatch names, read back with the loaded (lenient) decoder. */
const dispatchDecoder = (
  definition['porpoise.v1.WorkerTaskService'] as Record<string, MethodDefinition<unknown, unknown>>
).Dispatch?.requestDeserialize;

function dispatchedTaskId(bytes: Uint8Array): number | undefined {
  try {
    const req = dispatchDecoder?.(Buffer.from(bytes)) as { task?: { taskInstanceId?: unknown } } | undefined;
    const id = req?.task?.taskInstanceId;
    return typeof id === 'number' && Number.isSafeInteger(id) && id > 0 ? id : undefined;
  } catch {
    return undefined;
  }
}

const readLogMethod = () => methods.find((m) => m.name === 'ReadLog');

/** Whether the worker holds anything (a log) for a task id: a refused Dispatch must leave nothing. */
async function workerKnows(taskId: number): Promise<boolean> {
  const m = readLogMethod();
  if (!m) return false;
  const bytes = Uint8Array.from([...key(1, 0), ...varint(BigInt(taskId))]);
  const answer = await call(worker, m, bytes, SECRET);
  if (answer.code !== status.OK || !answer.response) return false;
  return (m.responseDeserialize(answer.response) as { found?: boolean }).found === true;
}

const acceptedTaskIds = new Set<number>();
/** How often each method answered each code (and Dispatch accepted): printed with FUZZ_STATS=1. */
const statusTally = new Map<string, number>();

async function check(
  node: NodeProcess,
  method: Method,
  sent: { kind: string; bytes: Uint8Array },
  secret: string | undefined,
): Promise<void> {
  const before = await snapshot();
  const answer = await call(node, method, sent.bytes, secret);
  const fail = (what: string): never => {
    // FUZZ_DUMP=file keeps the failing request's bytes whole (the message shows the first 200).
    if (process.env.FUZZ_DUMP) writeFileSync(process.env.FUZZ_DUMP, sent.bytes);
    throw new Error(
      `${what}\n  call: ${method.path} on ${node.role} (${secret === SECRET ? 'right secret' : secret === undefined ? 'no secret' : 'wrong secret'}), ` +
        `${sent.kind} ${Buffer.from(sent.bytes).toString('hex').slice(0, 400)}\n  answer: ${status[answer.code]} ${answer.details}`,
    );
  };
  if (node.child.exitCode !== null || node.child.signalCode !== null) fail(`the ${node.role} process died`);
  if (secret !== SECRET) {
    if (answer.code !== status.UNAUTHENTICATED) {
      fail('a call without the right secret was not refused UNAUTHENTICATED');
    }
  } else if (answer.code !== status.OK) {
    if (!CLIENT_ERRORS.has(answer.code)) {
      fail(`answered ${status[answer.code]} (never INTERNAL/UNKNOWN for bad input)`);
    }
    if (answer.details.trim() === '') fail('an error without a message');
  }
  const tally = `${node.role} ${method.path} ${secret === SECRET ? 'secret' : 'no secret'} ${status[answer.code]}`;
  statusTally.set(tally, (statusTally.get(tally) ?? 0) + 1);
  const dispatchedId = method.name === 'Dispatch' ? dispatchedTaskId(sent.bytes) : undefined;
  let accepted = false;
  if (answer.code === status.OK && answer.response) {
    const res = method.responseDeserialize(answer.response) as { accepted?: boolean; status?: string };
    accepted = res.accepted === true || res.status === 'ACCEPTED';
    if (accepted && dispatchedId !== undefined) acceptedTaskIds.add(dispatchedId);
    if (accepted) statusTally.set(`${tally} accepted`, (statusTally.get(`${tally} accepted`) ?? 0) + 1);
  }
  if (!accepted) {
    const after = await snapshot();
    const changed = Object.keys(after).filter((t) => after[t] !== before[t]);
    if (changed.length > 0) fail(`refused, yet tables changed: ${changed.join(', ')}`);
    if (
      dispatchedId !== undefined &&
      !acceptedTaskIds.has(dispatchedId) &&
      (await workerKnows(dispatchedId))
    ) {
      fail(`refused, yet the worker holds task ${dispatchedId}`);
    }
  }
}

async function forEveryMethod(
  property: (node: NodeProcess, method: Method) => fc.IAsyncProperty<[unknown, ...unknown[]]>,
): Promise<void> {
  expect(methods.length).toBeGreaterThan(0);
  for (const method of methods) {
    for (const node of targets(method)) {
      try {
        await fc.assert(property(node, method), FC_OPTIONS);
      } catch (err) {
        const cause = err instanceof Error && err.cause instanceof Error ? `\n${err.cause.message}` : '';
        const message = `${err instanceof Error ? err.message : String(err)}${cause}`
          .split('\n')
          .map((line) => (line.length > 2000 ? `${line.slice(0, 2000)}… (${line.length} chars)` : line))
          .join('\n');
        throw new Error(`${method.path} on the ${node.role}: ${message}`);
      }
    }
  }
}

beforeAll(async () => {
  pg = await startPostgres();
  const env = {
    DATABASE_URL: pg.endpoint,
    REGISTRY_TYPE: 'jdbc',
    CLUSTER_SECRET: SECRET,
    REGISTRY_SESSION_TIMEOUT_MS: '4000',
    HEARTBEAT_INTERVAL_MS: '500',
  };
  const apiNode = await startNode('api-server', env, async (port) => {
    const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
    return res?.status === 200;
  });
  nodes.push(apiNode);
  api = `http://127.0.0.1:${apiNode.port}`;
  const registered = (kind: 'masters' | 'workers') => async (port: number) => {
    const res = await fetch(`${api}/api/v1/cluster/nodes`, { headers: authHeaders() });
    const body = (await res.json()) as Record<typeof kind, Array<{ port: number }>>;
    return body[kind].some((n) => n.port === port);
  };
  master = await startNode('master', env, registered('masters'));
  nodes.push(master);
  worker = await startNode('worker', env, registered('workers'));
  nodes.push(worker);
  db = new Client({ connectionString: pg.endpoint });
  await db.connect();
  snapshotSql = await buildSnapshotSql();
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
  for (const c of clients.values()) c.close();
  await stopNodes(nodes);
  nodes = [];
  await db?.end();
  await pg?.dispose();
});

describe('every gRPC method of every service in proto/, fuzzed on a running master and worker', () => {
  it('finds the services and methods in proto/', () => {
    expect(methods.map((m) => m.path)).toEqual(
      expect.arrayContaining([
        '/porpoise.v1.WorkerTaskService/Dispatch',
        '/porpoise.v1.MasterTaskEventService/TaskFinished',
        '/grpc.health.v1.Health/Check',
      ]),
    );
  });

  it('without the cluster secret, or with a wrong one: UNAUTHENTICATED, nothing stored', async () => {
    await forEveryMethod((node, method) =>
      fc.asyncProperty(
        requestBytes(method),
        fc.constantFrom(undefined, '', 'wrong', `${SECRET}x`, SECRET.slice(1)),
        (sent, secret) => check(node, method, sent, secret),
      ),
    );
  });

  it('with the secret: generated, truncated and random messages get OK or a client error, never INTERNAL', async () => {
    await forEveryMethod((node, method) =>
      fc.asyncProperty(requestBytes(method), (sent) => check(node, method, sent, SECRET)),
    );
  });

  it('afterwards both processes are alive, answer Health, and run a real workflow to SUCCESS', async () => {
    for (const node of [master, worker]) {
      expect({ role: node.role, exit: node.child.exitCode, signal: node.child.signalCode }).toEqual({
        role: node.role,
        exit: null,
        signal: null,
      });
      const health = methods.find((m) => m.path === '/grpc.health.v1.Health/Check');
      if (!health) throw new Error('no Health/Check in proto/');
      const answer = await call(node, health, new Uint8Array(), SECRET);
      expect({ role: node.role, code: status[answer.code] }).toEqual({ role: node.role, code: 'OK' });
    }
    const headers = authHeaders({ 'content-type': 'application/json' });
    const created = await fetch(`${api}/api/v1/workflows`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'after-fuzz', tasks: [{ name: 'a', type: 'SHELL', command: 'echo ok' }] }),
    });
    const { code } = (await created.json()) as { code: string };
    const run = await fetch(`${api}/api/v1/workflows/${code}/runs`, { method: 'POST', headers });
    const { workflowInstanceId } = (await run.json()) as { workflowInstanceId: number };
    const state = await waitFor(
      `instance ${workflowInstanceId} to finish`,
      async () => {
        const res = await fetch(`${api}/api/v1/workflow-instances/${workflowInstanceId}`, { headers });
        const body = (await res.json()) as { state: string };
        return ['SUCCESS', 'FAILURE', 'STOP'].includes(body.state) ? body.state : undefined;
      },
      60_000,
      100,
    );
    expect(state).toBe('SUCCESS');
  });
});
