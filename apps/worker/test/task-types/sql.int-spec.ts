/**
 * The SQL task type against a real Postgres (the test harness's): bind parameters that stay
 * values, rows in the log, outputs from the first row, errors, timeouts, stops, connection
 * hygiene between tasks, the pool bounds, and no password anywhere.
 */
import { Client } from 'pg';
import { systemClock } from '@porpoise/common';
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { SQL_POOL_MAX_CONNECTIONS, SQL_POOL_MAX_POOLS, SqlPools } from '../../src/adapters/sql-pools';
import { SQL_LOG_ROWS, SqlTaskType } from '../../src/task-types/sql.task-type';
import type { TaskRunResult } from '../../src/task-types/task-type';
import { taskSpec, TestRun } from '../support/run-context';

describe('SQL task type (real Postgres)', () => {
  let pg: TestServer;
  let url: string;
  let secret: string;
  let admin: Client;
  let pools: SqlPools;
  let type: SqlTaskType;
  const runs: TestRun[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    admin = new Client({ connectionString: pg.endpoint });
    await admin.connect();
    // A role of the tasks' own, with a password found nowhere else (not in the database name).
    secret = 'Pw-7f3a9c2e-sql-task';
    await admin.query(`CREATE ROLE sql_tasks LOGIN PASSWORD '${secret}'`);
    await admin.query('CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL)');
    await admin.query('GRANT ALL ON accounts, accounts_id_seq TO sql_tasks');
    const u = new URL(pg.endpoint);
    u.username = 'sql_tasks';
    u.password = secret;
    url = u.toString();
  });

  beforeEach(() => {
    pools = new SqlPools(systemClock);
    type = new SqlTaskType(pools);
  });

  afterEach(async () => {
    await pools.onApplicationShutdown();
    for (const r of runs.splice(0)) await r.dispose();
  });

  afterAll(async () => {
    await admin?.end();
    await pg?.dispose();
  });

  async function start(
    text: string,
    values: (string | null)[] = [],
    over: { url?: string; timeoutMs?: number } = {},
  ) {
    const spec = taskSpec({
      taskType: 'SQL',
      timeoutMs: over.timeoutMs ?? 0,
      payloadJson: JSON.stringify({ datasourceType: 'postgres', url: over.url ?? url, text, values }),
    });
    const r = await TestRun.start(spec);
    runs.push(r);
    return { r, result: type.run(r.ctx, type.parsePayload(spec)) };
  }

  async function run(
    text: string,
    values: (string | null)[] = [],
    over: { url?: string; timeoutMs?: number } = {},
  ) {
    const { r, result } = await start(text, values, over);
    const res: TaskRunResult = await result;
    const log = await r.text();
    expect(log).not.toContain(secret);
    return { res, log, r };
  }

  it('binds values as values: an injection attempt is stored as text and runs nothing', async () => {
    const attack = "x'); DROP TABLE accounts; --";
    const { res } = await run('INSERT INTO accounts (name) VALUES ($1) RETURNING id, name', [attack]);
    expect(res).toMatchObject({ state: 'SUCCESS', exitCode: 0, outputs: { name: attack } });
    const stored = await admin.query<{ name: string }>('SELECT name FROM accounts WHERE id = $1', [
      res.outputs.id,
    ]);
    expect(stored.rows).toEqual([{ name: attack }]);
    // The table is still there, and a value compared as a value matches nothing else.
    const { res: probe } = await run('SELECT count(*) AS n FROM accounts WHERE name = $1', ["' OR '1'='1"]);
    expect(probe.outputs).toEqual({ n: '0' });
  });

  it('logs the first 1,000 rows as JSON lines and outputs the first row’s columns as text', async () => {
    const { res, log } = await run(
      "SELECT g AS n, 'row ' || g AS label, NULL::text AS nothing, g % 2 = 0 AS even, 12345678901234567890::numeric AS big FROM generate_series(1, 1500) g",
    );
    expect(res).toEqual({
      state: 'SUCCESS',
      exitCode: 0,
      message: '',
      outputs: { n: '1', label: 'row 1', nothing: '', even: 'f', big: '12345678901234567890' },
    });
    const lines = log.split('\n');
    expect(lines[0]).toMatch(/^SQL on postgres:\/\/sql_tasks:\*\*\*@/);
    const rows = lines.filter((l) => l.startsWith('{'));
    expect(rows).toHaveLength(SQL_LOG_ROWS);
    expect(JSON.parse(rows[0]!)).toEqual({
      n: '1',
      label: 'row 1',
      nothing: null,
      even: 'f',
      big: '12345678901234567890',
    });
    expect(JSON.parse(rows[SQL_LOG_ROWS - 1]!)).toMatchObject({ n: String(SQL_LOG_ROWS) });
    expect(log).toContain('[porpoise] SELECT 1500 (1500 rows returned, the first 1000 logged)\n');
  });

  it('succeeds with no outputs for a statement without rows', async () => {
    const { res, log } = await run('UPDATE accounts SET name = name WHERE id < 0');
    expect(res).toMatchObject({ state: 'SUCCESS', outputs: {} });
    expect(log).toContain('[porpoise] UPDATE 0 (0 rows returned)\n');
  });

  it('fails with the database’s error, also in the log', async () => {
    const { res, log } = await run('SELECT * FROM no_such_table');
    expect(res).toMatchObject({
      state: 'FAILURE',
      exitCode: -1,
      message: 'relation "no_such_table" does not exist',
    });
    expect(log).toContain('ERROR: relation "no_such_table" does not exist\n');
  });

  it('runs exactly one statement, also without values', async () => {
    const { res } = await run('SELECT 1; DROP TABLE accounts');
    expect(res).toMatchObject({
      state: 'FAILURE',
      message: 'cannot insert multiple commands into a prepared statement',
    });
    expect((await admin.query('SELECT count(*) FROM accounts')).rowCount).toBe(1);
  });

  it('sets the statement timeout to the task’s timeout', async () => {
    const { res } = await run('SELECT pg_sleep(10)', [], { timeoutMs: 300 });
    expect(res).toMatchObject({ state: 'FAILURE', message: 'canceling statement due to statement timeout' });
  });

  it('a stop cancels the statement on the server', async () => {
    const { r, result } = await start("SELECT pg_sleep(60), 'stop-me' AS tag");
    const running = async () =>
      (
        await admin.query(
          "SELECT pid FROM pg_stat_activity WHERE query LIKE '%stop-me%' AND pid <> pg_backend_pid()",
        )
      ).rowCount;
    for (let i = 0; i < 500 && (await running()) === 0; i++) await new Promise((res) => setTimeout(res, 10));
    expect(await running()).toBe(1);
    r.stop(2000);
    expect(await result).toMatchObject({ state: 'FAILURE', message: 'aborted' });
    for (let i = 0; i < 500 && (await running()) !== 0; i++) await new Promise((res) => setTimeout(res, 10));
    expect(await running()).toBe(0);
  });

  it('gives the next task a clean session: settings reset, an open transaction never inherited', async () => {
    await run("SELECT set_config('search_path', 'nowhere', false)");
    expect((await run("SELECT current_setting('search_path') AS p")).res.outputs.p).toBe('"$user", public');
    const pool = pools.pool(url);
    expect(pool.idleCount).toBe(1);
    expect((await run('BEGIN')).res.state).toBe('SUCCESS');
    // That connection was closed, not returned.
    expect(pool.totalCount).toBe(0);
    // Had the next task inherited the open transaction, its insert would stay uncommitted, unseen.
    expect((await run("INSERT INTO accounts (name) VALUES ('after begin')")).res.state).toBe('SUCCESS');
    expect((await admin.query("SELECT 1 FROM accounts WHERE name = 'after begin'")).rowCount).toBe(1);
  });

  it('never puts the password in a message or the log, even when connecting fails', async () => {
    const wrong = new URL(url);
    wrong.password = `${secret}-wrong`;
    const { res, log } = await run('SELECT 1', [], { url: wrong.toString() });
    expect(res.state).toBe('FAILURE');
    expect(res.message).toMatch(
      /^cannot connect to postgres:\/\/sql_tasks:\*\*\*@.*password authentication failed/,
    );
    expect(res.message).not.toContain(secret);
    expect(log).not.toContain(secret);
  });

  it(`uses at most ${SQL_POOL_MAX_CONNECTIONS} connections per data source`, async () => {
    const tagged = new URL(url);
    tagged.searchParams.set('application_name', 'porpoise_pool_test');
    const results = await Promise.all(
      Array.from({ length: 7 }, () =>
        run(
          "SELECT (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'porpoise_pool_test') AS n, pg_sleep(0.2)",
          [],
          { url: tagged.toString() },
        ),
      ),
    );
    const counts = results.map(({ res }) => Number(res.outputs.n));
    expect(Math.max(...counts)).toBeLessThanOrEqual(SQL_POOL_MAX_CONNECTIONS);
    expect(Math.max(...counts)).toBeGreaterThan(1);
  });

  it(`keeps at most ${SQL_POOL_MAX_POOLS} pools, and none after shutdown`, async () => {
    for (let i = 0; i < SQL_POOL_MAX_POOLS + 3; i++) pools.pool(`${url}?application_name=p${i}`);
    expect(pools.size).toBe(SQL_POOL_MAX_POOLS);
    await pools.onApplicationShutdown();
    expect(pools.size).toBe(0);
    expect(() => pools.pool(url)).toThrow('the worker is stopping');
  });
});
