/**
 * DEPENDENT tasks (DESIGN.md section 9) end to end, every node its own process from the built
 * code: one API server, two masters and one worker over a real Postgres, a real ZooKeeper and
 * gRPC, driven only through the REST API. Every DEPENDENT task here re-checks only every 60 s, and
 * every wait for its end is bounded well below that: it ends that soon only because the trigger's
 * NOTIFY porpoise_instance_end woke it (or, after a SIGKILL, because the new owner checks at once).
 * No timing is asserted beyond that bound.
 */
import { startPostgres, startZooKeeper, stopProcess, waitFor, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { startNode, stopNodes, type NodeProcess } from './cluster-processes';

const SECRET = 'e2e-cluster-secret-0123456789';
const FINAL = ['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'];
/** Longer than any wait below: only a wake-up can end a DEPENDENT task before it. */
const CHECK_INTERVAL_MS = 60_000;
/** Each wait for a DEPENDENT task's end, from when it is seen waiting: below CHECK_INTERVAL_MS. */
const WAKE_BOUND_MS = 40_000;

interface Task {
  id: number;
  name: string;
  state: string;
  attempt: number;
  host: string | null;
  message: string | null;
  startTime: string | null;
}
interface Instance {
  id: number;
  state: string;
  host: string | null;
  tasks: Task[];
}
interface Diagnosis {
  tasks: Array<{
    name: string;
    state: string | null;
    waitingFor: string | null;
    detail: string;
    host?: string;
  }>;
}

describe('DEPENDENT end to end (api-server, 2 masters, a worker; Postgres; ZooKeeper)', () => {
  let pg: TestServer;
  let zk: TestServer;
  let apiNode: NodeProcess | undefined;
  let worker: NodeProcess | undefined;
  let masters: NodeProcess[] = [];
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
  const createWorkflow = async (definition: unknown): Promise<string> => {
    const res = await call<{ code: string }>('POST', '/workflows', definition);
    if (res.status !== 201) {
      throw new Error(`POST /workflows answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    return res.body.code;
  };
  const run = async (code: string): Promise<number> => {
    const res = await call<{ workflowInstanceId: number }>('POST', `/workflows/${code}/runs`);
    expect(res.status).toBe(202);
    return res.body.workflowInstanceId;
  };
  const instance = async (id: number) => (await call<Instance>('GET', `/workflow-instances/${id}`)).body;
  const until = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000) =>
    waitFor(what, async () => (await probe()) || undefined, timeoutMs, 100) as Promise<T>;
  const finished = (id: number, timeoutMs = 60_000) =>
    until<Instance>(
      `instance ${id} to finish`,
      async () => {
        const i = await instance(id);
        return FINAL.includes(i.state) ? i : undefined;
      },
      timeoutMs,
    );
  const states = (i: Instance) => Object.fromEntries(i.tasks.map((t) => [t.name, t.state]));

  /** An upstream workflow (one task, `command`) and a workflow that waits for it, then runs `after`. */
  const pair = async (name: string, command = 'echo upstream', dependent: Record<string, unknown> = {}) => {
    const upstream = await createWorkflow({
      name: `${name}-upstream`,
      tasks: [{ name: 'load', type: 'SHELL', command }],
    });
    const waiter = await createWorkflow({
      name: `${name}-waiter`,
      tasks: [
        {
          name: 'wait',
          type: 'DEPENDENT',
          dependent: {
            workflowCode: upstream,
            interval: 'month',
            checkIntervalMs: CHECK_INTERVAL_MS,
            ...dependent,
          },
        },
        { name: 'after', type: 'SHELL', command: 'echo after' },
      ],
      edges: [{ from: 'wait', to: 'after' }],
    });
    return { upstream, waiter };
  };
  /** Runs the waiter and returns once its DEPENDENT task waits (checked once: nothing yet). */
  const startWaiting = async (waiter: string): Promise<{ id: number; task: Task }> => {
    const id = await run(waiter);
    const task = await until<Task>(`instance ${id}'s DEPENDENT task to wait`, async () => {
      const i = await instance(id);
      return i.tasks.find((t) => t.name === 'wait' && t.state === 'RUNNING_EXECUTION');
    });
    return { id, task };
  };

  const registered = (kind: 'masters' | 'workers') => async (port: number) => {
    const res = await call<Record<typeof kind, Array<{ port: number }>>>('GET', '/cluster/nodes');
    return res.body[kind].some((n) => n.port === port);
  };
  const startMaster = async () => {
    const master = await startNode('master', env, registered('masters'));
    masters.push(master);
    return master;
  };

  beforeAll(async () => {
    [pg, zk] = await Promise.all([startPostgres(), startZooKeeper()]);
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
  }, 120_000);

  afterAll(async () => {
    await stopNodes([...masters, ...(worker ? [worker] : []), ...(apiNode ? [apiNode] : [])]);
    await Promise.all(dead.map((n) => stopProcess(n.child, 'SIGKILL', 5_000)));
    masters = [];
    await Promise.all([pg?.dispose(), zk?.dispose()]);
  });

  it(
    'woken by the upstream run’s end (NOTIFY), not by its 60 s re-check: SUCCESS, then what follows runs',
    async () => {
      const { upstream, waiter } = await pair('wake');
      const { id } = await startWaiting(waiter);
      // Nothing holds it: it runs, on its master; the detail says what it waits for.
      const diagnosis = await call<Diagnosis>('GET', `/workflow-instances/${id}/diagnosis`);
      const waiting = diagnosis.body.tasks.find((t) => t.name === 'wait');
      expect(waiting).toMatchObject({ state: 'RUNNING_EXECUTION', waitingFor: null });
      expect(waiting?.detail).toContain(`a SUCCESS run of workflow ${upstream} scheduled in [`);
      expect(waiting?.host).toBeUndefined();

      const up = await run(upstream);
      expect((await finished(up)).state).toBe('SUCCESS');
      const done = await finished(id, WAKE_BOUND_MS);
      expect(done.state).toBe('SUCCESS');
      expect(states(done)).toEqual({ wait: 'SUCCESS', after: 'SUCCESS' });
      const wait = done.tasks.find((t) => t.name === 'wait');
      expect(wait?.host).toBeNull();
      expect(wait?.message).toMatch(
        new RegExp(`^workflow ${upstream} succeeded in instance ${up}, scheduled in \\[`),
      );
    },
    WAKE_BOUND_MS + 20_000,
  );

  it(
    'the upstream run fails: the DEPENDENT task fails, naming it, and so does its run',
    async () => {
      const { upstream, waiter } = await pair('fail', 'exit 3');
      const { id } = await startWaiting(waiter);
      const up = await run(upstream);
      expect((await finished(up)).state).toBe('FAILURE');
      const done = await finished(id, WAKE_BOUND_MS);
      expect(done.state).toBe('FAILURE');
      expect(states(done)).toEqual({ wait: 'FAILURE' });
      expect(done.tasks[0]?.message).toMatch(
        new RegExp(
          `^workflow ${upstream}: its latest run scheduled in \\[.*\\), instance ${up}, ended FAILURE$`,
        ),
      );
    },
    WAKE_BOUND_MS + 20_000,
  );

  it(
    'a pause does not wait for it: the run pauses at once, and the resume waits again',
    async () => {
      const { upstream, waiter } = await pair('pause');
      const { id } = await startWaiting(waiter);
      expect((await call('POST', `/workflow-instances/${id}/pause`)).status).toBe(202);
      const paused = await finished(id, WAKE_BOUND_MS);
      expect(paused.state).toBe('PAUSE');
      expect(states(paused)).toEqual({ wait: 'PAUSE' });

      expect((await call('POST', `/workflow-instances/${id}/resume`)).status).toBe(202);
      await until(`instance ${id}'s DEPENDENT task to wait again`, async () =>
        (await instance(id)).tasks.some(
          (t) => t.name === 'wait' && t.attempt === 2 && t.state === 'RUNNING_EXECUTION',
        ),
      );
      await finished(await run(upstream));
      const done = await finished(id, WAKE_BOUND_MS);
      expect(done.state).toBe('SUCCESS');
    },
    2 * WAKE_BOUND_MS + 20_000,
  );

  it(
    'the master driving a waiting DEPENDENT task SIGKILLed: another master adopts it (same attempt, same start time) and it still completes',
    async () => {
      const { upstream, waiter } = await pair('failover', 'echo upstream', { taskName: 'load' });
      const { id, task } = await startWaiting(waiter);
      const before = await instance(id);
      const killed = masters.find((m) => before.host?.endsWith(`:${m.port}`));
      if (!killed) throw new Error(`no live master owns instance ${id} (host ${before.host})`);
      killed.child.kill('SIGKILL');
      await until(
        `master ${killed.port} to exit`,
        async () => killed.child.exitCode !== null || killed.child.signalCode !== null,
      );
      masters = masters.filter((m) => m !== killed);
      dead.push(killed);

      // The survivor takes the instance over (session timeout, then failover) and checks again.
      const adopted = await until<Instance>(`instance ${id} to be taken over`, async () => {
        const i = await instance(id);
        return i.host !== null && !i.host.endsWith(`:${killed.port}`) && i;
      });
      const carried = adopted.tasks.filter((t) => t.name === 'wait');
      expect(carried).toEqual([
        expect.objectContaining({ id: task.id, attempt: 1, state: 'RUNNING_EXECUTION' }),
      ]);
      // Its timeout still counts from when it started: the start time is the original one.
      expect(carried[0]?.startTime).toBe(task.startTime);
      expect(task.startTime).not.toBeNull();

      const up = await run(upstream);
      expect((await finished(up)).state).toBe('SUCCESS');
      const done = await finished(id, WAKE_BOUND_MS);
      expect(done.state).toBe('SUCCESS');
      expect(states(done)).toEqual({ wait: 'SUCCESS', after: 'SUCCESS' });
      expect(done.host).not.toMatch(new RegExp(`:${killed.port}$`));
      expect(done.tasks.find((t) => t.name === 'wait')?.message).toMatch(
        new RegExp(`^task load of workflow ${upstream} succeeded in instance ${up}`),
      );
      await startMaster();
    },
    WAKE_BOUND_MS + 60_000,
  );
});
