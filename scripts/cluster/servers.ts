/**
 * How Porpoise starts the servers it does not ship: a one-server ZooKeeper from the Debian
 * `zookeeper` package's jar (run with java) and an etcd from Debian's `etcd-server`. Shared by
 * the cluster launcher (`npm run cluster`) and the test harness (test/harness), so both run the
 * same server the same way. Node built-ins only: the build compiles this file for the harness.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the Debian `zookeeper` package puts the server jar. */
export const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';
/** Where Debian's `etcd-server` puts the server. */
export const ETCD_BINARY = '/usr/bin/etcd';

export interface ZooKeeperServerOptions {
  /** Directory for zoo.cfg and the data directory (created if missing). */
  readonly dir: string;
  readonly port: number;
  /**
   * ZooKeeper's tick. Sessions may be as short as 2 ticks and as long as maxSessionTimeoutMs;
   * 200 ms allows sub-second sessions for expiry tests. Default 200.
   */
  readonly tickTimeMs?: number;
  /** Longest session the server grants. Default 600000 (the longest Porpoise accepts). */
  readonly maxSessionTimeoutMs?: number;
  /** Skip fsync (tests only; a crash of the machine may lose the log). Default false. */
  readonly noSync?: boolean;
}

/** Throws a message naming the Debian package when the ZooKeeper jar is missing. */
export function assertZooKeeperInstalled(): void {
  if (!existsSync(ZOOKEEPER_JAR)) {
    throw new Error(
      `${ZOOKEEPER_JAR} is missing: install the Debian package zookeeper (scripts/install-test-deps.sh does)`,
    );
  }
}

/** Throws a message naming the Debian package when etcd is missing. */
export function assertEtcdInstalled(): void {
  if (!existsSync(ETCD_BINARY)) {
    throw new Error(
      `${ETCD_BINARY} is missing: install the Debian package etcd-server (scripts/install-test-deps.sh does)`,
    );
  }
}

/** Writes `<dir>/zoo.cfg` for a standalone server on 127.0.0.1:port with data in `<dir>/data`. */
export function writeZooKeeperConfig(options: ZooKeeperServerOptions): string {
  const tick = options.tickTimeMs ?? 200;
  const dataDir = join(options.dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const file = join(options.dir, 'zoo.cfg');
  writeFileSync(
    file,
    [
      `tickTime=${tick}`,
      'initLimit=10',
      'syncLimit=5',
      `dataDir=${dataDir}`,
      `clientPort=${options.port}`,
      'clientPortAddress=127.0.0.1',
      `minSessionTimeout=${2 * tick}`,
      `maxSessionTimeout=${Math.max(options.maxSessionTimeoutMs ?? 600_000, 2 * tick)}`,
      'admin.enableServer=false',
      '4lw.commands.whitelist=*',
      'maxClientCnxns=0',
      // Standalone ZooKeeper keeps snapshots forever unless purged.
      'autopurge.purgeInterval=1',
      ...(options.noSync ? ['forceSync=no'] : []),
    ].join('\n') + '\n',
  );
  return file;
}

/** Starts ZooKeeper from the jar with zoo.cfg (see writeZooKeeperConfig). Does not wait. */
export function spawnZooKeeper(
  configFile: string,
  options: { stdio?: StdioOptions; detached?: boolean } = {},
): ChildProcess {
  assertZooKeeperInstalled();
  return spawn(
    'java',
    [
      '-Xmx256m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-cp',
      ZOOKEEPER_JAR,
      'org.apache.zookeeper.server.quorum.QuorumPeerMain',
      configFile,
    ],
    { stdio: options.stdio ?? 'ignore', detached: options.detached ?? false },
  );
}

export interface EtcdServerOptions {
  /** Data directory of this member (created by etcd). */
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly name?: string;
  readonly stdio?: StdioOptions;
  readonly detached?: boolean;
}

/** The client URL of an etcd started by spawnEtcd. */
export function etcdEndpoint(clientPort: number): string {
  return `http://127.0.0.1:${clientPort}`;
}

/** Starts a one-member etcd on 127.0.0.1 with short raft timers. Does not wait. */
export function spawnEtcd(options: EtcdServerOptions): ChildProcess {
  assertEtcdInstalled();
  const name = options.name ?? 'porpoise';
  const client = etcdEndpoint(options.clientPort);
  const peer = `http://127.0.0.1:${options.peerPort}`;
  return spawn(
    ETCD_BINARY,
    [
      `--name=${name}`,
      `--data-dir=${options.dataDir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=${name}=${peer}`,
      '--heartbeat-interval=50',
      '--election-timeout=250',
      '--log-level=error',
    ],
    {
      stdio: options.stdio ?? 'ignore',
      detached: options.detached ?? false,
      // etcd refuses to start on architectures it does not officially support unless told.
      env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === 'x64' ? '' : process.arch },
    },
  );
}
