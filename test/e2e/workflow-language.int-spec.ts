/**
 * The workflow language (DESIGN.md section 9) end to end, every node its own process from the
 * built code: one API server, two masters and one worker over a real Postgres, a real
 * ZooKeeper and gRPC, driven only through the REST API. The failover tests SIGKILL the master
 * owning the instance (found from the instance's `host`) and start a replacement afterwards.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startPostgres, startZooKeeper, stopProcess, waitFor, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { startNode, stopNodes, type NodeProcess } from './cluster-processes';

const SECRET = 'e2e-cluster-secret-0123456789';
const FINAL = ['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'];

interface Task {
  id: number;
  name: string;
  state: string;
  attempt: number;
  exitCode: number | null;
  host: string | null;
  message: string | null;
  outputs: Record<string, string>;
  subWorkflowInstanceId: number | null;
}
interface Instance {
  id: number;
  state: string;
  host: string | null;
  parentInstanceId: number | null;
  parentTaskInstanceId: number | null;
  tasks: Task[];
}

describe('the workflow language end to end (api-server, 2 masters, worker processes; Postgres; ZooKeeper)', () => {
  let pg: TestServer;
  let zk: TestServer;
  let apiNode: NodeProcess | undefined;
  let worker: NodeProcess | undefined;
  let masters: NodeProcess[] = [];
  const dead: NodeProcess[] = [];
  let api = '';
  let scratch = '';
  let env: Record<string, string> = {};

  const call = async <T>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${api}/api/v1${path}`, {
      method,
      headers: authHeaders({ 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: (text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as T,
    };
  };
  const createWorkflow = async (definition: unknown): Promise<string> => {
    const res = await call<{ code: string }>('POST', '/workflows', definition);
    if (res.status !== 201) {
      throw new Error(`POST /workflows answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    return res.body.code;
  };
  const run = async (code: string, params?: Record<string, string>): Promise<number> => {
    const res = await call<{ workflowInstanceId: number }>(
      'POST',
      `/workflows/${code}/runs`,
      params ? { params } : undefined,
    );
    expect(res.status).toBe(202);
    return res.body.workflowInstanceId;
  };
  const instance = async (id: number) => (await call<Instance>('GET', `/workflow-instances/${id}`)).body;
  const until = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000) =>
    waitFor(what, async () => (await probe()) || undefined, timeoutMs, 100) as Promise<T>;
  const finished = (id: number) =>
    until<Instance>(`instance ${id} to finish`, async () => {
      const i = await instance(id);
      return FINAL.includes(i.state) ? i : undefined;
    });
  const states = (i: Instance) => Object.fromEntries(i.tasks.map((t) => [t.name, t.state]));
  const gateWait = (gate: string) => `while [ ! -f ${gate} ]; do sleep 0.1; done`;

  const registered = (kind: 'masters' | 'workers') => async (port: number) => {
    const res = await call<Record<typeof kind, Array<{ port: number }>>>('GET', '/cluster/nodes');
    return res.body[kind].some((n) => n.port === port);
  };
  const startMaster = async () => {
    const master = await startNode('master', env, registered('masters'));
    masters.push(master);
    return master;
  };
  /** SIGKILLs the master owning instance `id` (its `host` ends with the master's port). */
  const killOwner = async (id: number): Promise<NodeProcess> => {
    const i = await instance(id);
    const owner = masters.find((m) => i.host?.endsWith(`:${m.port}`));
    if (!owner) throw new Error(`no live master owns instance ${id} (host ${i.host})`);
    owner.child.kill('SIGKILL');
    await until(
      `master ${owner.port} to exit`,
      async () => owner.child.exitCode !== null || owner.child.signalCode !== null,
    );
    masters = masters.filter((m) => m !== owner);
    dead.push(owner);
    return owner;
  };

  /** The instance ended under a surviving master, not the one that was killed. */
  const expectTakenOver = (i: Instance, killed: NodeProcess) => {
    expect(i.host).not.toMatch(new RegExp(`:${killed.port}$`));
    expect(masters.some((m) => i.host?.endsWith(`:${m.port}`))).toBe(true);
  };

  beforeAll(async () => {
    [pg, zk] = await Promise.all([startPostgres(), startZooKeeper()]);
    scratch = mkdtempSync(join(tmpdir(), 'porpoise-lang-e2e-'));
    env = {
      DATABASE_URL: pg.endpoint,
      REGISTRY_TYPE: 'zookeeper',
      ZOOKEEPER_CONNECT: zk.endpoint,
      CLUSTER_SECRET: SECRET,
      REGISTRY_SESSION_TIMEOUT_MS: '3000',
      HEARTBEAT_INTERVAL_MS: '500',
    };
    apiNode = await startNode('api-server', env, async (port) => {
      const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
      return res?.status === 200;
    });
    api = `http://127.0.0.1:${apiNode.port}`;
    await Promise.all([startMaster(), startMaster()]);
    worker = await startNode('worker', env, registered('workers'));
  });

  afterAll(async () => {
    await stopNodes([...masters, ...(worker ? [worker] : []), ...(apiNode ? [apiNode] : [])]);
    await Promise.all(dead.map((n) => stopProcess(n.child, 'SIGKILL', 5_000)));
    masters = [];
    await Promise.all([pg?.dispose(), zk?.dispose()]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('SUB_WORKFLOW: the parent’s master SIGKILLed after the child started gives one child, and the parent ends with its state', async () => {
    const gate = join(scratch, 'sub.gate');
    const child = await createWorkflow({
      name: 'sub-child',
      tasks: [{ name: 'wait', type: 'SHELL', command: `${gateWait(gate)}; echo child done` }],
    });
    const parent = await createWorkflow({
      name: 'sub-parent',
      tasks: [{ name: 'call', type: 'SUB_WORKFLOW', subWorkflow: { workflowCode: child } }],
    });
    const id = await run(parent);

    const childId = await until<number>('the child instance to run its task', async () => {
      const list = await call<{ items: Instance[] }>('GET', `/workflow-instances?workflowCode=${child}`);
      const [c] = list.body.items;
      if (!c) return undefined;
      const detail = await instance(c.id);
      return detail.tasks.some((t) => t.name === 'wait' && t.state === 'RUNNING_EXECUTION') && c.id;
    });
    const killed = await killOwner(id);
    writeFileSync(gate, '');

    const done = await finished(id);
    expectTakenOver(done, killed);
    expect(done.state).toBe('SUCCESS');
    const list = await call<{ total: number; items: Instance[] }>(
      'GET',
      `/workflow-instances?workflowCode=${child}`,
    );
    expect(list.body.total).toBe(1);
    const [onlyChild] = list.body.items;
    expect(onlyChild?.id).toBe(childId);
    const calls = done.tasks.filter((t) => t.name === 'call');
    expect(calls.map((t) => t.subWorkflowInstanceId)).toContain(childId);
    expect(calls.map((t) => t.id)).toContain(onlyChild?.parentTaskInstanceId);
    expect(onlyChild?.parentInstanceId).toBe(id);
    expect(calls[calls.length - 1]?.state).toBe('SUCCESS');
    expect((await instance(childId)).state).toBe('SUCCESS');

    await startMaster();
  });

  it('SUB_WORKFLOW: a pause reaches the child, both end PAUSE, and the resume carries on with the same child', async () => {
    const gate = join(scratch, 'pause.gate');
    const child = await createWorkflow({
      name: 'pause-child',
      tasks: [
        { name: 'wait', type: 'SHELL', command: gateWait(gate) },
        { name: 'second', type: 'SHELL', command: 'echo second' },
      ],
      edges: [{ from: 'wait', to: 'second' }],
    });
    const parent = await createWorkflow({
      name: 'pause-parent',
      tasks: [
        { name: 'call', type: 'SUB_WORKFLOW', subWorkflow: { workflowCode: child } },
        { name: 'after', type: 'SHELL', command: 'echo after' },
      ],
      edges: [{ from: 'call', to: 'after' }],
    });
    const id = await run(parent);
    const childId = await until<number>('the child to run its first task', async () => {
      const c = (await call<{ items: Instance[] }>('GET', `/workflow-instances?workflowCode=${child}`)).body
        .items[0];
      if (!c) return undefined;
      return states(await instance(c.id)).wait === 'RUNNING_EXECUTION' && c.id;
    });
    expect((await call('POST', `/workflow-instances/${id}/pause`)).status).toBe(202);
    // The child's running task finishes (a pause lets it), then nothing new starts in either.
    writeFileSync(gate, '');
    const paused = await finished(id);
    expect(paused.state).toBe('PAUSE');
    expect(states(paused)).toEqual({ call: 'PAUSE' });
    const pausedChild = await instance(childId);
    expect(pausedChild.state).toBe('PAUSE');
    expect(states(pausedChild)).toEqual({ wait: 'SUCCESS' });

    expect((await call('POST', `/workflow-instances/${id}/resume`)).status).toBe(202);
    const done = await finished(id);
    expect(done.state).toBe('SUCCESS');
    expect(states(done)).toEqual({ call: 'SUCCESS', after: 'SUCCESS' });
    // The same attempt and the same child: resumed, not started again.
    expect(done.tasks.filter((t) => t.name === 'call').map((t) => t.subWorkflowInstanceId)).toEqual([
      childId,
    ]);
    const children = await call<{ total: number }>('GET', `/workflow-instances?workflowCode=${child}`);
    expect(children.body.total).toBe(1);
    const resumedChild = await instance(childId);
    expect(resumedChild.state).toBe('SUCCESS');
    expect(resumedChild.tasks.map((t) => [t.name, t.state, t.attempt])).toEqual([
      ['wait', 'SUCCESS', 1],
      ['second', 'SUCCESS', 1],
    ]);
  });

  it('a retry waits out its delay across a master SIGKILL and runs retries + 1 times, never more', async () => {
    const code = await createWorkflow({
      name: 'retry-failover',
      tasks: [
        {
          name: 'flaky',
          type: 'SHELL',
          command: 'echo "attempt $PORPOISE_ATTEMPT"; exit 1',
          retries: 2,
          retryIntervalMs: 3000,
        },
      ],
    });
    const id = await run(code);
    await until('the task to wait for its retry', async () =>
      (await instance(id)).tasks.some((t) => t.name === 'flaky' && t.state === 'DELAY_EXECUTION'),
    );
    const killed = await killOwner(id);

    const done = await finished(id);
    expectTakenOver(done, killed);
    expect(done.state).toBe('FAILURE');
    const attempts = done.tasks.filter((t) => t.name === 'flaky');
    expect(attempts).toHaveLength(3);
    expect(attempts.map((t) => [t.attempt, t.state, t.exitCode])).toEqual([
      [1, 'FAILURE', 1],
      [2, 'FAILURE', 1],
      [3, 'FAILURE', 1],
    ]);
    // Nothing more runs later.
    await new Promise((r) => setTimeout(r, 3500));
    expect((await instance(id)).tasks.filter((t) => t.name === 'flaky')).toHaveLength(3);

    await startMaster();
  });

  it('outputs set upstream reach a downstream task across a master failover', async () => {
    const gate = join(scratch, 'outputs.gate');
    const code = await createWorkflow({
      name: 'outputs-failover',
      tasks: [
        { name: 'a', type: 'SHELL', command: "echo '${setValue(x=42)}'" },
        { name: 'b', type: 'SHELL', command: `${gateWait(gate)}; echo "x is \${x}"` },
      ],
      edges: [{ from: 'a', to: 'b' }],
    });
    const id = await run(code);
    await until('a to succeed and b to run', async () => {
      const s = states(await instance(id));
      return s.a === 'SUCCESS' && s.b === 'RUNNING_EXECUTION';
    });
    const killed = await killOwner(id);
    writeFileSync(gate, '');

    const done = await finished(id);
    expectTakenOver(done, killed);
    expect(done.state).toBe('SUCCESS');
    expect(done.tasks.find((t) => t.name === 'a')?.outputs).toEqual({ x: '42' });
    const b = done.tasks.filter((t) => t.name === 'b').pop();
    if (!b) throw new Error('no task b');
    const log = await call<string>('GET', `/task-instances/${b.id}/log`);
    expect(log.status).toBe(200);
    expect(log.body).toContain('x is 42');

    await startMaster();
  });

  it('CONDITIONS and SWITCH skip every task of the branch not taken', async () => {
    const conditions = await createWorkflow({
      name: 'conditions-branches',
      tasks: [
        { name: 'boom', type: 'SHELL', command: 'exit 3' },
        { name: 'check', type: 'CONDITIONS', conditions: { success: ['publish'], failure: ['alert'] } },
        { name: 'publish', type: 'EMPTY' },
        { name: 'publish_more', type: 'SHELL', command: 'echo more' },
        { name: 'alert', type: 'SHELL', command: 'echo alert' },
      ],
      edges: [
        { from: 'boom', to: 'check' },
        { from: 'check', to: 'publish' },
        { from: 'publish', to: 'publish_more' },
        { from: 'check', to: 'alert' },
      ],
    });
    const switched = await createWorkflow({
      name: 'switch-branches',
      params: { mode: 'full' },
      tasks: [
        {
          name: 'route',
          type: 'SWITCH',
          switch: { cases: [{ when: "${mode} == 'full'", then: 'full_load' }], default: 'delta_load' },
        },
        { name: 'full_load', type: 'SHELL', command: 'echo full' },
        { name: 'delta_load', type: 'EMPTY' },
        { name: 'delta_more', type: 'SHELL', command: 'echo delta more' },
      ],
      edges: [
        { from: 'route', to: 'full_load' },
        { from: 'route', to: 'delta_load' },
        { from: 'delta_load', to: 'delta_more' },
      ],
    });
    const [c, full, delta] = await Promise.all([
      run(conditions).then(finished),
      run(switched).then(finished),
      run(switched, { mode: 'delta' }).then(finished),
    ]);

    expect(c.state).toBe('SUCCESS');
    expect(states(c)).toEqual({
      boom: 'FAILURE',
      check: 'SUCCESS',
      publish: 'SKIPPED',
      publish_more: 'SKIPPED',
      alert: 'SUCCESS',
    });
    expect(full.state).toBe('SUCCESS');
    expect(states(full)).toEqual({
      route: 'SUCCESS',
      full_load: 'SUCCESS',
      delta_load: 'SKIPPED',
      delta_more: 'SKIPPED',
    });
    expect(delta.state).toBe('SUCCESS');
    expect(states(delta)).toEqual({
      route: 'SUCCESS',
      full_load: 'SKIPPED',
      delta_load: 'SUCCESS',
      delta_more: 'SUCCESS',
    });
  });

  it('SQL: a param with an injection attempt stays a value and the tables stay', async () => {
    const ds = await call('POST', '/datasources', { name: 'testpg', type: 'postgres', url: pg.endpoint });
    expect(ds.status).toBe(201);
    const code = await createWorkflow({
      name: 'sql-injection',
      params: { v: 'plain' },
      tasks: [{ name: 'q', type: 'SQL', sql: { datasource: 'testpg', statement: 'select ${v}::text as v' } }],
    });
    const evil = "x'); drop table task_instance; --";
    const done = await finished(await run(code, { v: evil }));
    const [q] = done.tasks;
    expect(q?.state).toBe('SUCCESS');
    expect(q?.outputs).toEqual({ v: evil });
    expect(done.state).toBe('SUCCESS');

    const client = new Client({ connectionString: pg.endpoint });
    await client.connect();
    try {
      const res = await client.query<{ t: string | null }>("select to_regclass('task_instance')::text as t");
      expect(res.rows[0]?.t).toBe('task_instance');
    } finally {
      await client.end();
    }
  });

  it('HTTP: an expected status succeeds with output status, an unexpected one fails the task', async () => {
    const server: Server = createServer((req, res) => {
      if (req.url === '/ok') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('all fine');
      } else {
        res.writeHead(418, { 'content-type': 'text/plain' }).end('short and stout');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const good = await createWorkflow({
        name: 'http-good',
        tasks: [
          { name: 'ok', type: 'HTTP', http: { method: 'GET', url: `${base}/ok` } },
          {
            name: 'teapot',
            type: 'HTTP',
            http: { method: 'GET', url: `${base}/teapot`, expectStatus: [418] },
          },
        ],
      });
      const bad = await createWorkflow({
        name: 'http-bad',
        tasks: [
          {
            name: 'strict',
            type: 'HTTP',
            http: { method: 'GET', url: `${base}/teapot`, expectStatus: [200] },
          },
        ],
      });
      const [g, b] = await Promise.all([run(good).then(finished), run(bad).then(finished)]);

      expect(g.state).toBe('SUCCESS');
      const ok = g.tasks.find((t) => t.name === 'ok');
      const teapot = g.tasks.find((t) => t.name === 'teapot');
      expect([ok?.state, ok?.outputs]).toEqual(['SUCCESS', { status: '200' }]);
      expect([teapot?.state, teapot?.outputs]).toEqual(['SUCCESS', { status: '418' }]);
      const log = await call<string>('GET', `/task-instances/${ok?.id}/log`);
      expect(log.body).toContain('all fine');

      expect(b.state).toBe('FAILURE');
      expect(b.tasks.map((t) => t.state)).toEqual(['FAILURE']);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
