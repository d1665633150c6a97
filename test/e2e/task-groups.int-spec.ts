/**
 * Task groups end to end (DESIGN.md section 10), every node its own process from the built code:
 * an API server, two masters and two workers over a real Postgres (JDBC registry). A group of
 * capacity 2; three workflows of three grouped tasks each; a master and a worker SIGKILLed midway.
 * From the task rows' start and end times: at no moment more than 2 tasks of the group run; every
 * run finishes; no queue row is left behind.
 */
import { startPostgres, stopProcess, waitFor, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { Client } from 'pg';
import { startNode, stopNodes, type NodeProcess } from './cluster-processes';

const SECRET = 'e2e-task-group-secret-0123456789';
const FINAL = ['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'];

interface Instance {
  id: number;
  state: string;
  host: string | null;
  tasks: Array<{ id: number; name: string; state: string; attempt: number; host: string | null }>;
}

interface Diagnosis {
  tasks: Array<{ name: string; waitingFor: string | null; since: string | null; taskGroup?: string }>;
}

describe('task groups end to end (api-server, 2 masters, 2 workers; Postgres; JDBC registry)', () => {
  let pg: TestServer;
  let db: Client;
  let apiNode: NodeProcess | undefined;
  let masters: NodeProcess[] = [];
  let workers: NodeProcess[] = [];
  const dead: NodeProcess[] = [];
  let api = '';
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
  const until = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 90_000) =>
    waitFor(what, async () => (await probe()) || undefined, timeoutMs, 100) as Promise<T>;
  const instance = async (id: number) => (await call<Instance>('GET', `/workflow-instances/${id}`)).body;
  const registered = (kind: 'masters' | 'workers') => async (port: number) => {
    const res = await call<Record<typeof kind, Array<{ port: number }>>>('GET', '/cluster/nodes');
    return res.body[kind].some((n) => n.port === port);
  };
  const sigkill = async (node: NodeProcess) => {
    node.child.kill('SIGKILL');
    await until(`${node.role} ${node.port} to exit`, async () => node.child.signalCode !== null);
    dead.push(node);
  };

  beforeAll(async () => {
    pg = await startPostgres();
    db = new Client({ connectionString: pg.endpoint });
    env = {
      DATABASE_URL: pg.endpoint,
      REGISTRY_TYPE: 'jdbc',
      CLUSTER_SECRET: SECRET,
      REGISTRY_SESSION_TIMEOUT_MS: '3000',
      HEARTBEAT_INTERVAL_MS: '500',
    };
    apiNode = await startNode('api-server', env, async (port) => {
      const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
      return res?.status === 200;
    });
    api = `http://127.0.0.1:${apiNode.port}`;
    await db.connect();
    masters = await Promise.all([0, 1].map(() => startNode('master', env, registered('masters'))));
    workers = await Promise.all([0, 1].map(() => startNode('worker', env, registered('workers'))));
  });

  afterAll(async () => {
    await stopNodes([...masters, ...workers, ...(apiNode ? [apiNode] : [])].filter((n) => !dead.includes(n)));
    await Promise.all(dead.map((n) => stopProcess(n.child, 'SIGKILL', 5_000)));
    await db?.end();
    await pg?.dispose();
  });

  it('capacity 2 across 3 runs × 3 tasks, a master and a worker SIGKILLed midway: never more than 2 run', async () => {
    expect((await call('POST', '/task-groups', { name: 'warehouse', capacity: 2 })).status).toBe(201);
    const codes: string[] = [];
    for (const wf of ['load_a', 'load_b', 'load_c']) {
      const created = await call<{ code: string }>('POST', '/workflows', {
        name: wf,
        tasks: ['t1', 't2', 't3'].map((name) => ({
          name,
          type: 'SHELL',
          command: 'sleep 2',
          taskGroup: 'warehouse',
        })),
      });
      expect(created.status).toBe(201);
      codes.push(created.body.code);
    }
    const ids: number[] = [];
    for (const code of codes) {
      const res = await call<{ workflowInstanceId: number }>('POST', `/workflows/${code}/runs`);
      expect(res.status).toBe(202);
      ids.push(res.body.workflowInstanceId);
    }

    // A task waiting for the group says so (section 12), with the group and since when it asked.
    const waiting = await until('a task waiting for a slot of warehouse', async () => {
      for (const id of ids) {
        const d = (await call<Diagnosis>('GET', `/workflow-instances/${id}/diagnosis`)).body;
        const t = d.tasks.find((x) => x.waitingFor === 'task-group');
        if (t) return t;
      }
      return undefined;
    });
    expect(waiting).toMatchObject({ waitingFor: 'task-group', taskGroup: 'warehouse' });
    expect(waiting.since).not.toBeNull();
    const usage = (await call<{ held: number; waiting: number }>('GET', '/task-groups/warehouse')).body;
    expect(usage.held).toBeLessThanOrEqual(2);

    // Midway: a worker running a task of the group, and the master driving a run that still has
    // tasks waiting for the group, both SIGKILLed.
    const victim = await until('a task of the group running on a worker', async () => {
      for (const id of ids) {
        const t = (await instance(id)).tasks.find((x) => x.state === 'RUNNING_EXECUTION' && x.host !== null);
        if (t) return t;
      }
      return undefined;
    });
    const worker = workers.find((w) => victim.host?.endsWith(`:${w.port}`));
    if (!worker) throw new Error(`no worker runs ${victim.name} (host ${victim.host})`);
    const owners = await Promise.all(ids.map(instance));
    const driven = owners.find(
      (i) => i.state === 'RUNNING_EXECUTION' && i.tasks.some((t) => t.state === 'SUBMITTED_SUCCESS'),
    );
    const master = masters.find((m) => driven?.host?.endsWith(`:${m.port}`)) ?? masters[0];
    if (!master) throw new Error('no master to kill');
    await Promise.all([sigkill(worker), sigkill(master)]);

    const ended = await Promise.all(
      ids.map((id) =>
        until<Instance>(`instance ${id} to finish`, async () => {
          const i = await instance(id);
          return FINAL.includes(i.state) ? i : undefined;
        }),
      ),
    );
    expect(ended.map((i) => i.state)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);

    // Every attempt that ran, from its start to its end (or to when its worker was declared
    // lost, which freed its slot): never more than 2 at once.
    const attempts = await db.query<{ name: string; state: string; start: Date; stop: Date }>(
      `SELECT name, state, start_time AS start, coalesce(end_time, updated_at) AS stop FROM task_instance
       WHERE workflow_instance_id = ANY($1::bigint[]) AND start_time IS NOT NULL`,
      [ids],
    );
    expect(attempts.rows.filter((a) => a.state === 'SUCCESS')).toHaveLength(9);
    expect(attempts.rows.some((a) => a.state === 'NEED_FAULT_TOLERANCE')).toBe(true);
    const events = attempts.rows.flatMap((a) => [
      { at: a.start.getTime(), d: 1 },
      { at: a.stop.getTime(), d: -1 },
    ]);
    // An end and a start at the same instant: the end first (the slot was freed, then given).
    events.sort((x, y) => x.at - y.at || x.d - y.d);
    let running = 0;
    let most = 0;
    for (const e of events) {
      running += e.d;
      most = Math.max(most, running);
    }
    expect(most).toBeLessThanOrEqual(2);
    expect(most).toBe(2);

    const left = await db.query<{ n: string }>('SELECT count(*) AS n FROM task_group_queue');
    expect(Number(left.rows[0]?.n)).toBe(0);
    expect((await call('GET', '/task-groups/warehouse')).body).toMatchObject({ held: 0, waiting: 0 });
    expect((await call('DELETE', '/task-groups/warehouse')).status).toBe(204);
  });
});
