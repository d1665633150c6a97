/**
 * `npm run cluster` (DESIGN.md section 2) end to end: the launcher starts real nodes from the
 * built code (`npm run build` first) on its own embedded Postgres and its own ZooKeeper, jdbc
 * and etcd registries. Runs in a temporary working directory, so .porpoise/ is the test's own.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, waitFor } from '@porpoise/test-harness';
import type { ClusterFile } from '../../scripts/cluster/cluster-file';

const ROOT = join(__dirname, '..', '..');
const FINAL = ['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'];
const ROLES = ['master', 'worker', 'api-server'] as const;
const PORT_VARIABLE = { master: 'MASTER_PORT', worker: 'WORKER_PORT', 'api-server': 'API_PORT' } as const;
/** What a node may inherit besides the documented variables: what a process needs to run. */
const OS_VARIABLES = /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|TZ|TMPDIR|LC_[A-Z]+|NO_COLOR)$/;
const DOCUMENTED = new Set([
  'DATABASE_URL',
  'REGISTRY_TYPE',
  'ZOOKEEPER_CONNECT',
  'ETCD_ENDPOINTS',
  'CLUSTER_SECRET',
  'DATASOURCE_KEY',
  'REGISTRY_SESSION_TIMEOUT_MS',
  'HEARTBEAT_INTERVAL_MS',
  'NODE_HOST',
  'DATA_DIR',
  'MASTER_PORT',
  'WORKER_PORT',
  'API_PORT',
  'METRICS_PORT',
  'LOG_FORMAT',
  'ADMIN_TOKEN_FILE',
  'TLS_CA_FILE',
  'TLS_CERT_FILE',
  'TLS_KEY_FILE',
]);

interface Launcher {
  child: ChildProcess;
  output(): string;
  exit: Promise<{ code: number | null; signal: string | null }>;
}

/** The launcher itself (what `npm run cluster` runs), without npm in between: its pid is the launcher. */
function launch(cwd: string, args: string[], extraEnv: Record<string, string> = {}): Launcher {
  const env: Record<string, string> = {};
  // The launcher's own environment, without anything that would point it at other servers.
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !DOCUMENTED.has(k) && !k.startsWith('TEST_')) env[k] = v;
  }
  const child = spawn(
    process.execPath,
    [
      '--import',
      pathToFileURL(require.resolve('tsx')).href,
      join(ROOT, 'scripts', 'cluster', 'main.ts'),
      ...args,
      '--no-build',
    ],
    { cwd, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const append = (d: Buffer) => (output = (output + d.toString()).slice(-50_000));
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exit };
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is dead for our purposes.
  try {
    return !/^\S+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

function environ(pid: number): Record<string, string> {
  const raw = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);
  return Object.fromEntries(raw.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}

async function waitForClusterFile(
  cwd: string,
  launcher: Launcher,
  timeoutMs = 240_000,
): Promise<ClusterFile> {
  const file = join(cwd, '.porpoise', 'cluster.json');
  return waitFor(
    'the launcher to write .porpoise/cluster.json',
    () => {
      if (!running(launcher.child)) {
        throw new Error(
          `the launcher exited (${launcher.child.exitCode}):\n${launcher.output().slice(-5000)}`,
        );
      }
      return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ClusterFile) : undefined;
    },
    timeoutMs,
    250,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nlauncher output:\n${launcher.output().slice(-5000)}`);
  });
}

interface LauncherState {
  processes: Array<{ name: string; pid: number }>;
}

/** Every process the launcher says it started (nodes, registry server, Postgres wrapper) and the postmaster. */
function startedPids(cwd: string): number[] {
  const dir = join(cwd, '.porpoise', 'cluster');
  const state = JSON.parse(readFileSync(join(dir, 'launcher.json'), 'utf8')) as LauncherState;
  const pids = state.processes.map((p) => p.pid);
  const postmaster = join(dir, 'postgres', 'data', 'postmaster.pid');
  if (existsSync(postmaster)) pids.push(Number(readFileSync(postmaster, 'utf8').split('\n')[0]));
  return pids;
}

/** SIGINT to the launcher; resolves with its exit once it is gone (bounded). */
async function interrupt(launcher: Launcher, signal: NodeJS.Signals = 'SIGINT') {
  if (!running(launcher.child)) return launcher.exit;
  launcher.child.kill(signal);
  const timer = setTimeout(() => launcher.child.kill('SIGKILL'), 120_000);
  const result = await launcher.exit;
  clearTimeout(timer);
  return result;
}

/** A call to the cluster's API with its admin token (cluster.json's adminToken). */
async function call<T>(
  file: Pick<ClusterFile, 'apiUrl' | 'adminToken'>,
  method: string,
  path: string,
  body?: unknown,
) {
  const res = await fetch(`${file.apiUrl}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${file.adminToken}` },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as T };
}

interface ClusterNodes {
  masters: Array<{ host: string; port: number }>;
  workers: Array<{ host: string; port: number }>;
}

const listed = (nodes: ClusterNodes, file: ClusterFile) => ({
  masters: nodes.masters.map((m) => `${m.host}:${m.port}`).sort(),
  workers: nodes.workers.map((w) => `${w.host}:${w.port}`).sort(),
  expectedMasters: file.nodes
    .filter((n) => n.role === 'master')
    .map((n) => `${n.host}:${n.port}`)
    .sort(),
  expectedWorkers: file.nodes
    .filter((n) => n.role === 'worker')
    .map((n) => `${n.host}:${n.port}`)
    .sort(),
});

describe('npm run cluster', () => {
  let cwd = '';
  let launcher: Launcher | undefined;
  const extra: ChildProcess[] = [];
  const everyPid = new Set<number>();

  beforeAll(() => {
    for (const role of ROLES) {
      if (!existsSync(join(ROOT, 'dist', 'apps', role, 'src', 'main.js'))) {
        throw new Error('dist/ is missing: run npm run build before this test');
      }
    }
    cwd = mkdtempSync(join(tmpdir(), 'porpoise-cluster-'));
    // As root, the embedded Postgres runs as the 'postgres' user, who must reach .porpoise/.
    chmodSync(cwd, 0o755);
  });

  afterAll(async () => {
    for (const child of extra) if (running(child)) child.kill('SIGKILL');
    if (launcher) await interrupt(launcher);
    // Whatever a failed test left behind, and only what this test started.
    for (const pid of everyPid) {
      if (pidAlive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    rmSync(cwd, { recursive: true, force: true });
  }, 180_000);

  describe('with 2 masters, 2 workers and ZooKeeper', () => {
    let file: ClusterFile;

    beforeAll(async () => {
      launcher = launch(cwd, ['--masters', '2', '--workers', '2', '--registry', 'zookeeper']);
      file = await waitForClusterFile(cwd, launcher);
      for (const pid of startedPids(cwd)) everyPid.add(pid);
    }, 300_000);

    it('writes .porpoise/cluster.json, readable by its owner only, in the documented shape', () => {
      const path = join(cwd, '.porpoise', 'cluster.json');
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(file).toMatchObject({
        apiUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
        databaseUrl: expect.stringMatching(/^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/porpoise$/),
        registry: { type: 'zookeeper', connect: expect.stringMatching(/^127\.0\.0\.1:\d+$/) },
      });
      expect(Object.keys(file.env).sort()).toEqual(
        [
          'ADMIN_TOKEN_FILE',
          'CLUSTER_SECRET',
          'DATABASE_URL',
          'DATASOURCE_KEY',
          'HEARTBEAT_INTERVAL_MS',
          'REGISTRY_SESSION_TIMEOUT_MS',
          'REGISTRY_TYPE',
          'ZOOKEEPER_CONNECT',
        ].sort(),
      );
      expect(file.env).toMatchObject({
        DATABASE_URL: file.databaseUrl,
        REGISTRY_TYPE: 'zookeeper',
        ZOOKEEPER_CONNECT: file.registry.connect,
        REGISTRY_SESSION_TIMEOUT_MS: '10000',
        HEARTBEAT_INTERVAL_MS: '2000',
      });
      expect(file.env.CLUSTER_SECRET.length).toBeGreaterThanOrEqual(16);
      expect(file.nodes.map((n) => n.role).sort()).toEqual(
        ['api-server', 'master', 'master', 'worker', 'worker'].sort(),
      );
      for (const node of file.nodes) {
        expect(node).toMatchObject({
          pid: expect.any(Number),
          host: '127.0.0.1',
          port: expect.any(Number),
          metricsPort: expect.any(Number),
        });
        // The API serves /metrics on its own port; a master or worker on a port of its own.
        if (node.role === 'api-server') expect(node.metricsPort).toBe(node.port);
      }
      const listening = file.nodes.flatMap((n) =>
        n.role === 'api-server' ? [n.port] : [n.port, n.metricsPort],
      );
      expect(new Set(listening).size).toBe(listening.length);
      const api = file.nodes.find((n) => n.role === 'api-server');
      expect(file.apiUrl).toBe(`http://127.0.0.1:${api?.port}`);
      expect(launcher?.output()).toContain(`Porpoise cluster is ready at ${file.apiUrl}/api/v1`);
    });

    it('generates an admin token in .porpoise/admin-token (600), puts it in cluster.json, and says where, never what', async () => {
      const tokenFile = join(cwd, '.porpoise', 'admin-token');
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      // 0700, or 0711 as root: the embedded Postgres's own user must traverse it (no listing).
      expect([0o700, 0o711]).toContain(statSync(join(cwd, '.porpoise')).mode & 0o777);
      expect(file.adminToken).toMatch(/^pp_[A-Za-z0-9_-]{43}$/);
      expect(readFileSync(tokenFile, 'utf8').trim()).toBe(file.adminToken);
      expect(file.env.ADMIN_TOKEN_FILE).toBe(tokenFile);
      expect(launcher?.output()).toContain('admin token generated in .porpoise/admin-token');
      expect(launcher?.output()).not.toContain(file.adminToken);
      for (const node of file.nodes) {
        expect({
          node: node.name,
          leaked: readFileSync(node.logFile, 'utf8').includes(file.adminToken),
        }).toEqual({
          node: node.name,
          leaked: false,
        });
      }
      const refused = await fetch(`${file.apiUrl}/api/v1/workflows`);
      expect(refused.status).toBe(401);
      expect((await call(file, 'GET', '/workflows')).status).toBe(200);
    });

    it('runs every node as its own process from dist/, with only the documented variables', () => {
      for (const node of file.nodes) {
        expect({ node: node.name, alive: pidAlive(node.pid) }).toEqual({ node: node.name, alive: true });
        const argv = cmdline(node.pid);
        expect(argv).toEqual([process.execPath, join(ROOT, 'dist', 'apps', node.role, 'src', 'main.js')]);
        const env = environ(node.pid);
        const extraVariables = Object.keys(env).filter((k) => !DOCUMENTED.has(k) && !OS_VARIABLES.test(k));
        expect({ node: node.name, extraVariables }).toEqual({ node: node.name, extraVariables: [] });
        // The admin token's file goes to API servers only.
        const { ADMIN_TOKEN_FILE, ...shared } = file.env;
        expect(env.ADMIN_TOKEN_FILE).toBe(node.role === 'api-server' ? ADMIN_TOKEN_FILE : undefined);
        expect(env).not.toHaveProperty('ADMIN_TOKEN');
        expect(env).toMatchObject({
          ...shared,
          NODE_HOST: '127.0.0.1',
          [PORT_VARIABLE[node.role]]: String(node.port),
          DATA_DIR: join(cwd, '.porpoise', 'cluster', node.name),
          ...(node.role === 'api-server' ? {} : { METRICS_PORT: String(node.metricsPort) }),
        });
        expect(existsSync(join(cwd, '.porpoise', 'cluster', 'logs', `${node.name}.log`))).toBe(true);
      }
    });

    it('serves GET /health and GET /metrics of every node on its metricsPort', async () => {
      const own = {
        'api-server': 'porpoise_api_http_requests_total',
        master: 'porpoise_command_backlog',
        worker: 'porpoise_worker_capacity',
      };
      for (const node of file.nodes) {
        const health = await fetch(`http://127.0.0.1:${node.metricsPort}/health`);
        expect({ node: node.name, status: health.status }).toEqual({ node: node.name, status: 200 });
        const metrics = await (await fetch(`http://127.0.0.1:${node.metricsPort}/metrics`)).text();
        expect({ node: node.name, has: metrics.includes(own[node.role]) }).toEqual({
          node: node.name,
          has: true,
        });
      }
    });

    it('lists every master and worker in GET /api/v1/cluster/nodes', async () => {
      const res = await call<ClusterNodes>(file, 'GET', '/cluster/nodes');
      expect(res.status).toBe(200);
      const l = listed(res.body, file);
      expect(l.masters).toEqual(l.expectedMasters);
      expect(l.workers).toEqual(l.expectedWorkers);
    });

    it('runs a workflow to SUCCESS', async () => {
      const created = await call<{ code: string }>(file, 'POST', '/workflows', {
        name: 'cluster-launcher',
        tasks: [
          { name: 'a', type: 'SHELL', command: 'echo a' },
          { name: 'b', type: 'SHELL', command: 'echo "b after a, attempt $PORPOISE_ATTEMPT"' },
        ],
        edges: [{ from: 'a', to: 'b' }],
      });
      expect(created.status).toBe(201);
      const run = await call<{ workflowInstanceId: number }>(
        file,
        'POST',
        `/workflows/${created.body.code}/runs`,
      );
      expect(run.status).toBe(202);
      const instance = await waitFor(
        'the run to finish',
        async () => {
          const res = await call<{ state: string; tasks: Array<{ state: string }> }>(
            file,
            'GET',
            `/workflow-instances/${run.body.workflowInstanceId}`,
          );
          return FINAL.includes(res.body.state) ? res.body : undefined;
        },
        90_000,
        200,
      );
      expect(instance.state).toBe('SUCCESS');
      expect(instance.tasks.map((t) => t.state)).toEqual(['SUCCESS', 'SUCCESS']);
    });

    it('answers deploy/healthcheck.js (the compose health check) for each role, and refuses a wrong secret', () => {
      const check = (role: string, env: Record<string, string>) =>
        spawnSync(process.execPath, [join(ROOT, 'deploy', 'healthcheck.js'), role], {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
          encoding: 'utf8',
          timeout: 30_000,
        });
      for (const node of file.nodes) {
        const env = {
          NODE_HOST: node.host,
          [PORT_VARIABLE[node.role]]: String(node.port),
          CLUSTER_SECRET: file.env.CLUSTER_SECRET,
        };
        const ok = check(node.role, env);
        expect({ node: node.name, status: ok.status, out: ok.stdout }).toEqual({
          node: node.name,
          status: 0,
          out: expect.stringContaining('healthy'),
        });
      }
      const master = file.nodes.find((n) => n.role === 'master') as ClusterFile['nodes'][number];
      const refused = check('master', {
        NODE_HOST: master.host,
        MASTER_PORT: String(master.port),
        CLUSTER_SECRET: 'not-the-cluster-secret',
      });
      expect(refused.status).toBe(1);
      expect(refused.stdout).toContain('unhealthy');
    });

    it('refuses a second launcher in the same directory', async () => {
      const second = launch(cwd, ['--masters', '1', '--workers', '1']);
      const timer = setTimeout(() => second.child.kill('SIGKILL'), 60_000);
      const result = await second.exit;
      clearTimeout(timer);
      expect(result.code).toBe(1);
      expect(second.output()).toContain(`another cluster launcher (pid ${launcher?.child.pid}) is running`);
      expect(existsSync(join(cwd, '.porpoise', 'cluster.json'))).toBe(true);
    });

    it('adds a node started by hand with a start:* script, the env of cluster.json and ports of its own', async () => {
      const port = await freePort();
      let metricsPort = port;
      while (metricsPort === port) metricsPort = await freePort();
      const worker = spawn('npm', ['run', '--silent', 'start:worker'], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: process.env.HOME ?? '/root',
          ...file.env,
          WORKER_PORT: String(port),
          METRICS_PORT: String(metricsPort),
          DATA_DIR: join(cwd, 'worker-by-hand'),
        },
        stdio: 'ignore',
        detached: true,
      });
      extra.push(worker);
      await waitFor(
        'the added worker to register',
        async () => {
          if (!running(worker)) throw new Error(`the added worker exited (${worker.exitCode})`);
          const res = await call<ClusterNodes>(file, 'GET', '/cluster/nodes');
          return res.body.workers.some((w) => w.port === port);
        },
        120_000,
        250,
      );
      expect((await fetch(`http://127.0.0.1:${metricsPort}/health`)).status).toBe(200);
      // npm and the node in one process group of their own: stop them both.
      process.kill(-(worker.pid as number), 'SIGTERM');
      const timer = setTimeout(() => process.kill(-(worker.pid as number), 'SIGKILL'), 30_000);
      await new Promise<void>((resolve) =>
        running(worker) ? worker.once('exit', () => resolve()) : resolve(),
      );
      clearTimeout(timer);
    });

    it('lets a SIGKILLed worker die alone: the launcher keeps running and does not restart it', async () => {
      const victim = file.nodes.find((n) => n.role === 'worker') as ClusterFile['nodes'][number];
      process.kill(victim.pid, 'SIGKILL');
      await waitFor('the killed worker to be gone', () => !pidAlive(victim.pid), 30_000, 100);
      await waitFor(
        'the launcher to log the exit',
        () => launcher?.output().includes(`${victim.name} (pid ${victim.pid}) exited (signal SIGKILL)`),
        30_000,
        100,
      );
      expect(running(launcher?.child as ChildProcess)).toBe(true);
      for (const node of file.nodes.filter((n) => n !== victim)) {
        expect({ node: node.name, alive: pidAlive(node.pid) }).toEqual({ node: node.name, alive: true });
      }
      expect(existsSync(join(cwd, '.porpoise', 'cluster.json'))).toBe(true);
      expect(launcher?.output()).not.toMatch(new RegExp(`starting it again|restart(ing|ed) ${victim.name}`));
    });

    it('stops every node, ZooKeeper and Postgres on SIGINT and removes cluster.json', async () => {
      const pids = startedPids(cwd);
      expect(pids.length).toBeGreaterThanOrEqual(file.nodes.length + 3); // + Postgres (2) + ZooKeeper
      const result = await interrupt(launcher as Launcher, 'SIGINT');
      expect(result).toEqual({ code: 0, signal: null });
      for (const pid of pids) expect({ pid, alive: pidAlive(pid) }).toEqual({ pid, alive: false });
      expect(existsSync(join(cwd, '.porpoise', 'cluster.json'))).toBe(false);
      expect(launcher?.output()).toMatch(
        /stopping 4 node\(s\)[\s\S]*stopping ZooKeeper[\s\S]*stopping Postgres/,
      );
    });
  });

  describe('again in the same directory, with the jdbc registry', () => {
    let file: ClusterFile;

    beforeAll(async () => {
      launcher = launch(cwd, ['--masters', '1', '--workers', '1', '--registry', 'jdbc'], {
        REGISTRY_SESSION_TIMEOUT_MS: '5000',
      });
      file = await waitForClusterFile(cwd, launcher);
      for (const pid of startedPids(cwd)) everyPid.add(pid);
    }, 300_000);

    it('keeps the database of the earlier launch and uses it as the registry', async () => {
      expect(file.registry).toEqual({ type: 'jdbc' });
      expect(Object.keys(file.env).sort()).toEqual(
        [
          'ADMIN_TOKEN_FILE',
          'CLUSTER_SECRET',
          'DATABASE_URL',
          'DATASOURCE_KEY',
          'HEARTBEAT_INTERVAL_MS',
          'REGISTRY_SESSION_TIMEOUT_MS',
          'REGISTRY_TYPE',
        ].sort(),
      );
      expect(file.env).toMatchObject({ REGISTRY_TYPE: 'jdbc', REGISTRY_SESSION_TIMEOUT_MS: '5000' });
      // The admin token of the first launch, reused.
      expect(file.adminToken).toBe(readFileSync(join(cwd, '.porpoise', 'admin-token'), 'utf8').trim());
      expect(launcher?.output()).toContain('admin token read from .porpoise/admin-token');
      expect(Number(file.env.HEARTBEAT_INTERVAL_MS)).toBeLessThan(5000);
      const nodes = await call<ClusterNodes>(file, 'GET', '/cluster/nodes');
      const l = listed(nodes.body, file);
      expect(l.expectedMasters.every((m) => l.masters.includes(m))).toBe(true);
      expect(l.expectedWorkers.every((w) => l.workers.includes(w))).toBe(true);
      const workflows = await call<Array<{ name: string }> | { items: Array<{ name: string }> }>(
        file,
        'GET',
        '/workflows',
      );
      const items = Array.isArray(workflows.body) ? workflows.body : workflows.body.items;
      expect(items.map((w) => w.name)).toContain('cluster-launcher');
    });

    it('stops on SIGTERM', async () => {
      const pids = startedPids(cwd);
      const result = await interrupt(launcher as Launcher, 'SIGTERM');
      expect(result).toEqual({ code: 0, signal: null });
      for (const pid of pids) expect({ pid, alive: pidAlive(pid) }).toEqual({ pid, alive: false });
      expect(existsSync(join(cwd, '.porpoise', 'cluster.json'))).toBe(false);
    });
  });

  describe('with --tls (and the jdbc registry)', () => {
    let file: ClusterFile;
    const tlsDir = () => join(cwd, '.porpoise', 'cluster', 'tls');

    beforeAll(async () => {
      launcher = launch(cwd, ['--registry', 'jdbc', '--tls']);
      file = await waitForClusterFile(cwd, launcher);
      for (const pid of startedPids(cwd)) everyPid.add(pid);
    }, 300_000);

    it('writes a CA and a certificate per node for NODE_HOST, keys readable by their owner only', () => {
      const ca = new X509Certificate(readFileSync(join(tlsDir(), 'ca.pem')));
      expect(file.env.TLS_CA_FILE).toBe(join(tlsDir(), 'ca.pem'));
      const keys = readdirSync(tlsDir()).filter((f) => f.endsWith('.key'));
      // One per node, and the spare one of cluster.json's env for nodes started by hand.
      expect(keys.sort()).toEqual([...file.nodes.map((n) => `${n.name}.key`), 'spare.key'].sort());
      for (const key of keys) {
        expect({ key, mode: statSync(join(tlsDir(), key)).mode & 0o777 }).toEqual({ key, mode: 0o600 });
      }
      for (const node of file.nodes) {
        const env = environ(node.pid);
        expect(env).toMatchObject({
          TLS_CA_FILE: file.env.TLS_CA_FILE,
          TLS_CERT_FILE: join(tlsDir(), `${node.name}.pem`),
          TLS_KEY_FILE: join(tlsDir(), `${node.name}.key`),
        });
        const cert = new X509Certificate(readFileSync(env.TLS_CERT_FILE!));
        expect(cert.verify(ca.publicKey)).toBe(true);
        expect(cert.checkIP(node.host)).toBe(node.host);
      }
    });

    it('runs a workflow to SUCCESS and serves its task log, every gRPC call over mutual TLS', async () => {
      const created = await call<{ code: string }>(file, 'POST', '/workflows', {
        name: 'cluster-launcher-tls',
        tasks: [{ name: 'a', type: 'SHELL', command: 'echo over mutual tls' }],
        edges: [],
      });
      expect(created.status).toBe(201);
      const run = await call<{ workflowInstanceId: number }>(
        file,
        'POST',
        `/workflows/${created.body.code}/runs`,
      );
      const instance = await waitFor(
        'the run to finish',
        async () => {
          const res = await call<{ state: string; tasks: Array<{ id: number; state: string }> }>(
            file,
            'GET',
            `/workflow-instances/${run.body.workflowInstanceId}`,
          );
          return FINAL.includes(res.body.state) ? res.body : undefined;
        },
        90_000,
        200,
      );
      expect(instance.state).toBe('SUCCESS');
      const log = await fetch(`${file.apiUrl}/api/v1/task-instances/${instance.tasks[0]!.id}/log`, {
        headers: { authorization: `Bearer ${file.adminToken}` },
      });
      expect(await log.text()).toContain('over mutual tls');
    });

    it('answers deploy/healthcheck.js with the TLS variables, and not a plaintext check', () => {
      const check = (role: string, env: Record<string, string>) =>
        spawnSync(process.execPath, [join(ROOT, 'deploy', 'healthcheck.js'), role], {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
          encoding: 'utf8',
          timeout: 30_000,
        });
      for (const node of file.nodes.filter((n) => n.role !== 'api-server')) {
        const plain = {
          NODE_HOST: node.host,
          [PORT_VARIABLE[node.role]]: String(node.port),
          CLUSTER_SECRET: file.env.CLUSTER_SECRET,
        };
        const own = environ(node.pid);
        const tls = {
          TLS_CA_FILE: own.TLS_CA_FILE!,
          TLS_CERT_FILE: own.TLS_CERT_FILE!,
          TLS_KEY_FILE: own.TLS_KEY_FILE!,
        };
        const ok = check(node.role, { ...plain, ...tls });
        expect({ node: node.name, status: ok.status, out: ok.stdout }).toEqual({
          node: node.name,
          status: 0,
          out: expect.stringContaining('healthy'),
        });
        // The secret from a file, as compose gives it (CLUSTER_SECRET_FILE).
        const secretFile = join(cwd, 'cluster-secret.txt');
        writeFileSync(secretFile, `${file.env.CLUSTER_SECRET}\n`, { mode: 0o600 });
        const { CLUSTER_SECRET: _inline, ...withoutSecret } = plain;
        const fromFile = check(node.role, { ...withoutSecret, CLUSTER_SECRET_FILE: secretFile, ...tls });
        expect({ node: node.name, status: fromFile.status, out: fromFile.stdout }).toEqual({
          node: node.name,
          status: 0,
          out: expect.stringContaining('healthy'),
        });
        const refused = check(node.role, plain);
        expect({ node: node.name, status: refused.status, out: refused.stdout }).toEqual({
          node: node.name,
          status: 1,
          out: expect.stringContaining('unhealthy'),
        });
      }
    });

    it('stops on SIGINT', async () => {
      const result = await interrupt(launcher as Launcher, 'SIGINT');
      expect(result).toEqual({ code: 0, signal: null });
    });
  });

  describe('with etcd', () => {
    it('starts a local etcd, registers the nodes there, and stops it', async () => {
      if (!existsSync('/usr/bin/etcd')) {
        throw new Error('/usr/bin/etcd is missing: run scripts/install-test-deps.sh');
      }
      // With ADMIN_TOKEN in the launcher's environment: that token, to API servers through a file.
      const given = 'given-admin-token-0123456789abcdefghijkl';
      launcher = launch(cwd, ['--registry', 'etcd'], { ADMIN_TOKEN: given });
      const file = await waitForClusterFile(cwd, launcher);
      expect(file.adminToken).toBe(given);
      const tokenFile = join(cwd, '.porpoise', 'cluster', 'admin-token');
      expect(file.env.ADMIN_TOKEN_FILE).toBe(tokenFile);
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      expect(readFileSync(tokenFile, 'utf8').trim()).toBe(given);
      expect(launcher.output()).not.toContain(given);
      const pids = startedPids(cwd);
      for (const pid of pids) everyPid.add(pid);
      expect(file.registry).toEqual({
        type: 'etcd',
        endpoints: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      });
      expect(file.env.ETCD_ENDPOINTS).toBe(file.registry.endpoints);
      expect(file.nodes.map((n) => n.role).sort()).toEqual(['api-server', 'master', 'worker']);
      const nodes = await call<ClusterNodes>(file, 'GET', '/cluster/nodes');
      const l = listed(nodes.body, file);
      expect(l.masters).toEqual(l.expectedMasters);
      expect(l.workers).toEqual(l.expectedWorkers);
      const result = await interrupt(launcher, 'SIGINT');
      expect(result).toEqual({ code: 0, signal: null });
      for (const pid of pids) expect({ pid, alive: pidAlive(pid) }).toEqual({ pid, alive: false });
    }, 300_000);
  });
});
