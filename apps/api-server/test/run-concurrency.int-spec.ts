/**
 * Run concurrency through the REST API (README "Run concurrency") on a real Postgres: the
 * `concurrency` field is validated with a 400 naming the field, stored, answered and denormalised
 * onto workflow_definition; a run of a limited workflow is SERIAL_WAIT with no command; stop and
 * pause end a waiting run at once; a rerun waits again; the instance list filters by SERIAL_WAIT;
 * the OpenAPI document has the field and the state.
 */
import type { INestApplication } from '@nestjs/common';
import { runMigrations } from '@porpoise/dao';
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { Client } from 'pg';
import { startApiUnderTest } from './support/api-under-test';

let pg: TestServer;
let db: Client;
let app: INestApplication;
let base: string;

const call = async <T>(method: string, path: string, body?: unknown) => {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: authHeaders(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
};

const definition = (concurrency?: unknown) => ({
  name: 'serial',
  ...(concurrency === undefined ? {} : { concurrency }),
  tasks: [{ name: 'a', type: 'SHELL', command: 'true' }],
});

async function createWorkflow(concurrency?: unknown): Promise<string> {
  const res = await call<{ code: string }>('POST', '/workflows', definition(concurrency));
  expect(res.status).toBe(201);
  return res.body.code;
}

async function trigger(code: string): Promise<{ commandId: number; workflowInstanceId: number }> {
  const res = await call<{ commandId: number; workflowInstanceId: number }>(
    'POST',
    `/workflows/${code}/runs`,
  );
  expect(res.status).toBe(202);
  return res.body;
}

const stateOf = async (id: number): Promise<string> =>
  (await call<{ state: string }>('GET', `/workflow-instances/${id}`)).body.state;
const commandsOf = async (id: number): Promise<number> =>
  Number(
    (await db.query<{ n: string }>('SELECT count(*) AS n FROM command WHERE workflow_instance_id = $1', [id]))
      .rows[0]?.n,
  );

beforeAll(async () => {
  pg = await startPostgres();
  await runMigrations(pg.endpoint);
  db = new Client({ connectionString: pg.endpoint });
  await db.connect();
  ({ app, base } = await startApiUnderTest(pg.endpoint, 'run-concurrency-test-secret-0123456789'));
}, 120_000);

afterAll(async () => {
  await app?.close();
  await db?.end();
  await pg?.dispose();
});

describe('run concurrency (REST)', () => {
  it.each([
    [{ policy: 'SERIAL' }, 'concurrency.policy'],
    [{ maxRuns: 0 }, 'concurrency.maxRuns'],
    [{ policy: 'SERIAL_WAIT', maxRuns: 2 }, 'concurrency.maxRuns'],
    [{ policy: 'PARALLEL', limit: 2 }, 'concurrency.limit'],
    ['SERIAL_WAIT', 'concurrency'],
  ])('refuses concurrency %j with a 400 naming %s', async (concurrency, field) => {
    const res = await call<{ message: string }>('POST', '/workflows', definition(concurrency));
    expect(res.status).toBe(400);
    expect(res.body.message).toContain(field);
  });

  it('stores, answers and denormalises the concurrency; PUT changes it', async () => {
    const code = await createWorkflow({ maxRuns: 3 });
    const got = await call<{ concurrency: unknown }>('GET', `/workflows/${code}`);
    expect(got.body.concurrency).toEqual({ policy: 'PARALLEL', maxRuns: 3 });
    const columns = async () =>
      (await db.query('SELECT concurrency_policy, max_runs FROM workflow_definition WHERE code = $1', [code]))
        .rows[0] as unknown;
    expect(await columns()).toEqual({ concurrency_policy: 'PARALLEL', max_runs: 3 });
    const put = await call<{ concurrency: unknown }>(
      'PUT',
      `/workflows/${code}`,
      definition({ policy: 'SERIAL_DISCARD' }),
    );
    expect(put.status).toBe(200);
    expect(put.body.concurrency).toEqual({ policy: 'SERIAL_DISCARD' });
    expect(await columns()).toEqual({ concurrency_policy: 'SERIAL_DISCARD', max_runs: null });
    const plain = await createWorkflow();
    expect((await call<{ concurrency: unknown }>('GET', `/workflows/${plain}`)).body.concurrency).toEqual({
      policy: 'PARALLEL',
    });
  });

  it('a run of a limited workflow waits as SERIAL_WAIT; stop and pause end a waiting run; a rerun waits again', async () => {
    const code = await createWorkflow({ policy: 'SERIAL_WAIT' });
    const a = await trigger(code);
    const b = await trigger(code);
    expect(await stateOf(a.workflowInstanceId)).toBe('SERIAL_WAIT');
    expect(await commandsOf(a.workflowInstanceId)).toBe(0);
    expect(b.commandId).toBeGreaterThan(a.commandId);

    const listed = await call<{ items: Array<{ id: number; state: string }>; total: number }>(
      'GET',
      `/workflow-instances?workflowCode=${code}&state=SERIAL_WAIT`,
    );
    expect(listed.status).toBe(200);
    expect(listed.body.total).toBe(2);

    const stop = await call<{ state: string }>('POST', `/workflow-instances/${a.workflowInstanceId}/stop`);
    expect(stop.status).toBe(202);
    expect(stop.body.state).toBe('STOP');
    const pause = await call<{ state: string }>('POST', `/workflow-instances/${b.workflowInstanceId}/pause`);
    expect(pause.body.state).toBe('PAUSE');
    expect(await stateOf(b.workflowInstanceId)).toBe('PAUSE');

    const resume = await call<{ state: string; commandId: number }>(
      'POST',
      `/workflow-instances/${b.workflowInstanceId}/resume`,
    );
    expect(resume.body.state).toBe('SERIAL_WAIT');
    expect(resume.body.commandId).toBeGreaterThan(b.commandId);
    const rerun = await call<{ state: string }>('POST', `/workflow-instances/${a.workflowInstanceId}/rerun`);
    expect(rerun.body.state).toBe('SERIAL_WAIT');
    expect(await commandsOf(a.workflowInstanceId)).toBe(0);
  });

  it('a backfill of a SERIAL_DISCARD workflow with parallelism > 1 is a 400 naming the field', async () => {
    const code = await createWorkflow({ policy: 'SERIAL_DISCARD' });
    const body = { start: '2024-01-01', end: '2024-01-03', cron: '0 0 * * *', timezone: 'UTC' };
    const refused = await call<{ message: string }>('POST', `/workflows/${code}/backfill`, {
      ...body,
      parallelism: 2,
    });
    expect(refused.status).toBe(400);
    expect(refused.body.message).toMatch(/"parallelism" must be 1 .* SERIAL_DISCARD/);
    const accepted = await call<{ runs: number }>('POST', `/workflows/${code}/backfill`, {
      ...body,
      parallelism: 1,
    });
    expect(accepted.status).toBe(202);
    expect(accepted.body.runs).toBe(3);
  });

  it('the OpenAPI document has the field and the state', async () => {
    const doc = (await (await fetch(`${base}/api/docs-json`)).json()) as {
      components: { schemas: Record<string, { properties?: Record<string, { enum?: string[] }> }> };
    };
    const schemas = doc.components.schemas;
    expect(schemas.ConcurrencyDto?.properties?.policy?.enum).toEqual([
      'PARALLEL',
      'SERIAL_WAIT',
      'SERIAL_DISCARD',
    ]);
    expect(schemas.WorkflowBodyDto?.properties).toHaveProperty('concurrency');
    expect(schemas.WorkflowDto?.properties).toHaveProperty('concurrency');
    expect(JSON.stringify(doc)).toContain('SERIAL_WAIT');
  });
});
