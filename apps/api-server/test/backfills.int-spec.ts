/**
 * The backfill routes (DESIGN.md section 10) on an API server booted in-process against a real
 * Postgres, with no master running: the POST stores the backfill and all its dates in one
 * statement and creates no instance; GET and cancel read and end it.
 */
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { Client } from 'pg';
import { startApiUnderTest, type ApiUnderTest } from './support/api-under-test';

interface Reply {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

let pg: TestServer;
let db: Client;
let api: ApiUnderTest;

async function send(method: string, path: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${api.base}/api/v1${path}`, {
    method,
    headers: authHeaders(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

async function count(table: string): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n ?? -1;
}

async function createWorkflow(): Promise<string> {
  const res = await send('POST', '/workflows', {
    name: 'daily',
    tasks: [{ name: 'a', type: 'SHELL', command: 'echo ${porpoise.bizDate}' }],
  });
  expect(res.status).toBe(201);
  return res.json.code as string;
}

beforeAll(async () => {
  pg = await startPostgres();
  db = new Client({ connectionString: pg.endpoint });
  await db.connect();
  api = await startApiUnderTest(pg.endpoint, 'backfill-test-secret-0123456789');
});

afterAll(async () => {
  await api?.app.close();
  await db?.end();
  await pg?.dispose();
});

describe('POST /workflows/{code}/backfill', () => {
  it('accepts 5,000 dates in one request: one backfill row, 5,000 date rows, no instance', async () => {
    const code = await createWorkflow();
    const instancesBefore = await count('workflow_instance');
    const commandsBefore = await count('command');
    // 2010-01-01 .. 2023-09-09 is 5,000 days.
    const res = await send('POST', `/workflows/${code}/backfill`, {
      start: '2010-01-01',
      end: '2023-09-09',
      cron: '0 0 * * *',
      parallelism: 4,
    });
    expect(res).toEqual({ status: 202, json: { backfillId: expect.any(Number), runs: 5000 } });
    const id = res.json.backfillId as number;
    expect(await count('workflow_instance')).toBe(instancesBefore);
    expect(await count('command')).toBe(commandsBefore);
    const { rows } = await db.query<{ n: number; first: Date; last: Date; seqs: number }>(
      `SELECT count(*)::int AS n, min(schedule_time) AS first, max(schedule_time) AS last,
              count(DISTINCT seq)::int AS seqs
       FROM backfill_run WHERE backfill_id = $1`,
      [id],
    );
    expect(rows[0]).toEqual({
      n: 5000,
      first: new Date('2010-01-01T00:00:00Z'),
      last: new Date('2023-09-09T00:00:00Z'),
      seqs: 5000,
    });
    const got = await send('GET', `/backfills/${id}`);
    expect(got).toEqual({
      status: 200,
      json: {
        id,
        workflowCode: code,
        state: 'RUNNING',
        cron: '0 0 * * *',
        timezone: 'UTC',
        params: {},
        parallelism: 4,
        order: 'ASC',
        start: '2010-01-01T00:00:00.000Z',
        end: '2023-09-09T00:00:00.000Z',
        total: 5000,
        created: 0,
        running: 0,
        succeeded: 0,
        failed: 0,
        workflowInstanceIds: [],
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
        endTime: null,
      },
    });
    // The API server stayed responsive meanwhile (no timing asserted).
    expect((await fetch(`${api.base}/health`)).status).toBe(200);
  });

  it('takes the cron and time zone of the workflow schedule, and stores params', async () => {
    const code = await createWorkflow();
    const schedule = await send('POST', '/schedules', {
      workflowCode: code,
      cron: '0 6 * * *',
      timezone: 'Europe/Berlin',
    });
    expect(schedule.status).toBe(201);
    const res = await send('POST', `/workflows/${code}/backfill`, {
      start: '2024-03-30',
      end: '2024-04-01',
      params: { region: 'eu' },
      order: 'DESC',
    });
    expect(res).toEqual({ status: 202, json: { backfillId: expect.any(Number), runs: 2 } });
    const { rows } = await db.query<{ seq: number; schedule_time: Date }>(
      'SELECT seq, schedule_time FROM backfill_run WHERE backfill_id = $1 ORDER BY seq',
      [res.json.backfillId],
    );
    // 06:00 in Berlin, newest first; summer time from March 31st.
    expect(rows).toEqual([
      { seq: 1, schedule_time: new Date('2024-03-31T04:00:00Z') },
      { seq: 2, schedule_time: new Date('2024-03-30T05:00:00Z') },
    ]);
    const got = await send('GET', `/backfills/${res.json.backfillId}`);
    expect(got.json).toMatchObject({
      cron: '0 6 * * *',
      timezone: 'Europe/Berlin',
      params: { region: 'eu' },
      order: 'DESC',
    });
  });

  it('answers 400 naming the problem, 404 for an unknown workflow, and stores nothing then', async () => {
    const code = await createWorkflow();
    const before = await count('backfill');
    const cases: Array<[unknown, RegExp]> = [
      [{ start: '2024-01-01', end: '2024-01-02' }, /"cron" is required: workflow ".*" has no schedule/],
      [
        { start: '2024-01-01T00:00:00', end: '2024-01-02', cron: '0 0 * * *' },
        /"start" .* has no UTC offset/,
      ],
      [{ start: '2024-01-01', end: '2024-01-02', cron: '0 0 * * *', parallelism: 0 }, /"parallelism"/],
      [
        { start: '2024-01-01', end: '2030-01-01', cron: '0 * * * *' },
        /fires about \d+ times .* at most 10000 runs/,
      ],
      [{ start: '2024-01-01', end: '2024-01-02', cron: '0 0 * * *', extra: 1 }, /unknown field "extra"/],
    ];
    for (const [body, message] of cases) {
      const res = await send('POST', `/workflows/${code}/backfill`, body);
      expect({ status: res.status, message: res.json.message }).toEqual({
        status: 400,
        message: expect.stringMatching(message),
      });
    }
    const missing = await send('POST', '/workflows/no_such_wf/backfill', {
      start: '2024-01-01',
      end: '2024-01-02',
      cron: '0 0 * * *',
    });
    expect(missing.status).toBe(404);
    expect(await count('backfill')).toBe(before);
  });
});

describe('GET /backfills/{id} and cancel', () => {
  it('cancel answers 200 with the CANCELLED backfill, then 409; unknown ids 404', async () => {
    const code = await createWorkflow();
    const res = await send('POST', `/workflows/${code}/backfill`, {
      start: '2024-01-01',
      end: '2024-01-03',
      cron: '0 0 * * *',
    });
    const id = res.json.backfillId as number;
    const cancelled = await send('POST', `/backfills/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.json).toMatchObject({ id, state: 'CANCELLED', total: 3, created: 0 });
    expect(cancelled.json.endTime).not.toBeNull();
    const again = await send('POST', `/backfills/${id}/cancel`);
    expect(again).toEqual({
      status: 409,
      json: {
        statusCode: 409,
        error: 'Conflict',
        message: `backfill ${id} is CANCELLED already: there is nothing left to cancel`,
      },
    });
    expect((await send('GET', '/backfills/987654')).status).toBe(404);
    expect((await send('POST', '/backfills/987654/cancel')).status).toBe(404);
    expect((await send('GET', '/backfills/abc')).status).toBe(400);
  });
});
