/**
 * The three apps, started from the built code (npm run build) as their own processes:
 * bad configuration stops them with one line naming the variable; good configuration
 * boots them against a real Postgres and the JDBC registry.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { freePort, startPostgres, stopProcess, waitFor, type TestServer } from '@porpoise/test-harness';

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
});
