import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import {
  assertZooKeeperInstalled,
  spawnZooKeeper,
  writeZooKeeperConfig,
  ZOOKEEPER_JAR,
} from '../../scripts/cluster/servers';
import { stopProcess } from './child-process';
import { dockerAvailable } from './docker';
import { freePort, waitForPort } from './net';
import { NotControllableError, type TestServer } from './test-server';

/** Where the Debian `zookeeper` package puts the server jar. */
export { ZOOKEEPER_JAR };

/**
 * A real ZooKeeper: TEST_ZOOKEEPER_CONNECT if set, else a testcontainers ZooKeeper when
 * Docker answers, else a local server from the Debian package's jar on a free port, with
 * tickTime 200 ms so that sessions may be as short as 400 ms.
 */
export async function startZooKeeper(): Promise<TestServer> {
  const fromEnv = process.env.TEST_ZOOKEEPER_CONNECT;
  if (fromEnv) return remote(fromEnv, 'env', async () => undefined);
  if (await dockerAvailable()) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('zookeeper:3.8')
      .withEnvironment({ ZOO_TICK_TIME: '200', ZOO_4LW_COMMANDS_WHITELIST: '*' })
      .withExposedPorts(2181)
      .withWaitStrategy(Wait.forListeningPorts())
      .start();
    return remote(`${container.getHost()}:${container.getMappedPort(2181)}`, 'container', async () => {
      await container.stop();
    });
  }
  return LocalZooKeeper.start();
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

class LocalZooKeeper implements TestServer {
  readonly source = 'local' as const;
  readonly controllable = true;
  private child: ChildProcess | undefined;
  private disposed = false;

  private constructor(
    private readonly root: string,
    private readonly port: number,
  ) {}

  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(): Promise<LocalZooKeeper> {
    assertZooKeeperInstalled();
    const server = new LocalZooKeeper(mkdtempSync(join(tmpdir(), 'porpoise-zk-')), await freePort());
    // The same server the cluster launcher runs (scripts/cluster/servers.ts), without fsync.
    writeZooKeeperConfig({ dir: server.root, port: server.port, tickTimeMs: 200, noSync: true });
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    if (this.child) return;
    this.child = spawnZooKeeper(join(this.root, 'zoo.cfg'));
    await waitForPort(this.port, '127.0.0.1', 60_000);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    // SIGKILL: a crash, as a real outage would be; ZooKeeper recovers sessions from its log.
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
