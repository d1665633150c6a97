/**
 * GET /workflow-instances/{id}/diagnosis (DESIGN.md section 12) on a real Postgres and the JDBC
 * registry, the API server booted as main.ts boots it. Runs are triggered through the API; what a
 * master would have written (taking the command, attempt rows) is written with the same SQL
 * columns, and the cluster is what the registry holds: a master key and worker keys with real
 * heartbeats, put by a registry client of their own.
 */
import type { INestApplication } from '@nestjs/common';
import { REGISTRY_PATHS } from '@porpoise/common';
import { runMigrations } from '@porpoise/dao';
import { createRegistry, type Registry } from '@porpoise/registry';
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { Client } from 'pg';
import { startApiUnderTest } from './support/api-under-test';

const SECRET = 'diagnosis-test-secret-0123456789';
const MASTER = { host: '127.0.0.1', port: 5999 };
const WORKER = { host: '127.0.0.1', port: 1299 };
const BUSY_WORKER = { host: '127.0.0.1', port: 1298 };

interface Diagnosis {
  workflowInstanceId: number;
  state: string;
  host: string | null;
  tasks: Array<{
    name: string;
    state: string | null;
    waitingFor: string | null;
    since: string | null;
    detail: string;
    upstream?: string[];
    workerGroup?: string;
    retryAt?: string;
    command?: { id: number; type: string };
    host?: string;
  }>;
}

let pg: TestServer;
let db: Client;
let app: INestApplication;
let base: string;
let registry: Registry;

const call = async <T>(method: string, path: string, body?: unknown) => {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: authHeaders(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
};

const diagnosis = async (id: number | string) =>
  call<Diagnosis>('GET', `/workflow-instances/${id}/diagnosis`);
const byName = (d: Diagnosis) => new Map(d.tasks.map((t) => [t.name, t]));

const heartbeat = (node: { host: string; port: number }, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    host: node.host,
    port: node.port,
    startTime: Date.now(),
    heartbeatTime: Date.now(),
    cpuUsage: 0.1,
    memoryUsage: 0.2,
    loadAverage: 0.3,
    serving: true,
    ...extra,
  });

/** A workflow through the API; returns its code. */
async function createWorkflow(body: unknown): Promise<string> {
  const res = await call<{ code: string }>('POST', '/workflows', body);
  expect(res.status).toBe(201);
  return res.body.code;
}

async function trigger(code: string): Promise<number> {
  const res = await call<{ workflowInstanceId: number }>('POST', `/workflows/${code}/runs`);
  expect(res.status).toBe(202);
  return res.body.workflowInstanceId;
}

/** What the consume statement does: the command is gone, the instance runs on MASTER. */
async function takenByMaster(id: number, host = `${MASTER.host}:${MASTER.port}`): Promise<void> {
  await db.query('DELETE FROM command WHERE workflow_instance_id = $1', [id]);
  await db.query(
    `UPDATE workflow_instance SET host = $2, epoch = epoch + 1, state = 'RUNNING_EXECUTION',
       start_time = now() - interval '1 minute' WHERE id = $1`,
    [id, host],
  );
}

/** An attempt row as the master writes it. */
async function attempt(
  id: number,
  name: string,
  state: string,
  extra: { host?: string; attempt?: number; retryInS?: number } = {},
): Promise<void> {
  await db.query(
    `INSERT INTO task_instance (workflow_instance_id, name, state, host, attempt, start_time, end_time, retry_due_at)
     VALUES ($1, $2, $3, $4, $5,
       CASE WHEN $3 IN ('RUNNING_EXECUTION', 'SUCCESS', 'DELAY_EXECUTION') THEN now() - interval '30 seconds' END,
       CASE WHEN $3 IN ('SUCCESS', 'DELAY_EXECUTION') THEN now() - interval '20 seconds' END,
       CASE WHEN $6::int IS NOT NULL THEN now() + $6::int * interval '1 second' END)`,
    [id, name, state, extra.host ?? null, extra.attempt ?? 1, extra.retryInS ?? null],
  );
}

const shell = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'SHELL',
  command: 'true',
  ...extra,
});

beforeAll(async () => {
  pg = await startPostgres();
  await runMigrations(pg.endpoint);
  db = new Client({ connectionString: pg.endpoint });
  await db.connect();
  ({ app, base } = await startApiUnderTest(pg.endpoint, SECRET));
  // The cluster the API server reads: one live master, a worker in `default` with room, a full
  // worker in `busy`, nobody in `gpu`.
  registry = createRegistry({ type: 'jdbc', databaseUrl: pg.endpoint, sessionTimeoutMs: 10_000 });
  await registry.start();
  await registry.put(REGISTRY_PATHS.master(MASTER.host, MASTER.port), heartbeat(MASTER), { ephemeral: true });
  await registry.put(
    REGISTRY_PATHS.worker('default', WORKER.host, WORKER.port),
    heartbeat(WORKER, { group: 'default', registration: 1, runningTasks: 1, capacity: 4 }),
    { ephemeral: true },
  );
  await registry.put(
    REGISTRY_PATHS.worker('busy', BUSY_WORKER.host, BUSY_WORKER.port),
    heartbeat(BUSY_WORKER, { group: 'busy', registration: 1, runningTasks: 2, capacity: 2 }),
    { ephemeral: true },
  );
});

afterAll(async () => {
  await registry?.close();
  await app?.close();
  await db?.end();
  await pg?.dispose();
});

describe('GET /workflow-instances/{id}/diagnosis', () => {
  it('a run no master took yet: every task waits for a master since its command was written', async () => {
    const code = await createWorkflow({
      name: 'waiting',
      tasks: [shell('a'), shell('b')],
      edges: [{ from: 'a', to: 'b' }],
    });
    const id = await trigger(code);
    const { rows } = await db.query<{ id: string; type: string; created_at: Date }>(
      'SELECT id, type, created_at FROM command WHERE workflow_instance_id = $1',
      [id],
    );
    const command = rows[0]!;
    const res = await diagnosis(id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ workflowInstanceId: id, state: 'SUBMITTED_SUCCESS', host: null });
    expect(res.body.tasks).toEqual(
      ['a', 'b'].map((name) => ({
        name,
        state: null,
        waitingFor: 'master',
        since: command.created_at.toISOString(),
        detail: `its START_PROCESS command ${command.id} waits for a master to take it`,
        command: { id: Number(command.id), type: 'START_PROCESS' },
      })),
    );
  });

  it('a paused run: every unfinished task is paused, since the pause', async () => {
    const code = await createWorkflow({ name: 'paused', tasks: [shell('a'), shell('b')], edges: [] });
    const id = await trigger(code);
    // Paused before any master took it: PAUSE at once (DESIGN.md section 4).
    expect((await call('POST', `/workflow-instances/${id}/pause`)).status).toBe(202);
    // Since the pause: its end_time, or when it was paused (updated_at) where none is set.
    const { rows } = await db.query<{ paused_at: Date }>(
      'SELECT coalesce(end_time, updated_at) AS paused_at FROM workflow_instance WHERE id = $1',
      [id],
    );
    const since = rows[0]!.paused_at.toISOString();
    const res = await diagnosis(id);
    expect(res.body.state).toBe('PAUSE');
    expect(res.body.tasks.map((t) => [t.name, t.state, t.waitingFor, t.since])).toEqual([
      ['a', null, 'paused', since],
      ['b', null, 'paused', since],
    ]);
  });

  it('a running run: upstream, a group without live workers, a full group, a retry delay; running and finished tasks', async () => {
    const code = await createWorkflow({
      name: 'running',
      tasks: [
        shell('extract'),
        shell('load'),
        shell('report'),
        shell('train', { workerGroup: 'gpu' }),
        shell('crunch', { workerGroup: 'busy' }),
        shell('flaky', { retries: 2, retryIntervalMs: 3_600_000 }),
        shell('ready'),
        shell('done'),
      ],
      edges: [
        { from: 'extract', to: 'load' },
        { from: 'load', to: 'report' },
        { from: 'done', to: 'ready' },
      ],
    });
    const id = await trigger(code);
    await takenByMaster(id);
    await attempt(id, 'extract', 'RUNNING_EXECUTION', { host: `${WORKER.host}:${WORKER.port}` });
    await attempt(id, 'train', 'SUBMITTED_SUCCESS');
    await attempt(id, 'crunch', 'SUBMITTED_SUCCESS');
    await attempt(id, 'flaky', 'FAILURE');
    await attempt(id, 'flaky', 'DELAY_EXECUTION', { attempt: 2, retryInS: 3600 });
    await attempt(id, 'done', 'SUCCESS');
    await attempt(id, 'ready', 'SUBMITTED_SUCCESS');

    const res = await diagnosis(id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ state: 'RUNNING_EXECUTION', host: `${MASTER.host}:${MASTER.port}` });
    const tasks = byName(res.body);
    const { rows } = await db.query<{
      name: string;
      created_at: Date;
      end_time: Date | null;
      retry_due_at: Date;
    }>(`SELECT name, created_at, end_time, retry_due_at FROM task_instance WHERE workflow_instance_id = $1`, [
      id,
    ]);
    const stored = (name: string) => rows.filter((r) => r.name === name).at(-1)!;
    const started = await db.query<{ start_time: Date }>(
      'SELECT start_time FROM workflow_instance WHERE id = $1',
      [id],
    );

    expect([...tasks.keys()].sort()).toEqual([
      'crunch',
      'extract',
      'flaky',
      'load',
      'ready',
      'report',
      'train',
    ]);
    expect(tasks.get('extract')).toMatchObject({
      state: 'RUNNING_EXECUTION',
      waitingFor: null,
      host: `${WORKER.host}:${WORKER.port}`,
    });
    expect(tasks.get('load')).toEqual({
      name: 'load',
      state: null,
      waitingFor: 'upstream',
      since: started.rows[0]!.start_time.toISOString(),
      detail: 'waits for extract to succeed',
      upstream: ['extract'],
    });
    expect(tasks.get('report')).toMatchObject({ waitingFor: 'upstream', upstream: ['load'] });
    expect(tasks.get('train')).toEqual({
      name: 'train',
      state: 'SUBMITTED_SUCCESS',
      waitingFor: 'worker-group',
      since: stored('train').created_at.toISOString(),
      detail: 'no live worker in group gpu',
      workerGroup: 'gpu',
    });
    expect(tasks.get('crunch')).toMatchObject({
      state: 'SUBMITTED_SUCCESS',
      waitingFor: 'worker-capacity',
      workerGroup: 'busy',
    });
    expect(tasks.get('flaky')).toEqual({
      name: 'flaky',
      state: 'DELAY_EXECUTION',
      waitingFor: 'retry-delay',
      since: stored('flaky').end_time!.toISOString(),
      detail: `attempt 2 failed; the next one starts at ${stored('flaky').retry_due_at.toISOString()}`,
      retryAt: stored('flaky').retry_due_at.toISOString(),
    });
    // Ready with a worker free: nothing holds it.
    expect(tasks.get('ready')).toMatchObject({
      waitingFor: null,
      detail: 'being dispatched to a worker of group default',
    });

    // A worker joins `gpu`: train is no longer held by its group.
    const gpu = { host: '127.0.0.1', port: 1297 };
    await registry.put(
      REGISTRY_PATHS.worker('gpu', gpu.host, gpu.port),
      heartbeat(gpu, { group: 'gpu', registration: 1, runningTasks: 0, capacity: 1 }),
      { ephemeral: true },
    );
    expect(byName((await diagnosis(id)).body).get('train')).toMatchObject({ waitingFor: null });
    await registry.delete(REGISTRY_PATHS.worker('gpu', gpu.host, gpu.port));

    // Its master leaves the registry: everything not running waits for a master (failover).
    await db.query('UPDATE workflow_instance SET host = $2 WHERE id = $1', [id, '127.0.0.1:5998']);
    const orphan = byName((await diagnosis(id)).body);
    expect(orphan.get('extract')).toMatchObject({ waitingFor: null });
    for (const name of ['load', 'train', 'crunch', 'flaky']) {
      expect(orphan.get(name)).toMatchObject({
        waitingFor: 'master',
        detail: 'its master 127.0.0.1:5998 is not in the registry; failover hands the run to a live master',
      });
    }
  });

  it('an ended run has nothing waiting', async () => {
    const code = await createWorkflow({ name: 'ended', tasks: [shell('a'), shell('b')], edges: [] });
    const id = await trigger(code);
    expect((await call('POST', `/workflow-instances/${id}/stop`)).status).toBe(202);
    const res = await diagnosis(id);
    expect(res.body).toMatchObject({ state: 'STOP', tasks: [] });
  });

  it('404 for an unknown instance, 400 for an id that is not one', async () => {
    expect(await diagnosis(987654)).toEqual({
      status: 404,
      body: { statusCode: 404, error: 'Not Found', message: 'workflow instance 987654 not found' },
    });
    for (const bad of ['abc', '0', '-1', '1.5']) {
      const res = await diagnosis(bad);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        message: expect.stringMatching(/workflow instance id must be a positive integer/),
      });
    }
  });

  it('is in the OpenAPI document', async () => {
    const res = await fetch(`${base}/api/docs-json`);
    const doc = (await res.json()) as {
      paths: Record<string, { get?: { responses: Record<string, unknown> } }>;
    };
    const op = doc.paths['/api/v1/workflow-instances/{id}/diagnosis']?.get;
    expect(op).toBeDefined();
    // 401 and 403: every /api/v1 operation needs a token with its scope (section 11).
    expect(Object.keys(op!.responses).sort()).toEqual(['200', '400', '401', '403', '404', '503']);
  });
});
