import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { assertEtcdInstalled, ETCD_BINARY, etcdEndpoint, spawnEtcd } from '../../scripts/cluster/servers';
import { stopProcess } from './child-process';
import { dockerAvailable } from './docker';
import { freePort, waitForPort } from './net';
import { NotControllableError, type TestServer } from './test-server';

export { ETCD_BINARY };

/** An etcd user and password (ETCD_USERNAME, ETCD_PASSWORD). */
export interface EtcdCredentials {
  readonly username: string;
  readonly password: string;
}

/**
 * Turns password authentication on in a test's own etcd: a root user (with a password nobody
 * keeps; etcd requires one before `auth enable`), and `user` with a role that may read and write
 * every key under '/', where the registry keeps its keys. Irreversible for this server: never
 * for one the test did not start (TEST_ETCD_ENDPOINTS).
 */
export async function enableEtcdAuth(server: TestServer, user: EtcdCredentials): Promise<void> {
  if (server.source === 'env') {
    throw new Error(
      'etcd authentication is turned on only in a server the test started, not TEST_ETCD_ENDPOINTS',
    );
  }
  const { Etcd3, Range } = await import('etcd3');
  const client = new Etcd3({ hosts: server.endpoint });
  try {
    await client.user('root').create(randomBytes(16).toString('hex'));
    await client.user('root').addRole('root');
    await client.role('porpoise').create();
    await client.role('porpoise').grant({ permission: 'Readwrite', range: Range.prefix('/') });
    await client.user(user.username).create(user.password);
    await client.user(user.username).addRole('porpoise');
    await client.auth.authEnable();
  } finally {
    client.close();
  }
}

/**
 * A real etcd: TEST_ETCD_ENDPOINTS if set, else a testcontainers etcd when Docker answers,
 * else a local server from Debian's `etcd-server` on free ports with its own data directory.
 */
export async function startEtcd(): Promise<TestServer> {
  const fromEnv = process.env.TEST_ETCD_ENDPOINTS;
  if (fromEnv) return remote(fromEnv, 'env', async () => undefined);
  if (await dockerAvailable()) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('quay.io/coreos/etcd:v3.5.17')
      .withCommand([
        'etcd',
        '--listen-client-urls=http://0.0.0.0:2379',
        '--advertise-client-urls=http://0.0.0.0:2379',
      ])
      .withExposedPorts(2379)
      .withWaitStrategy(Wait.forListeningPorts())
      .start();
    return remote(`http://${container.getHost()}:${container.getMappedPort(2379)}`, 'container', async () => {
      await container.stop();
    });
  }
  return LocalEtcd.start();
}

function remote(endpoint: string, source: 'env' | 'container', onDispose: () => Promise<void>): TestServer {
  return {
    endpoint,
    source,
    controllable: false,
    stop: () => Promise.reject(new NotControllableError(source)),
    kill: () => Promise.reject(new NotControllableError(source)),
    start: () => Promise.reject(new NotControllableError(source)),
    dispose: onDispose,
  };
}

class LocalEtcd implements TestServer {
  readonly source = 'local' as const;
  readonly controllable = true;
  private child: ChildProcess | undefined;
  private disposed = false;

  private constructor(
    private readonly root: string,
    private readonly clientPort: number,
    private readonly peerPort: number,
  ) {}

  get endpoint(): string {
    return etcdEndpoint(this.clientPort);
  }

  static async start(): Promise<LocalEtcd> {
    assertEtcdInstalled();
    const server = new LocalEtcd(
      mkdtempSync(join(tmpdir(), 'porpoise-etcd-')),
      await freePort(),
      await freePort(),
    );
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    if (this.child) return;
    // The same server the cluster launcher runs (scripts/cluster/servers.ts).
    this.child = spawnEtcd({
      name: 'porpoise-test',
      dataDir: join(this.root, 'data'),
      clientPort: this.clientPort,
      peerPort: this.peerPort,
    });
    await waitForPort(this.clientPort, '127.0.0.1', 60_000);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child) await stopProcess(child, 'SIGKILL');
  }

  /** stop() already SIGKILLs: a crash. */
  kill(): Promise<void> {
    return this.stop();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.stop();
    rmSync(this.root, { recursive: true, force: true });
  }
}
