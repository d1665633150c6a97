/**
 * Corrupt registry data under /nodes/ (DESIGN.md section 7, invariant 8; issue 12, deliverable 6),
 * on each backend: ZooKeeper, etcd and the JDBC registry. An API server, a master and a worker
 * run as their own processes from the built code (npm run build first); the test plants values
 * that fast-check generates (text that is not JSON, JSON of the wrong shape, a heartbeat with one
 * field wrong, huge values, fake workers with a bad host or port) next to the real entries.
 *
 * The master must stay up, log a line naming each corrupt key, never dispatch to one (a recorder
 * gRPC server listens where the corrupt worker entries point), and still run a real workflow on
 * the real worker. The API server must not list a corrupt entry as a node.
 * FUZZ_SEED and FUZZ_RUNS as in apps/api-server/test/fuzz.int-spec.ts.
 */
import { freePort, REGISTRY_PATHS, silentLogger, type NodeHeartbeat } from '@porpoise/common';
import { createRegistry, type Registry, type RegistryConfig } from '@porpoise/registry';
import { GrpcServer, type TaskSpec } from '@porpoise/rpc';
import { startEtcd, startPostgres, startZooKeeper, waitFor, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import fc from 'fast-check';
import { startNode, stopNodes, type NodeProcess } from './cluster-processes';

const SECRET = 'registry-fuzz-cluster-secret-0123456789';
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);

type Backend = 'zookeeper' | 'etcd' | 'jdbc';

/** A heartbeat as a real worker (or master, without the worker fields) writes it. */
function heartbeat(host: string, port: number, group?: string): NodeHeartbeat {
  const now = Date.now();
  return {
    host,
    port,
    startTime: now,
    heartbeatTime: now,
    cpuUsage: 0.1,
    memoryUsage: 0.1,
    loadAverage: 0.1,
    ...(group === undefined ? {} : { group, registration: 1, runningTasks: 0, capacity: 100 }),
    serving: true,
  };
}

/** Values no field of a heartbeat accepts in place of its own. */
const wrongValue = fc.oneof(
  fc.constantFrom<unknown>(null, -1, -1e308, '1', '', true, [], {}, 'NaN', 1.5e308 * 10, 'x'.repeat(100_000)),
  fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== 'number' && typeof v !== 'boolean'),
);

const REQUIRED = [
  'host',
  'port',
  'startTime',
  'heartbeatTime',
  'cpuUsage',
  'memoryUsage',
  'loadAverage',
  'serving',
];
const WORKER_REQUIRED = [...REQUIRED, 'group', 'runningTasks', 'capacity'];

/** A value that must not be taken as a live node at this address. */
function corruptValue(host: string, port: number, group: string | undefined): fc.Arbitrary<string> {
  const fields = group === undefined ? REQUIRED : WORKER_REQUIRED;
  const base = () => heartbeat(host, port, group) as unknown as Record<string, unknown>;
  return fc.oneof(
    // Not JSON, or cut short.
    fc.string({ unit: 'binary', maxLength: 100 }).filter((s) => !isJson(s)),
    fc.nat().map((cut) => {
      const text = JSON.stringify(base());
      return text.slice(0, cut % text.length);
    }),
    // JSON, but not an object, or an object of another shape.
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    // A heartbeat with one field missing or of the wrong type.
    fc.tuple(fc.constantFrom(...fields), fc.option(wrongValue, { nil: undefined })).map(([field, value]) => {
      const hb = base();
      if (value === undefined) delete hb[field];
      else hb[field] = value;
      return JSON.stringify(hb);
    }),
    // Huge: a valid-looking prefix and a long tail, or a huge string field.
    fc
      .integer({ min: 100_000, max: 900_000 })
      .map((n) => `${JSON.stringify(base()).slice(0, -1)}${' '.repeat(n)}`),
    fc.integer({ min: 100_000, max: 900_000 }).map((n) => JSON.stringify({ ...base(), host: 'h'.repeat(n) })),
    // Deep nesting.
    fc.integer({ min: 1_000, max: 50_000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
  );
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function registryConfig(backend: Backend, endpoint: string, databaseUrl: string): RegistryConfig {
  const common = { sessionTimeoutMs: 10_000 };
  if (backend === 'zookeeper') return { type: 'zookeeper', connect: endpoint, ...common };
  if (backend === 'etcd') return { type: 'etcd', endpoints: [endpoint], ...common };
  return { type: 'jdbc', databaseUrl, ...common };
}

describe.each<Backend>(['zookeeper', 'etcd', 'jdbc'])('corrupt entries under /nodes/ in %s', (backend) => {
  let pg: TestServer;
  let server: TestServer | undefined;
  let nodes: NodeProcess[] = [];
  let api = '';
  let master: NodeProcess;
  let worker: NodeProcess;
  let planter: Registry;
  let recorder: GrpcServer;
  let recorderPort = 0;
  const dispatchedToFake: TaskSpec[] = [];
  /** The master's whole output (the harness keeps only its tail). */
  let masterLog = '';

  beforeAll(async () => {
    pg = await startPostgres();
    server =
      backend === 'zookeeper' ? await startZooKeeper() : backend === 'etcd' ? await startEtcd() : undefined;
    const env: Record<string, string> = {
      DATABASE_URL: pg.endpoint,
      REGISTRY_TYPE: backend,
      CLUSTER_SECRET: SECRET,
      REGISTRY_SESSION_TIMEOUT_MS: '4000',
      HEARTBEAT_INTERVAL_MS: '500',
      ...(backend === 'zookeeper' && server ? { ZOOKEEPER_CONNECT: server.endpoint } : {}),
      ...(backend === 'etcd' && server ? { ETCD_ENDPOINTS: server.endpoint } : {}),
    };
    // Where the corrupt worker entries point: it records any Dispatch that reaches it.
    recorderPort = await freePort();
    recorder = new GrpcServer({
      bindHost: '127.0.0.1',
      port: recorderPort,
      clusterSecret: SECRET,
      logger: silentLogger,
      worker: {
        dispatch: (r) => {
          dispatchedToFake.push(r.task);
          return Promise.resolve({
            accepted: false,
            reason: 'recorder',
            workerStartTimeMs: 0,
            workerRegistration: 0,
          });
        },
        kill: () => Promise.resolve({ killed: false }),
        takeOver: () =>
          Promise.resolve({
            status: 'UNKNOWN',
            result: null,
            startTimeMs: 0,
            workerStartTimeMs: 0,
            workerRegistration: 0,
          }),
        readLog: () => Promise.resolve({ found: false, content: Buffer.alloc(0), nextOffset: 0, eof: true }),
      },
    });
    await recorder.start();
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
    master.child.stdout?.on('data', (d: Buffer) => (masterLog += d.toString()));
    master.child.stderr?.on('data', (d: Buffer) => (masterLog += d.toString()));
    worker = await startNode('worker', env, registered('workers'));
    nodes.push(worker);
    planter = createRegistry(registryConfig(backend, server?.endpoint ?? '', pg.endpoint));
    await planter.start();
  });

  afterAll(async () => {
    await planter?.close();
    await recorder?.stop(100);
    await stopNodes(nodes);
    nodes = [];
    await server?.dispose();
    await pg?.dispose();
  });

  /** Plants a value and waits for the master to log a line naming the key. */
  async function plant(key: string, value: string): Promise<void> {
    const mark = masterLog.length;
    await planter.put(key, value);
    await waitFor(
      `the master to log a line naming ${key}`,
      () => {
        if (master.child.exitCode !== null || master.child.signalCode !== null) {
          throw new Error(`the master died: ${masterLog.slice(-3000)}`);
        }
        return masterLog.slice(mark).includes(key);
      },
      15_000,
      50,
    );
  }

  it('the master stays up, names each corrupt key, and never dispatches to one', async () => {
    let run = 0;
    const entry = fc.oneof(
      // A fake worker in a group of its own at the recorder's address (a new key each run).
      fc.constant(undefined).chain(() => {
        const group = `fz${backend}${run++}`;
        return corruptValue('127.0.0.1', recorderPort, group).map((value) => ({
          key: REGISTRY_PATHS.worker(group, '127.0.0.1', recorderPort),
          value,
        }));
      }),
      // A fake master.
      fc.constant(undefined).chain(() => {
        const host = `fz${run++}.invalid`;
        return corruptValue(host, 7, undefined).map((value) => ({
          key: REGISTRY_PATHS.master(host, 7),
          value,
        }));
      }),
    );
    await fc.assert(
      // Postgres text cannot hold NUL (the JDBC registry refuses such a put): plant a SOH there instead.
      fc.asyncProperty(entry, ({ key, value }) =>
        plant(key, backend === 'jdbc' ? value.replaceAll('\u0000', '\u0001') : value),
      ),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  });

  it.each<[string, (recorder: number) => { key: string; value: string }]>([
    [
      'text that is not JSON',
      (p) => ({ key: REGISTRY_PATHS.worker('default', '127.0.0.1', p), value: '{"host":' }),
    ],
    [
      'a heartbeat whose host does not match its key',
      (p) => ({
        key: REGISTRY_PATHS.worker('default', '127.0.0.1', p),
        value: JSON.stringify(heartbeat('10.0.0.1', p, 'default')),
      }),
    ],
    [
      'a well-formed heartbeat at port 99999',
      () => ({
        key: REGISTRY_PATHS.worker('default', '127.0.0.1', 99999),
        value: JSON.stringify(heartbeat('127.0.0.1', 99999, 'default')),
      }),
    ],
    [
      'a well-formed heartbeat at port 0',
      () => ({
        key: REGISTRY_PATHS.worker('default', '127.0.0.1', 0),
        value: JSON.stringify(heartbeat('127.0.0.1', 0, 'default')),
      }),
    ],
    [
      'a host that is no host name',
      () => ({
        key: REGISTRY_PATHS.worker('default', '-.-', 5),
        value: JSON.stringify(heartbeat('-.-', 5, 'default')),
      }),
    ],
  ])('a fake worker in the real group: %s', async (_what, make) => {
    const { key, value } = make(recorderPort);
    await plant(key, value);
  });

  it('a well-formed fake worker whose host does not resolve does not hold the real tasks', async () => {
    // Valid as far as anyone can tell from the registry: a Dispatch to it may be tried, but must
    // fail over to the real worker rather than wait.
    await planter.put(
      REGISTRY_PATHS.worker('default', 'nohost.invalid', 5),
      JSON.stringify({
        ...heartbeat('nohost.invalid', 5, 'default'),
        cpuUsage: 0,
        memoryUsage: 0,
        loadAverage: 0,
      }),
    );
  });

  it('afterwards the master is alive, runs a real workflow on the real worker only, and the API lists no corrupt entry', async () => {
    const headers = authHeaders({ 'content-type': 'application/json' });
    const tasks = ['a', 'b', 'c', 'd'].map((name) => ({ name, type: 'SHELL', command: 'echo ok' }));
    const created = await fetch(`${api}/api/v1/workflows`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'after-corrupt-registry', tasks }),
    });
    const { code } = (await created.json()) as { code: string };
    const run = await fetch(`${api}/api/v1/workflows/${code}/runs`, { method: 'POST', headers });
    const { workflowInstanceId } = (await run.json()) as { workflowInstanceId: number };
    const instance = await waitFor(
      `instance ${workflowInstanceId} to finish`,
      async () => {
        const res = await fetch(`${api}/api/v1/workflow-instances/${workflowInstanceId}`, { headers });
        const body = (await res.json()) as { state: string; tasks: Array<{ host: string | null }> };
        return ['SUCCESS', 'FAILURE', 'STOP'].includes(body.state) ? body : undefined;
      },
      60_000,
      100,
    );
    expect(instance.state).toBe('SUCCESS');
    expect(new Set(instance.tasks.map((t) => t.host))).toEqual(new Set([`127.0.0.1:${worker.port}`]));
    expect(dispatchedToFake).toEqual([]);
    expect({ exit: master.child.exitCode, signal: master.child.signalCode }).toEqual({
      exit: null,
      signal: null,
    });

    const listed = (await (await fetch(`${api}/api/v1/cluster/nodes`, { headers })).json()) as Record<
      'masters' | 'workers',
      Array<{ host: string; port: number }>
    >;
    expect(listed.masters.map((n) => `${n.host}:${n.port}`)).toEqual([`127.0.0.1:${master.port}`]);
    // The well-formed one with a host that does not resolve is listed: nothing tells it apart.
    expect(listed.workers.map((n) => `${n.host}:${n.port}`).sort()).toEqual(
      [`127.0.0.1:${worker.port}`, 'nohost.invalid:5'].sort(),
    );
  });
});
