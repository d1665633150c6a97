/**
 * One workflow end to end, every node its own process from the built code: API server,
 * master and worker over a real Postgres, a real ZooKeeper and gRPC, driven only through the
 * REST API of DESIGN.md section 4.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, startZooKeeper, waitFor, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { startNode, stopNodes, type NodeProcess } from './cluster-processes';

const SECRET = 'e2e-cluster-secret-0123456789';
const FINAL = ['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'];

interface Instance {
  id: number;
  state: string;
  host: string | null;
  tasks: Array<{
    id: number;
    name: string;
    state: string;
    attempt: number;
    exitCode: number | null;
    host: string;
  }>;
}

describe('one workflow end to end (api-server, master, worker processes; Postgres; ZooKeeper)', () => {
  let pg: TestServer;
  let zk: TestServer;
  let nodes: NodeProcess[] = [];
  let api = '';
  let scratch = '';

  const call = async <T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const res = await fetch(`${api}/api/v1${path}`, {
      method,
      headers: authHeaders({ 'content-type': 'application/json', ...headers }),
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
    expect(res.status).toBe(201);
    return res.body.code;
  };
  const run = async (code: string, params?: Record<string, string>, key?: string) =>
    call<{ commandId: number; workflowInstanceId: number }>(
      'POST',
      `/workflows/${code}/runs`,
      params ? { params } : undefined,
      key ? { 'Idempotency-Key': key } : {},
    );
  const finished = (id: number) =>
    waitFor(
      `instance ${id} to finish`,
      async () => {
        const res = await call<Instance>('GET', `/workflow-instances/${id}`);
        return FINAL.includes(res.body.state) ? res.body : undefined;
      },
      60_000,
      100,
    );

  beforeAll(async () => {
    [pg, zk] = await Promise.all([startPostgres(), startZooKeeper()]);
    scratch = mkdtempSync(join(tmpdir(), 'porpoise-e2e-'));
    const env = {
      DATABASE_URL: pg.endpoint,
      REGISTRY_TYPE: 'zookeeper',
      ZOOKEEPER_CONNECT: zk.endpoint,
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
      const res = await call<Record<typeof kind, Array<{ port: number }>>>('GET', '/cluster/nodes');
      return res.body[kind].some((n) => n.port === port);
    };
    nodes.push(await startNode('master', env, registered('masters')));
    nodes.push(await startNode('worker', env, registered('workers')));
  });

  afterAll(async () => {
    await stopNodes(nodes);
    nodes = [];
    await Promise.all([pg?.dispose(), zk?.dispose()]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('runs a diamond DAG in dependency order, with the documented task variables, and succeeds', async () => {
    const witness = join(scratch, 'diamond.txt');
    const line = `echo "$PORPOISE_TASK_NAME start $PORPOISE_WORKFLOW_INSTANCE_ID $PORPOISE_TASK_INSTANCE_ID $PORPOISE_ATTEMPT $PORPOISE_PARAM_RUN" >> ${witness}`;
    const end = `echo "$PORPOISE_TASK_NAME end" >> ${witness}`;
    const task = (name: string) => ({ name, type: 'SHELL', command: `${line}; sleep 0.3; ${end}` });
    const code = await createWorkflow({
      name: 'diamond',
      tasks: [task('a'), task('b'), task('c'), task('d')],
      edges: [
        { from: 'a', to: 'b' },
        { from: 'a', to: 'c' },
        { from: 'b', to: 'd' },
        { from: 'c', to: 'd' },
      ],
    });
    const trigger = await run(code, { RUN: 'r42' });
    expect(trigger.status).toBe(202);
    const id = trigger.body.workflowInstanceId;

    const instance = await finished(id);
    expect(instance.state).toBe('SUCCESS');
    expect(instance.tasks.map((t) => [t.name, t.state, t.attempt, t.exitCode]).sort()).toEqual([
      ['a', 'SUCCESS', 1, 0],
      ['b', 'SUCCESS', 1, 0],
      ['c', 'SUCCESS', 1, 0],
      ['d', 'SUCCESS', 1, 0],
    ]);

    const lines = readFileSync(witness, 'utf8').trim().split('\n');
    const at = (entry: string) => lines.findIndex((l) => l.startsWith(entry));
    expect(lines).toHaveLength(8);
    // No task starts before all its upstream tasks ended.
    expect(at('a end')).toBeLessThan(at('b start'));
    expect(at('a end')).toBeLessThan(at('c start'));
    expect(at('b end')).toBeLessThan(at('d start'));
    expect(at('c end')).toBeLessThan(at('d start'));
    for (const t of instance.tasks) {
      expect(lines).toContain(`${t.name} start ${id} ${t.id} 1 r42`);
    }
  });

  it('fails the run on a failing task and never starts its downstream tasks', async () => {
    const witness = join(scratch, 'failing.txt');
    const code = await createWorkflow({
      name: 'failing',
      tasks: [
        { name: 'ok', type: 'SHELL', command: `echo ok >> ${witness}` },
        { name: 'boom', type: 'SHELL', command: `echo boom >> ${witness}; exit 3` },
        { name: 'after', type: 'SHELL', command: `echo after >> ${witness}` },
      ],
      edges: [
        { from: 'ok', to: 'boom' },
        { from: 'boom', to: 'after' },
      ],
    });
    const id = (await run(code)).body.workflowInstanceId;
    const instance = await finished(id);
    expect(instance.state).toBe('FAILURE');
    const boom = instance.tasks.find((t) => t.name === 'boom');
    expect(boom?.state).toBe('FAILURE');
    expect(boom?.exitCode).toBe(3);
    expect(instance.tasks.some((t) => t.name === 'after')).toBe(false);
    expect(readFileSync(witness, 'utf8').trim().split('\n')).toEqual(['ok', 'boom']);
  });

  it('kills a timed-out task’s whole process group', async () => {
    const pidFile = join(scratch, 'timeout.pids');
    const code = await createWorkflow({
      name: 'timeout',
      tasks: [
        {
          name: 'slow',
          type: 'SHELL',
          command: `sleep 600 & echo $! >> ${pidFile}; echo $$ >> ${pidFile}; wait`,
          timeoutMs: 1500,
        },
      ],
    });
    const id = (await run(code)).body.workflowInstanceId;
    const instance = await finished(id);
    expect(instance.state).toBe('FAILURE');
    expect(instance.tasks[0]?.state).toBe('FAILURE');
    const pids = readFileSync(pidFile, 'utf8').trim().split('\n').map(Number);
    expect(pids).toHaveLength(2);
    for (const pid of pids) {
      // Gone, or at most a zombie waiting to be reaped by init.
      const stat = `/proc/${pid}/stat`;
      const alive = existsSync(stat) && !/\) Z /.test(readFileSync(stat, 'utf8'));
      expect(alive).toBe(false);
    }
  });

  it('returns what a task printed from the log route', async () => {
    const code = await createWorkflow({
      name: 'logs',
      tasks: [
        {
          name: 'talk',
          type: 'SHELL',
          command: 'echo "hello from $PORPOISE_TASK_NAME"; echo "to stderr" >&2',
        },
      ],
    });
    const id = (await run(code)).body.workflowInstanceId;
    const instance = await finished(id);
    const [task] = instance.tasks;
    if (!task) throw new Error(`instance ${id} has no task`);
    const log = await call<string>('GET', `/task-instances/${task.id}/log`);
    expect(log.status).toBe(200);
    expect(log.body).toContain('hello from talk');
    expect(log.body).toContain('to stderr');
  });

  it('starts one run for a repeated Idempotency-Key', async () => {
    const witness = join(scratch, 'idempotent.txt');
    const code = await createWorkflow({
      name: 'once',
      tasks: [{ name: 'mark', type: 'SHELL', command: `echo $PORPOISE_WORKFLOW_INSTANCE_ID >> ${witness}` }],
    });
    const answers = await Promise.all([1, 2, 3, 4, 5].map(() => run(code, undefined, 'same-key-1')));
    const ids = new Set(answers.map((a) => a.body.workflowInstanceId));
    expect(answers.every((a) => a.status === 202)).toBe(true);
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    if (id === undefined) throw new Error('no run was answered');
    expect((await finished(id)).state).toBe('SUCCESS');
    const list = await call<{ total: number }>('GET', `/workflow-instances?workflowCode=${code}`);
    expect(list.body.total).toBe(1);
    expect(readFileSync(witness, 'utf8').trim().split('\n')).toEqual([String(id)]);
  });
});
