/**
 * The three apps, started from the built code (npm run build) as their own processes:
 * bad configuration stops them with one line naming the variable; good configuration
 * boots them against a real Postgres and the JDBC registry.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startPostgres, stopProcess, waitFor, type TestServer } from '@porpoise/test-harness';
import { TEST_ADMIN_TOKEN } from '@porpoise/test-harness/api-token';

const ROOT = join(__dirname, '..', '..');
const main = (app: string) => join(ROOT, 'dist', 'apps', app, 'src', 'main.js');
const SECRET = 'boot-test-secret-0123456789';

describe('app boot', () => {
  let pg: TestServer;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    await pg?.dispose();
  });

  it.each([
    ['api-server', { API_PORT: 'eighty' }, 'API_PORT'],
    ['master', { REGISTRY_TYPE: 'redis' }, 'REGISTRY_TYPE'],
    ['worker', { REGISTRY_SESSION_TIMEOUT_MS: '-1' }, 'REGISTRY_SESSION_TIMEOUT_MS'],
    ['worker', { CLUSTER_SECRET: '' }, 'CLUSTER_SECRET'],
    ['master', { DATABASE_URL: 'mysql://x/y' }, 'DATABASE_URL'],
    ['master', { METRICS_PORT: '70000' }, 'METRICS_PORT'],
    ['worker', { METRICS_PORT: '1234' }, 'METRICS_PORT'],
    ['api-server', { LOG_FORMAT: 'yaml' }, 'LOG_FORMAT'],
    ['master', { CLUSTER_SECRET: '', CLUSTER_SECRET_FILE: '/no/such/secret' }, 'CLUSTER_SECRET_FILE'],
    ['worker', { CLUSTER_SECRET_FILE: '/dev/null' }, 'CLUSTER_SECRET_FILE'],
    // As root, tasks run as TASK_USER, which must exist; not as root, TASK_USER cannot be another.
    ['worker', { TASK_USER: 'no-such-porpoise-user' }, 'TASK_USER'],
    ['api-server', { ADMIN_TOKEN: 'too-short-a-token' }, 'ADMIN_TOKEN'],
    ['api-server', { ADMIN_TOKEN_FILE: '/nonexistent/admin-token' }, 'ADMIN_TOKEN_FILE'],
    ['api-server', { CORS_ORIGINS: '*' }, 'CORS_ORIGINS'],
  ])('%s refuses %j with one line naming %s', (app, override, variable) => {
    const env = { PATH: process.env.PATH, DATABASE_URL: pg.endpoint, CLUSTER_SECRET: SECRET, ...override };
    const run = spawnSync(process.execPath, [main(app)], { env, encoding: 'utf8', timeout: 30_000 });
    expect(run.status).toBe(78);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`invalid configuration: ${variable}: `));
    expect(run.stderr).not.toContain(SECRET);
  });

  it('with LOG_FORMAT=json the one line is a JSON object naming the variable', () => {
    const env = { PATH: process.env.PATH, CLUSTER_SECRET: SECRET, LOG_FORMAT: 'json', WORKER_CAPACITY: '0' };
    const run = spawnSync(process.execPath, [main('worker')], { env, encoding: 'utf8', timeout: 30_000 });
    expect(run.status).toBe(78);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 'fatal',
      variable: 'WORKER_CAPACITY',
      message: expect.stringMatching(/invalid configuration: WORKER_CAPACITY: /),
    });
  });

  it('boots the api-server against real Postgres and the JDBC registry; /health answers 200; SIGTERM stops it', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [main('api-server')], {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: pg.endpoint,
        REGISTRY_TYPE: 'jdbc',
        CLUSTER_SECRET: SECRET,
        API_PORT: String(port),
        REGISTRY_SESSION_TIMEOUT_MS: '3000',
        HEARTBEAT_INTERVAL_MS: '500',
        ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      },
      stdio: 'ignore',
    });
    try {
      const health = await waitFor(
        '/health',
        async () => {
          const res = await fetch(`http://127.0.0.1:${port}/health`);
          return res.status === 200 ? ((await res.json()) as Record<string, string>) : undefined;
        },
        60_000,
        200,
      );
      expect(health).toEqual({ status: 'ok', database: 'ok', registry: 'ok' });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      await stopProcess(child, 'SIGKILL');
    }
  });

  it('an api-server reads its admin token from ADMIN_TOKEN_FILE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'porpoise-boot-token-'));
    const tokenFile = join(dir, 'admin-token');
    writeFileSync(tokenFile, `${TEST_ADMIN_TOKEN}\n`, { mode: 0o600 });
    const port = await freePort();
    let output = '';
    const child = spawn(process.execPath, [main('api-server')], {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: pg.endpoint,
        REGISTRY_TYPE: 'jdbc',
        CLUSTER_SECRET: SECRET,
        API_PORT: String(port),
        ADMIN_TOKEN_FILE: tokenFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    try {
      const url = `http://127.0.0.1:${port}/api/v1/workflows`;
      await waitFor(
        'the API',
        async () => (await fetch(url).catch(() => undefined))?.status === 401,
        60_000,
        200,
      );
      const ok = await fetch(url, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
      expect(ok.status).toBe(200);
      expect(output).not.toContain(TEST_ADMIN_TOKEN);
    } finally {
      await stopProcess(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('standalone (npm start) without ADMIN_TOKEN', () => {
    let dataDir = '';
    beforeAll(() => {
      dataDir = join(mkdtempSync(join(tmpdir(), 'porpoise-standalone-')), 'data');
    });
    afterAll(() => rmSync(join(dataDir, '..'), { recursive: true, force: true }));

    /** Starts `npm start`'s entry on the test Postgres; resolves once it says it is ready. */
    async function startStandalone(): Promise<{ child: ChildProcess; output: () => string; url: string }> {
      const [apiPort, masterPort, workerPort] = [await freePort(), await freePort(), await freePort()];
      let output = '';
      const child = spawn(process.execPath, [main('standalone')], {
        env: {
          PATH: process.env.PATH,
          DATABASE_URL: pg.endpoint,
          DATA_DIR: dataDir,
          API_PORT: String(apiPort),
          MASTER_PORT: String(masterPort),
          WORKER_PORT: String(workerPort),
          METRICS_PORT: '0',
          NO_COLOR: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      await waitFor(
        'the standalone node to be ready',
        () => {
          if (child.exitCode !== null) throw new Error(`standalone exited ${child.exitCode}: ${output}`);
          return output.includes('Porpoise is ready at');
        },
        120_000,
        200,
      );
      return { child, output: () => output, url: `http://127.0.0.1:${apiPort}/api/v1` };
    }

    it('generates DATA_DIR/admin-token (600, directory 700), says where, never what, and reuses it', async () => {
      const tokenFile = join(dataDir, 'admin-token');
      const first = await startStandalone();
      let token = '';
      try {
        expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
        expect(statSync(dataDir).mode & 0o777).toBe(0o700);
        token = readFileSync(tokenFile, 'utf8').trim();
        expect(token).toMatch(/^pp_[A-Za-z0-9_-]{43}$/);
        expect(first.output()).toContain(`admin token generated in ${tokenFile}`);
        expect(first.output()).not.toContain(token);
        expect((await fetch(`${first.url}/workflows`)).status).toBe(401);
        const ok = await fetch(`${first.url}/workflows`, { headers: { authorization: `Bearer ${token}` } });
        expect(ok.status).toBe(200);
      } finally {
        await stopProcess(first.child, 'SIGTERM', 30_000);
      }
      const second = await startStandalone();
      try {
        expect(second.output()).toContain(`admin token read from ${tokenFile}`);
        expect(readFileSync(tokenFile, 'utf8').trim()).toBe(token);
        const ok = await fetch(`${second.url}/workflows`, { headers: { authorization: `Bearer ${token}` } });
        expect(ok.status).toBe(200);
      } finally {
        await stopProcess(second.child, 'SIGTERM', 30_000);
      }
    }, 300_000);
  });
});
