/**
 * Observability (DESIGN.md section 12) on real processes from the built code (npm run build):
 * an API server, a master and a worker on a real Postgres and the JDBC registry, every one with
 * LOG_FORMAT=json and the master and worker with a METRICS_PORT of their own. After workflows ran,
 * /health and /metrics of the master and the worker carry the named metrics (histogram counts
 * above zero: timings are never asserted), every log line of every node is one JSON object, and
 * the lines about a run carry its instance and task ids. The diagnosis route answers on the live
 * cluster.
 */
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { startNode, stopNodes, type NodeProcess } from './cluster-processes';

const SECRET = 'observability-secret-0123456789';
const FINAL = ['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'];

/** One sample of the Prometheus text: name{labels} value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!;
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum of a metric's samples (over its label values). */
const total = (samples: Sample[], name: string) =>
  samples.filter((s) => s.name === name).reduce((sum, s) => sum + s.value, 0);
const has = (samples: Sample[], name: string) => samples.some((s) => s.name === name);

describe('observability: /health, /metrics and JSON logs of master and worker processes (Postgres, JDBC registry)', () => {
  let pg: TestServer;
  const nodes: NodeProcess[] = [];
  const logs = new Map<NodeProcess, () => string>();
  let api = '';
  let master: NodeProcess;
  let worker: NodeProcess;

  const call = async <T>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${api}/api/v1${path}`, {
      method,
      headers: authHeaders(body === undefined ? {} : { 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const get = async (node: NodeProcess, path: string) => {
    const res = await fetch(`http://127.0.0.1:${node.metricsPort}${path}`);
    return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
  };
  const finished = (id: number) =>
    waitFor(
      `instance ${id} to finish`,
      async () => {
        const res = await call<{ state: string; tasks: Array<{ id: number; name: string }> }>(
          'GET',
          `/workflow-instances/${id}`,
        );
        return FINAL.includes(res.body.state) ? res.body : undefined;
      },
      60_000,
      100,
    );
  /** Keeps everything a node prints (startNode keeps a tail only). */
  const keep = (node: NodeProcess) => {
    let all = node.output();
    node.child.stdout?.on('data', (d: Buffer) => (all += d.toString()));
    node.child.stderr?.on('data', (d: Buffer) => (all += d.toString()));
    logs.set(node, () => all);
    nodes.push(node);
    return node;
  };

  beforeAll(async () => {
    pg = await startPostgres();
    const env = {
      DATABASE_URL: pg.endpoint,
      REGISTRY_TYPE: 'jdbc',
      CLUSTER_SECRET: SECRET,
      REGISTRY_SESSION_TIMEOUT_MS: '3000',
      HEARTBEAT_INTERVAL_MS: '500',
      LOG_FORMAT: 'json',
    };
    const apiNode = keep(
      await startNode('api-server', env, async (port) => {
        const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
        return res?.status === 200;
      }),
    );
    api = `http://127.0.0.1:${apiNode.port}`;
    const registered = (kind: 'masters' | 'workers') => async (port: number) => {
      const res = await call<Record<typeof kind, Array<{ port: number }>>>('GET', '/cluster/nodes');
      return res.body[kind].some((n) => n.port === port);
    };
    master = keep(await startNode('master', env, registered('masters')));
    worker = keep(await startNode('worker', env, registered('workers')));
  });

  afterAll(async () => {
    await stopNodes(nodes);
    await pg?.dispose();
  });

  it('master and worker answer GET /health with what they reach, and only GET /health and GET /metrics', async () => {
    const m = await get(master, '/health');
    expect({ status: m.status, body: JSON.parse(m.text) }).toEqual({
      status: 200,
      body: { status: 'ok', database: 'ok', registry: 'ok' },
    });
    expect(m.type).toMatch(/^application\/json/);
    const w = await get(worker, '/health');
    expect({ status: w.status, body: JSON.parse(w.text) }).toEqual({
      status: 200,
      body: { status: 'ok', registry: 'ok' },
    });
    expect((await get(master, '/nope')).status).toBe(404);
    const post = await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('after runs, the master has every stage histogram counted and its gauges, the worker its gauges', async () => {
    const created = await call<{ code: string }>('POST', '/workflows', {
      name: 'observed',
      tasks: [
        { name: 'a', type: 'SHELL', command: 'echo a' },
        { name: 'b', type: 'EMPTY' },
        { name: 'c', type: 'SHELL', command: 'sleep 0.2' },
      ],
      edges: [
        { from: 'a', to: 'b' },
        { from: 'a', to: 'c' },
      ],
    });
    expect(created.status).toBe(201);
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      const run = await call<{ workflowInstanceId: number }>('POST', `/workflows/${created.body.code}/runs`);
      ids.push(run.body.workflowInstanceId);
    }
    for (const id of ids) expect((await finished(id)).state).toBe('SUCCESS');

    const m = await get(master, '/metrics');
    expect(m.status).toBe(200);
    expect(m.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const ms = parseMetrics(m.text);
    expect(total(ms, 'porpoise_command_wait_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(
      ms.find((s) => s.name === 'porpoise_command_wait_seconds_count' && s.labels.type === 'START_PROCESS')
        ?.value,
    ).toBeGreaterThanOrEqual(3);
    expect(total(ms, 'porpoise_task_ready_to_dispatch_seconds_count')).toBeGreaterThanOrEqual(9);
    expect(total(ms, 'porpoise_task_dispatch_to_start_seconds_count')).toBeGreaterThan(0);
    expect(total(ms, 'porpoise_task_finish_to_persist_seconds_count')).toBeGreaterThanOrEqual(9);
    // Declared from the start (no failover happened here: count 0).
    expect(has(ms, 'porpoise_failover_duration_seconds_count')).toBe(true);
    expect(has(ms, 'porpoise_instances_driven')).toBe(true);
    expect(total(ms, 'porpoise_master_max_running_instances')).toBe(1000);
    expect(total(ms, 'porpoise_command_backlog')).toBe(0);
    expect(has(ms, 'porpoise_master_process_cpu_seconds_total')).toBe(true);

    const w = await get(worker, '/metrics');
    const ws = parseMetrics(w.text);
    expect(ws.find((s) => s.name === 'porpoise_worker_capacity')).toEqual({
      name: 'porpoise_worker_capacity',
      labels: { group: 'default' },
      value: 32,
    });
    expect(ws.find((s) => s.name === 'porpoise_worker_tasks_running')).toMatchObject({
      labels: { group: 'default' },
    });
    expect(has(ws, 'porpoise_worker_process_cpu_seconds_total')).toBe(true);
    // Each node's own registry: no master metric on the worker.
    expect(has(ws, 'porpoise_command_wait_seconds_count')).toBe(false);
  });

  it('counts a running task on the worker and an instance driven on the master while it runs', async () => {
    const created = await call<{ code: string }>('POST', '/workflows', {
      name: 'slow',
      tasks: [{ name: 'slow', type: 'SHELL', command: 'sleep 3' }],
      edges: [],
    });
    const run = await call<{ workflowInstanceId: number }>('POST', `/workflows/${created.body.code}/runs`);
    await waitFor(
      'the task to run on the worker and the run to be driven',
      async () =>
        total(parseMetrics((await get(worker, '/metrics')).text), 'porpoise_worker_tasks_running') === 1 &&
        total(parseMetrics((await get(master, '/metrics')).text), 'porpoise_instances_driven') === 1,
      20_000,
      100,
    );
    // The diagnosis on the live cluster: nothing holds a running task. The worker reports TaskStarted
    // only for a run still going after a short delay, so the state may still read DISPATCH briefly.
    type Diagnosis = { tasks: Array<{ name: string; waitingFor: string | null; state: string }> };
    let diagnosis: Diagnosis | undefined;
    await waitFor(
      'the diagnosis to show the task running',
      async () => {
        diagnosis = (
          await call<Diagnosis>('GET', `/workflow-instances/${run.body.workflowInstanceId}/diagnosis`)
        ).body;
        return diagnosis.tasks[0]?.state === 'RUNNING_EXECUTION';
      },
      2_500,
      20,
    );
    expect(diagnosis?.tasks).toEqual([
      expect.objectContaining({ name: 'slow', state: 'RUNNING_EXECUTION', waitingFor: null }),
    ]);
    expect((await finished(run.body.workflowInstanceId)).state).toBe('SUCCESS');
    expect(total(parseMetrics((await get(worker, '/metrics')).text), 'porpoise_worker_tasks_running')).toBe(
      0,
    );
  });

  it('a task in a group without workers: the diagnosis names the group', async () => {
    const created = await call<{ code: string }>('POST', '/workflows', {
      name: 'gpu',
      tasks: [{ name: 'train', type: 'EMPTY', workerGroup: 'gpu' }],
      edges: [],
    });
    const id = (await call<{ workflowInstanceId: number }>('POST', `/workflows/${created.body.code}/runs`))
      .body.workflowInstanceId;
    const held = await waitFor(
      'the task to wait for a worker of group gpu',
      async () => {
        const d = await call<{
          tasks: Array<{ name: string; waitingFor: string | null; workerGroup?: string }>;
        }>('GET', `/workflow-instances/${id}/diagnosis`);
        return d.body.tasks[0]?.waitingFor === 'worker-group' ? d.body.tasks[0] : undefined;
      },
      20_000,
      100,
    );
    expect(held).toMatchObject({ name: 'train', workerGroup: 'gpu' });
    expect((await call('POST', `/workflow-instances/${id}/stop`)).status).toBe(202);
    await finished(id);
  });

  it('every node writes only JSON lines; the lines about a run carry its instance id, the worker’s its task id', async () => {
    const created = await call<{ code: string }>('POST', '/workflows', {
      name: 'logged',
      tasks: [{ name: 'only', type: 'SHELL', command: 'echo hi' }],
      edges: [],
    });
    const id = (await call<{ workflowInstanceId: number }>('POST', `/workflows/${created.body.code}/runs`))
      .body.workflowInstanceId;
    const instance = await finished(id);
    const taskId = instance.tasks[0]!.id;
    const parsed = new Map<NodeProcess, Array<Record<string, unknown>>>();
    for (const [node, text] of logs) {
      const lines = text()
        .split('\n')
        .filter((l) => l.trim() !== '');
      expect(lines.length).toBeGreaterThan(0);
      parsed.set(
        node,
        lines.map((line) => {
          let entry: Record<string, unknown>;
          try {
            entry = JSON.parse(line) as Record<string, unknown>;
          } catch {
            throw new Error(`${node.role} wrote a line that is not JSON: ${line}`);
          }
          expect(entry).toEqual(
            expect.objectContaining({
              time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
              level: expect.stringMatching(/^(info|warn|error|debug|verbose|fatal)$/),
              message: expect.any(String),
            }),
          );
          return entry;
        }),
      );
      expect(text()).not.toContain(SECRET);
    }
    const aboutRun = parsed.get(master)!.filter((e) => e.instanceId === id);
    expect(aboutRun).toContainEqual(
      expect.objectContaining({
        context: 'CommandConsumer',
        message: expect.stringMatching(/^took command \d+ \(START_PROCESS\)/),
      }),
    );
    const aboutTask = parsed.get(worker)!.filter((e) => e.taskInstanceId === taskId);
    expect(aboutTask.length).toBeGreaterThanOrEqual(2); // started, finished
    expect(aboutTask.every((e) => e.instanceId === id && e.context === 'WorkerExecutor')).toBe(true);
  });
});
