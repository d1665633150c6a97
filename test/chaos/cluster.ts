/**
 * A Porpoise cluster of real processes for the chaos tests and the failover benchmark: a
 * Postgres and a registry server from the test harness, then api-server, master and worker
 * processes started from the built code (`node dist/apps/<role>/src/main.js`, `npm run build`
 * first), configured only through the documented variables, each with a port and a DATA_DIR of
 * its own. A node can be SIGKILLed, stopped with SIGTERM and started again on the same port with
 * the same DATA_DIR (what a process supervisor or a compose restart policy does), or new nodes
 * added.
 *
 * Every node's output goes to a log file (one per node, all incarnations) and a small in-memory
 * tail; a line saying the registry session was lost is recorded as a fault of that node. Every
 * exit the test did not cause is recorded (invariant 8). Nothing here kills a process this
 * cluster did not start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  type WriteStream,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { sleep, startEtcd, startPostgres, startZooKeeper, type TestServer } from '../harness';
import type {
  CheckInput,
  CommandAuditRow,
  CommandRow,
  Fault,
  FenceEvent,
  InstanceAuditRow,
  NodeProcess,
  InstanceRow,
  Run,
  TaskAuditRow,
  TaskRow,
  UnexpectedExit,
} from './invariants';
import { readWitness } from './witness';
import { BLACKHOLE, identifyPeer, PartitionNet, type LinkMode } from './proxy';
import { authHeaders, TEST_ADMIN_TOKEN } from '../harness/api-token';

const ROOT = join(__dirname, '..', '..');
export const CHAOS_CLUSTER_SECRET = 'chaos-cluster-secret-0123456789abcdef';

export type Role = 'api-server' | 'master' | 'worker';
export type RegistryKind = 'zookeeper' | 'jdbc' | 'etcd';
type NodeState = 'starting' | 'up' | 'frozen' | 'stopping' | 'down';

export interface ClusterOptions {
  readonly registry: RegistryKind;
  readonly masters: number;
  readonly workers: number;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** Install the audit triggers (default true); the benchmark leaves them out. */
  readonly audit?: boolean;
  /** shared_preload_libraries of the embedded Postgres (the cost benchmark's pg_stat_statements). */
  readonly postgresPreload?: readonly string[];
  /** Progress lines (kills, restarts) besides chaos.log in the scratch directory. */
  readonly log?: (line: string) => void;
  /**
   * Route every master's and worker's links through partition proxies (proxy.ts): its own proxy
   * to Postgres and to the registry server, and its gRPC port behind a proxy on the address it
   * advertises (a 127.x address of its own), so that partition() can cut them. Off by default.
   */
  readonly partitions?: boolean;
}

export interface StopResult {
  readonly node: string;
  readonly signal: 'SIGTERM' | 'SIGKILL';
  readonly exitCode: number | null;
  readonly exitSignal: string | null;
  /** A SIGTERM that had to be followed by SIGKILL after the grace period. */
  readonly forced: boolean;
}

/** One node: a role, a port and a DATA_DIR that stay the same across its incarnations (restarts). */
export class ChaosNode {
  child: ChildProcess | undefined;
  incarnation = 0;
  /** When the current incarnation was spawned (ms since the epoch). */
  spawnedAt = 0;
  state: NodeState = 'down';
  readonly recent: string[] = [];

  constructor(
    readonly name: string,
    readonly role: Role,
    readonly port: number,
    readonly dataDir: string,
    readonly logFile: string,
    /** The address it advertises (NODE_HOST): its own 127.x address when partitions are on. */
    readonly host = '127.0.0.1',
  ) {}

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  tail(lines = 40): string {
    return this.recent.slice(-lines).join('\n');
  }
}

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
/**
 * The worker's and the master's own line when their registry session is gone (one per loss), and
 * the worker's when its session stayed suspended past its liveness deadline: it kills its running
 * tasks then, before the session can expire (they are run again elsewhere, rightly).
 */
const SESSION_LOST =
  /registry session lost: |registry session LOST \(was |registry session suspended for too long /;
const STALLED = /the worker was stalled for (\d+) ms/;
/** A master's runner closed because a fenced write found the instance at a newer epoch. */
const FENCED = /lost ownership of workflow instance (\d+) \(epoch (\d+)\)/;
/** A master woken with its session lost, finding the instances it dropped taken over meanwhile. */
const STOOD_DOWN = /instance\(s\) dropped on the lost session were already taken over/;

let lowestEphemeralPort: number | undefined;
const handedOut = new Set<number>();

/**
 * A free port below the kernel's ephemeral range, so that while a node is down no outgoing
 * connection (a pg or gRPC client) can be given its port, and its restart can bind it again.
 */
export async function nodePort(): Promise<number> {
  if (lowestEphemeralPort === undefined) {
    try {
      lowestEphemeralPort = Number(
        readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
      );
    } catch {
      lowestEphemeralPort = 32768;
    }
  }
  const high = Math.min(lowestEphemeralPort, 65535) - 1;
  const low = Math.max(15000, high - 15000);
  for (let tries = 0; tries < 200; tries++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${low}..${high}`);
}

export class ChaosCluster {
  readonly nodes: ChaosNode[] = [];
  readonly faults: Fault[] = [];
  /** Every master and worker process started, for matching a fault to the attempts it hit. */
  readonly processes: NodeProcess[] = [];
  /** Fenced writes the masters reported. */
  readonly fenced: FenceEvent[] = [];
  readonly unexpectedExits: Array<UnexpectedExit & { tail: string }> = [];
  readonly stops: StopResult[] = [];
  readonly scratch: string;
  readonly env: Record<string, string>;
  readonly db: Pool;
  private readonly logStreams = new Map<ChaosNode, WriteStream>();
  private readonly expected = new WeakSet<ChildProcess>();
  private readonly counters = new Map<Role, number>();
  private apiNode: ChaosNode | undefined;
  private disposed = false;
  /** The partition proxies (options.partitions), and each proxied node's own endpoints. */
  readonly net: PartitionNet | undefined;
  private readonly proxiedEnv = new Map<ChaosNode, Record<string, string>>();

  private constructor(
    readonly options: ClusterOptions,
    private readonly servers: TestServer[],
    readonly databaseUrl: string,
    registryEnv: Record<string, string>,
  ) {
    this.scratch = mkdtempSync(join(tmpdir(), `porpoise-chaos-${options.registry}-`));
    mkdirSync(join(this.scratch, 'logs'));
    this.env = {
      DATABASE_URL: databaseUrl,
      REGISTRY_TYPE: options.registry,
      ...registryEnv,
      CLUSTER_SECRET: CHAOS_CLUSTER_SECRET,
      REGISTRY_SESSION_TIMEOUT_MS: String(options.sessionTimeoutMs),
      HEARTBEAT_INTERVAL_MS: String(options.heartbeatIntervalMs),
      NODE_HOST: '127.0.0.1',
    };
    this.db = new Pool({ connectionString: databaseUrl, max: 4 });
    this.db.on('error', () => undefined);
    this.net = options.partitions ? new PartitionNet() : undefined;
  }

  // ------------------------------------------------------------------ partitions (options.partitions)

  /** The endpoint names of the servers in the partition net: the registry is Postgres with JDBC. */
  static readonly POSTGRES = 'postgres';
  get registryEndpoint(): string {
    return this.options.registry === 'jdbc' ? ChaosCluster.POSTGRES : this.options.registry;
  }

  /**
   * The address a new master or worker advertises: its own 127.1.0.N when partitions are on (all
   * of 127/8 is loopback on Linux), where the proxy in front of its gRPC port listens; the node
   * itself listens on 127.2.0.N (BIND_HOST), same port.
   */
  private partitionHost(role: Role): string {
    if (!this.options.partitions || role === 'api-server') return '127.0.0.1';
    const index = this.nodes.length + 1;
    if (index > 254) throw new Error('too many nodes for the partition addresses');
    return `127.1.0.${index}`;
  }

  /**
   * A node's links through proxies: one to each Postgres and registry server endpoint that only
   * this node dials (so the initiator is known), and one in front of its gRPC port that every node
   * dials (the initiator is found through /proc: identifyPeer). Its DATABASE_URL,
   * ZOOKEEPER_CONNECT / ETCD_ENDPOINTS, NODE_HOST and BIND_HOST point at them.
   */
  private async routeThroughProxies(net: PartitionNet, node: ChaosNode): Promise<void> {
    const via = async (to: string, host: string, port: number) =>
      (
        await net.proxy({
          to,
          target: { host, port },
          listen: { host: '127.0.0.1', port: 0 },
          from: node.name,
        })
      ).endpoint;
    const env: Record<string, string> = {};
    const db = new URL(this.databaseUrl);
    const [dbHost, dbPort] = (await via(ChaosCluster.POSTGRES, db.hostname, Number(db.port || 5432))).split(
      ':',
    );
    db.hostname = dbHost as string;
    db.port = dbPort as string;
    env.DATABASE_URL = db.toString();
    const registry = this.registryEndpoint;
    if (this.env.ZOOKEEPER_CONNECT) {
      // host:port,host:port[/chroot]
      const connect = this.env.ZOOKEEPER_CONNECT;
      const slash = connect.indexOf('/');
      const hosts = slash < 0 ? connect : connect.slice(0, slash);
      const chroot = slash < 0 ? '' : connect.slice(slash);
      const proxied = await Promise.all(
        hosts.split(',').map((hp) => {
          const at = hp.lastIndexOf(':');
          return via(registry, hp.slice(0, at), Number(hp.slice(at + 1)));
        }),
      );
      env.ZOOKEEPER_CONNECT = `${proxied.join(',')}${chroot}`;
    }
    if (this.env.ETCD_ENDPOINTS) {
      const proxied = await Promise.all(
        this.env.ETCD_ENDPOINTS.split(',').map(async (endpoint) => {
          const url = new URL(endpoint);
          return `${url.protocol}//${await via(registry, url.hostname, Number(url.port))}`;
        }),
      );
      env.ETCD_ENDPOINTS = proxied.join(',');
    }
    const inner = node.host.replace(/^127\.1\./, '127.2.');
    await net.proxy({
      to: node.name,
      target: { host: inner, port: node.port },
      listen: { host: node.host, port: node.port },
      from: (socket) =>
        identifyPeer(socket, () => this.nodes.map((n) => ({ name: n.name, pid: n.child?.pid }))),
    });
    env.NODE_HOST = node.host;
    env.BIND_HOST = inner;
    this.proxiedEnv.set(node, env);
  }

  /**
   * Cuts node's links to each of others (nodes, or the 'postgres' / registry endpoints) in both
   * directions: black-holed by default (connects accepted, nothing carried), or delayed. Connections
   * already open are cut too.
   */
  partition(node: ChaosNode, others: ReadonlyArray<ChaosNode | string>, mode: LinkMode = BLACKHOLE): void {
    if (!this.net) throw new Error('partition() needs a cluster started with partitions: true');
    const names = others.map((o) => (typeof o === 'string' ? o : o.name));
    this.log(`chaos: partition ${node.name} (${node.address}) from ${names.join(', ')}: ${mode.kind}`);
    this.net.cut(node.name, names, mode);
  }

  /** Every link open again; what was held flows. */
  heal(): void {
    if (!this.net) return;
    this.log('chaos: heal every link');
    this.net.healAll();
  }

  /** Servers, then the api-server (it migrates), then the masters and workers side by side. */
  static async start(options: ClusterOptions): Promise<ChaosCluster> {
    const servers: TestServer[] = [];
    try {
      const [pg, registryServer] = await Promise.all([
        startPostgres({ preloadLibraries: options.postgresPreload ?? [] }),
        options.registry === 'zookeeper'
          ? startZooKeeper()
          : options.registry === 'etcd'
            ? startEtcd()
            : Promise.resolve(undefined),
      ]);
      servers.push(pg);
      if (registryServer) servers.push(registryServer);
      // jdbc has no server of its own: it uses the Postgres.
      const registryEnv: Record<string, string> =
        registryServer === undefined
          ? {}
          : options.registry === 'zookeeper'
            ? { ZOOKEEPER_CONNECT: registryServer.endpoint }
            : { ETCD_ENDPOINTS: registryServer.endpoint };
      const cluster = new ChaosCluster(options, servers, pg.endpoint, registryEnv);
      try {
        cluster.apiNode = await cluster.addNode('api-server');
        if (options.audit !== false) await cluster.installAudit();
        await Promise.all([
          ...Array.from({ length: options.masters }, () => cluster.addNode('master')),
          ...Array.from({ length: options.workers }, () => cluster.addNode('worker')),
        ]);
      } catch (err) {
        await cluster.dispose();
        throw err;
      }
      return cluster;
    } catch (err) {
      await Promise.all(servers.map((s) => s.dispose().catch(() => undefined)));
      throw err;
    }
  }

  /** A progress line: appended to chaos.log in the scratch directory, and passed to options.log. */
  log(line: string): void {
    appendFileSync(join(this.scratch, 'chaos.log'), `${new Date().toISOString()} ${line}\n`);
    this.options.log?.(line);
  }

  get apiUrl(): string {
    if (!this.apiNode) throw new Error('the chaos cluster has no API server (start() adds it first)');
    return `http://127.0.0.1:${this.apiNode.port}`;
  }

  masters(): ChaosNode[] {
    return this.nodes.filter((n) => n.role === 'master');
  }

  workers(): ChaosNode[] {
    return this.nodes.filter((n) => n.role === 'worker');
  }

  /** A new node of role with a port and DATA_DIR of its own, started and waited for. */
  async addNode(role: Role): Promise<ChaosNode> {
    const n = (this.counters.get(role) ?? 0) + 1;
    this.counters.set(role, n);
    const name = `${role}-${n}`;
    const node = new ChaosNode(
      name,
      role,
      await nodePort(),
      mkdtempSync(join(this.scratch, `${name}-data-`)),
      join(this.scratch, 'logs', `${name}.log`),
      this.partitionHost(role),
    );
    this.nodes.push(node);
    if (this.net && role !== 'api-server') await this.routeThroughProxies(this.net, node);
    await this.startNode(node);
    return node;
  }

  /**
   * Starts (again) a node that is down, on its own port with its own DATA_DIR, and waits until
   * it serves (api-server) or is registered with a heartbeat of this incarnation (master, worker).
   */
  async startNode(node: ChaosNode, timeoutMs = 60_000): Promise<void> {
    if (node.state !== 'down') throw new Error(`${node.name} is ${node.state}, not down`);
    for (let tries = 1; ; tries++) {
      // A restart still pending when the test ended must not leave a process behind.
      if (this.disposed) throw new Error(`${node.name} not started: the cluster is disposed`);
      const child = this.spawnNode(node);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (node.child !== child) break;
        if (await this.isReady(node).catch(() => false)) {
          if (node.child !== child) break;
          node.state = 'up';
          return;
        }
        if (Date.now() > deadline) {
          throw new Error(
            `${node.name} (port ${node.port}) not ready after ${timeoutMs} ms:\n${node.tail(30)}`,
          );
        }
        await sleep(100);
      }
      // Exited while starting. The port was taken by someone else meanwhile: try again (bounded).
      if (tries < 4 && /EADDRINUSE|address already in use/i.test(node.tail(30))) {
        await sleep(500 * tries);
        continue;
      }
      throw new Error(`${node.name} (port ${node.port}) exited while starting:\n${node.tail(30)}`);
    }
  }

  private spawnNode(node: ChaosNode): ChildProcess {
    const portVariable =
      node.role === 'api-server' ? 'API_PORT' : node.role === 'master' ? 'MASTER_PORT' : 'WORKER_PORT';
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'apps', node.role, 'src', 'main.js')], {
      cwd: node.dataDir,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        // Tasks write witness files into the test's own private directories: they run as the
        // test's user, explicitly (workers would otherwise run them as nobody).
        ...(process.getuid?.() === 0 ? { TASK_USER: 'root' } : {}),
        ...this.env,
        ...this.proxiedEnv.get(node),
        ...(node.role === 'api-server' ? { ADMIN_TOKEN: TEST_ADMIN_TOKEN } : {}),
        // Debugging aid: grpc-js tracing in every node (its own variables, read by grpc-js).
        ...(process.env.CHAOS_GRPC_TRACE
          ? { GRPC_TRACE: process.env.CHAOS_GRPC_TRACE, GRPC_VERBOSITY: 'DEBUG' }
          : {}),
        [portVariable]: String(node.port),
        // The worker's port again under a name of the test's own: tasks inherit the worker's
        // environment but none of Porpoise's variables (WORKER_PORT among them), and the witness
        // lines say which worker ran an attempt.
        ...(node.role === 'worker' ? { CHAOS_WORKER_PORT: String(node.port) } : {}),
        // Many masters and workers on one host: no /metrics endpoints (they would share defaults).
        METRICS_PORT: '0',
        DATA_DIR: node.dataDir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    node.child = child;
    node.incarnation++;
    node.spawnedAt = Date.now();
    node.state = 'starting';
    const incarnation = node.incarnation;
    const pid = child.pid;
    if (node.role !== 'api-server' && pid !== undefined) {
      this.processes.push({ address: node.address, role: node.role, pid, startedAt: node.spawnedAt });
    }
    let stream = this.logStreams.get(node);
    if (!stream) {
      stream = createWriteStream(node.logFile, { flags: 'a' });
      this.logStreams.set(node, stream);
    }
    const out = stream;
    out.write(`===== ${new Date().toISOString()} ${node.name} incarnation ${incarnation} pid ${child.pid}\n`);
    const onLines = () => {
      let partial = '';
      return (chunk: Buffer) => {
        const text = partial + chunk.toString();
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        const at = Date.now();
        for (const raw of lines) {
          const line = raw.replace(ANSI, '');
          out.write(`${new Date(at).toISOString()} ${line}\n`);
          node.recent.push(`[${node.name}#${incarnation}] ${line}`);
          if (node.recent.length > 300) node.recent.splice(0, node.recent.length - 300);
          if (node.role === 'api-server') continue;
          if (SESSION_LOST.test(line)) {
            this.faults.push({ at, address: node.address, role: node.role, kind: 'session-lost', pid });
          }
          // A worker that stalled past its liveness deadline (its task watchdogs killed its tasks
          // meanwhile) says so when it wakes up: the stall began that long ago.
          const stalled = STALLED.exec(line);
          if (stalled) {
            this.faults.push({
              at: at - Number(stalled[1]),
              address: node.address,
              role: node.role,
              kind: 'stalled',
              pid,
            });
          }
          const fenced = node.role === 'master' ? FENCED.exec(line) : null;
          if (fenced) {
            this.fenced.push({
              at,
              address: node.address,
              pid,
              instanceId: Number(fenced[1]),
              epoch: Number(fenced[2]),
            });
          } else if (node.role === 'master' && STOOD_DOWN.test(line)) {
            this.fenced.push({ at, address: node.address, pid });
          }
        }
      };
    };
    child.stdout.on('data', onLines());
    child.stderr.on('data', onLines());
    child.on('error', (err) => node.recent.push(`[${node.name}#${incarnation}] spawn error: ${err.message}`));
    child.once('exit', (code, signal) => {
      out.write(
        `===== ${new Date().toISOString()} ${node.name} incarnation ${incarnation} exited code ${code} signal ${signal}\n`,
      );
      // A start that failed because the port was taken is retried by startNode(), not a crash.
      const portTaken = node.state === 'starting' && /EADDRINUSE/.test(node.tail(30));
      if (node.child === child) {
        node.child = undefined;
        node.state = 'down';
      }
      if (!this.expected.has(child) && !portTaken) {
        this.unexpectedExits.push({
          node: `${node.name}#${incarnation} (pid ${child.pid}, ${node.address})`,
          code,
          signal,
          tail: node.tail(30),
        });
      }
    });
    return child;
  }

  private async isReady(node: ChaosNode): Promise<boolean> {
    if (node.role === 'api-server') {
      const res = await fetch(`http://127.0.0.1:${node.port}/health`).catch(() => undefined);
      return res?.status === 200;
    }
    const res = await fetch(`${this.apiUrl}/api/v1/cluster/nodes`, { headers: authHeaders() }).catch(
      () => undefined,
    );
    if (res?.status !== 200) return false;
    const body = (await res.json()) as Record<
      'masters' | 'workers',
      Array<{ port: number; startTime: number }>
    >;
    const list = node.role === 'master' ? body.masters : body.workers;
    // A restarted node's predecessor may still be registered: only this incarnation's heartbeat counts.
    return list.some((n) => n.port === node.port && n.startTime >= node.spawnedAt - 50);
  }

  /**
   * Sends signal to a node the test started and waits for it to exit (SIGKILL after graceMs for
   * a SIGTERM that does not end it). Recorded as a fault of that node.
   */
  async signal(
    node: ChaosNode,
    signal: 'SIGKILL' | 'SIGTERM',
    graceMs = 20_000,
  ): Promise<StopResult | undefined> {
    const child = node.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return undefined;
    this.expected.add(child);
    if (node.state === 'frozen' && signal !== 'SIGKILL') child.kill('SIGCONT');
    node.state = 'stopping';
    const at = Date.now();
    if (node.role !== 'api-server') {
      this.faults.push({ at, address: node.address, role: node.role, kind: signal, pid: child.pid });
    }
    const exited = new Promise<[number | null, string | null]>((resolve) =>
      child.once('exit', (code, sig) => resolve([code, sig])),
    );
    child.kill(signal);
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      child.kill('SIGKILL');
    }, graceMs);
    const [exitCode, exitSignal] = await exited;
    clearTimeout(timer);
    const result: StopResult = {
      node: `${node.name}#${node.incarnation}`,
      signal,
      exitCode,
      exitSignal,
      forced,
    };
    this.stops.push(result);
    return result;
  }

  /**
   * Freezes a node with SIGSTOP for ms, then wakes it with SIGCONT: a stalled process (GC pause,
   * swapped out, a VM stolen away) whose registry session expires meanwhile. Its task processes
   * are in their own process groups and keep running. Recorded as a fault of that node.
   */
  async freeze(node: ChaosNode, ms: number): Promise<void> {
    const child = node.child;
    if (!child || node.state !== 'up') return;
    if (node.role !== 'api-server') {
      const at = Date.now();
      this.faults.push({
        at,
        address: node.address,
        role: node.role,
        kind: 'SIGSTOP',
        pid: child.pid,
        until: at + ms,
      });
    }
    node.state = 'frozen';
    child.kill('SIGSTOP');
    await sleep(ms);
    if (node.child === child && node.state === 'frozen') {
      child.kill('SIGCONT');
      node.state = 'up';
    }
  }

  kill(node: ChaosNode): Promise<StopResult | undefined> {
    return this.signal(node, 'SIGKILL');
  }

  /** Stops every node (SIGTERM, in parallel), then the servers; removes the scratch directory only if asked. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all(this.nodes.map((n) => this.signal(n, 'SIGTERM', 15_000).catch(() => undefined)));
    await Promise.all([...this.logStreams.values()].map((s) => new Promise<void>((r) => s.end(() => r()))));
    await this.net?.close();
    await this.db.end().catch(() => undefined);
    await Promise.all(this.servers.map((s) => s.dispose().catch(() => undefined)));
  }

  /** The last lines of every node, for a failure message. */
  tails(lines = 25): string {
    return this.nodes
      .map((n) => `--- ${n.name} (${n.address}, ${n.state}, log ${n.logFile})\n${n.tail(lines)}`)
      .join('\n');
  }

  // ------------------------------------------------------------------ REST

  async api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.apiUrl}/api/v1${path}`, {
      method,
      headers: authHeaders({ 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    const json = text && res.headers.get('content-type')?.includes('json');
    return { status: res.status, body: (json ? JSON.parse(text) : text) as T };
  }

  async createWorkflow(definition: unknown): Promise<string> {
    const res = await this.api<{ code: string }>('POST', '/workflows', definition);
    if (res.status !== 201) {
      throw new Error(`POST /workflows answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    return res.body.code;
  }

  async trigger(code: string, params?: Record<string, string>): Promise<Run> {
    const res = await this.api<{ commandId: number; workflowInstanceId: number }>(
      'POST',
      `/workflows/${code}/runs`,
      params ? { params } : undefined,
    );
    if (res.status !== 202) {
      throw new Error(`POST /workflows/${code}/runs answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
    return {
      commandId: res.body.commandId,
      instanceId: res.body.workflowInstanceId,
      ...(params ? { params } : {}),
    };
  }

  // ------------------------------------------------------------------ database

  /**
   * Audit trails written by triggers in the test's own database (the product does not know about
   * them): every command insert and delete, and every workflow and task instance row after each
   * change, in the order the row locks allowed them.
   */
  private async installAudit(): Promise<void> {
    await this.db.query(`
      CREATE TABLE chaos_command_audit (seq bigserial PRIMARY KEY, op text NOT NULL, command_id bigint NOT NULL,
        instance_id bigint NOT NULL, type text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
      CREATE TABLE chaos_instance_audit (seq bigserial PRIMARY KEY, instance_id bigint NOT NULL, host text,
        epoch bigint NOT NULL, state text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
      CREATE TABLE chaos_task_audit (seq bigserial PRIMARY KEY, task_id bigint NOT NULL, instance_id bigint NOT NULL,
        name text NOT NULL, attempt int NOT NULL, state text NOT NULL, host text, writer_epoch bigint,
        owner_epoch bigint, at timestamptz NOT NULL DEFAULT clock_timestamp());
      CREATE FUNCTION chaos_command_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'DELETE' THEN
          INSERT INTO chaos_command_audit (op, command_id, instance_id, type)
          VALUES ('DELETE', OLD.id, OLD.workflow_instance_id, OLD.type);
        ELSE
          INSERT INTO chaos_command_audit (op, command_id, instance_id, type)
          VALUES ('INSERT', NEW.id, NEW.workflow_instance_id, NEW.type);
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER chaos_command_audit_trg AFTER INSERT OR DELETE ON command
        FOR EACH ROW EXECUTE FUNCTION chaos_command_audit_fn();
      CREATE FUNCTION chaos_instance_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO chaos_instance_audit (instance_id, host, epoch, state) VALUES (NEW.id, NEW.host, NEW.epoch, NEW.state);
        RETURN NULL;
      END $$;
      CREATE TRIGGER chaos_instance_audit_trg AFTER INSERT OR UPDATE ON workflow_instance
        FOR EACH ROW EXECUTE FUNCTION chaos_instance_audit_fn();
      CREATE FUNCTION chaos_task_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        -- The writer's epoch (stamped by its fenced statement) beside the instance's epoch now: a
        -- fence that let a stale master through would show a writer older than the owner.
        INSERT INTO chaos_task_audit (task_id, instance_id, name, attempt, state, host, writer_epoch, owner_epoch)
        VALUES (NEW.id, NEW.workflow_instance_id, NEW.name, NEW.attempt, NEW.state, NEW.host, NEW.writer_epoch,
                (SELECT w.epoch FROM workflow_instance w WHERE w.id = NEW.workflow_instance_id));
        RETURN NULL;
      END $$;
      CREATE TRIGGER chaos_task_audit_trg AFTER INSERT OR UPDATE ON task_instance
        FOR EACH ROW EXECUTE FUNCTION chaos_task_audit_fn();
    `);
  }

  /**
   * Waits (bounded) until every instance, and every SUB_WORKFLOW child under it, is in a final
   * state; returns those that are not.
   */
  async waitFinal(instanceIds: readonly number[], timeoutMs: number): Promise<number[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await this.db.query<{ id: string }>(
        `WITH RECURSIVE tree (id) AS (
           SELECT id FROM workflow_instance WHERE id = ANY($1::bigint[])
           UNION SELECT c.id FROM workflow_instance c JOIN tree ON c.parent_instance_id = tree.id)
         SELECT id FROM workflow_instance WHERE id IN (SELECT id FROM tree)
         AND state NOT IN ('SUCCESS', 'FAILURE', 'STOP', 'PAUSE') ORDER BY id`,
        [instanceIds],
      );
      if (rows.length === 0 || Date.now() > deadline) return rows.map((r) => Number(r.id));
      await sleep(250);
    }
  }

  /**
   * Everything the invariant checker needs about these runs (one witness file): every instance of
   * the workflows (the runs' workflow and its SUB_WORKFLOW child workflows), of the runs, and of
   * their children down the tree (parent_instance_id), with their tasks, commands and audit rows.
   */
  async gather(
    runs: readonly Run[],
    workflowCodes: string | readonly string[],
    dag: CheckInput['dag'],
    witnessFile: string,
    stuckInvariant?: '5' | '7',
  ): Promise<CheckInput> {
    const codes = typeof workflowCodes === 'string' ? [workflowCodes] : [...workflowCodes];
    const runIds = runs.map((r) => r.instanceId);
    const q = async <T>(sql: string, params: unknown[]) => (await this.db.query(sql, params)).rows as T[];
    const instances = await q<{
      id: string;
      state: string;
      host: string | null;
      epoch: string;
      parent_instance_id: string | null;
      parent_task_instance_id: string | null;
    }>(
      `WITH RECURSIVE tree (id) AS (
         SELECT id FROM workflow_instance WHERE workflow_code = ANY($1::text[]) OR id = ANY($2::bigint[])
         UNION SELECT c.id FROM workflow_instance c JOIN tree ON c.parent_instance_id = tree.id)
       SELECT id, state, host, epoch, parent_instance_id, parent_task_instance_id
       FROM workflow_instance WHERE id IN (SELECT id FROM tree) ORDER BY id`,
      [codes, runIds],
    );
    const ids = instances.map((r) => Number(r.id));
    const [tasks, commandsLeft, commandAudit, instanceAudit, taskAudit] = await Promise.all([
      q<{
        id: string;
        wid: string;
        name: string;
        state: string;
        host: string | null;
        attempt: number;
        exit_code: number | null;
      }>(
        `SELECT t.id, t.workflow_instance_id AS wid, t.name, t.state, t.host, t.attempt, t.exit_code
         FROM task_instance t WHERE t.workflow_instance_id = ANY($1::bigint[])`,
        [ids],
      ),
      q<{ id: string; wid: string; type: string }>(
        'SELECT id, workflow_instance_id AS wid, type FROM command WHERE workflow_code = ANY($1::text[]) OR workflow_instance_id = ANY($2::bigint[])',
        [codes, ids],
      ),
      q<{ seq: string; op: 'INSERT' | 'DELETE'; command_id: string; instance_id: string; type: string }>(
        'SELECT seq, op, command_id, instance_id, type FROM chaos_command_audit WHERE instance_id = ANY($1::bigint[]) ORDER BY seq',
        [ids],
      ),
      q<{ seq: string; instance_id: string; host: string | null; epoch: string; state: string; at: Date }>(
        'SELECT seq, instance_id, host, epoch, state, at FROM chaos_instance_audit WHERE instance_id = ANY($1::bigint[]) ORDER BY seq',
        [ids],
      ),
      q<{
        seq: string;
        task_id: string;
        instance_id: string;
        name: string;
        attempt: number;
        state: string;
        host: string | null;
        at: Date;
        writer_epoch: string | null;
        owner_epoch: string | null;
      }>(
        'SELECT seq, task_id, instance_id, name, attempt, state, host, at, writer_epoch, owner_epoch FROM chaos_task_audit WHERE instance_id = ANY($1::bigint[]) ORDER BY seq',
        [ids],
      ),
    ]);
    return {
      runs,
      dag,
      instances: instances.map((r): InstanceRow => ({
        id: Number(r.id),
        state: r.state,
        host: r.host,
        epoch: Number(r.epoch),
        parentInstanceId: r.parent_instance_id === null ? null : Number(r.parent_instance_id),
        parentTaskInstanceId: r.parent_task_instance_id === null ? null : Number(r.parent_task_instance_id),
      })),
      tasks: tasks.map((r): TaskRow => ({
        id: Number(r.id),
        instanceId: Number(r.wid),
        name: r.name,
        state: r.state,
        host: r.host,
        attempt: r.attempt,
        exitCode: r.exit_code,
      })),
      commandsLeft: commandsLeft.map((r): CommandRow => ({
        id: Number(r.id),
        instanceId: Number(r.wid),
        type: r.type,
      })),
      commandAudit: commandAudit.map((r): CommandAuditRow => ({
        seq: Number(r.seq),
        op: r.op,
        commandId: Number(r.command_id),
        instanceId: Number(r.instance_id),
        type: r.type,
      })),
      instanceAudit: instanceAudit.map((r): InstanceAuditRow => ({
        seq: Number(r.seq),
        instanceId: Number(r.instance_id),
        host: r.host,
        epoch: Number(r.epoch),
        state: r.state,
        at: r.at.getTime(),
      })),
      taskAudit: taskAudit.map((r): TaskAuditRow => ({
        seq: Number(r.seq),
        taskId: Number(r.task_id),
        instanceId: Number(r.instance_id),
        name: r.name,
        attempt: r.attempt,
        state: r.state,
        host: r.host,
        at: r.at.getTime(),
        writerEpoch: r.writer_epoch === null ? null : Number(r.writer_epoch),
        ownerEpoch: r.owner_epoch === null ? null : Number(r.owner_epoch),
      })),
      witness: readWitness(witnessFile),
      faults: [...this.faults],
      processes: [...this.processes],
      fenced: [...this.fenced],
      unexpectedExits: this.unexpectedExits.map(({ node, code, signal }) => ({ node, code, signal })),
      stuckInvariant,
    };
  }

  /**
   * How much running work each node of role holds right now, by address: a master's RUNNING
   * instances, a worker's RUNNING_EXECUTION task attempts (what the database says). Aimed faults
   * pick their victim among these, so that a fault hits work.
   */
  async runningWork(role: 'master' | 'worker'): Promise<Map<string, number>> {
    const sql =
      role === 'master'
        ? `SELECT host, count(*) AS n FROM workflow_instance
           WHERE state = 'RUNNING_EXECUTION' AND host IS NOT NULL GROUP BY host`
        : `SELECT host, count(*) AS n FROM task_instance
           WHERE state = 'RUNNING_EXECUTION' AND host IS NOT NULL GROUP BY host`;
    const { rows } = await this.db.query<{ host: string; n: string }>(sql);
    return new Map(rows.map((r) => [r.host, Number(r.n)]));
  }

  /** A short description of the unfinished instances, for a failure message. */
  async describeInstances(ids: readonly number[]): Promise<string> {
    if (ids.length === 0) return '';
    const { rows } = await this.db.query<{
      id: string;
      state: string;
      host: string | null;
      epoch: string;
      tasks: string;
    }>(
      `SELECT w.id, w.state, w.host, w.epoch,
              coalesce(string_agg(t.name || '#' || t.attempt || ':' || t.state || '@' || coalesce(t.host, '-'), ' '
                ORDER BY t.name, t.attempt), '') AS tasks
       FROM workflow_instance w LEFT JOIN task_instance t ON t.workflow_instance_id = w.id
       WHERE w.id = ANY($1::bigint[]) GROUP BY w.id ORDER BY w.id LIMIT 20`,
      [ids],
    );
    return rows
      .map((r) => `  instance ${r.id} ${r.state} host ${r.host} epoch ${r.epoch}: ${r.tasks}`)
      .join('\n');
  }

  // ------------------------------------------------------------------ registry server faults

  /**
   * The registry server this cluster runs on (ZooKeeper or etcd), for registry server faults:
   * its stop() SIGKILLs it and start() brings it back on the same port with the same data.
   * Undefined for the JDBC registry, whose server is the Postgres.
   */
  registryServer(): TestServer | undefined {
    return this.options.registry === 'jdbc' ? undefined : this.servers[1];
  }

  // ------------------------------------------------------------------ Postgres faults (issue 13 item 1)

  /**
   * The cluster's Postgres (the metadata, and the JDBC registry's store): infra-postgres.ts kills,
   * stops and starts it on the same port and data.
   */
  postgresServer(): TestServer {
    const pg = this.servers[0];
    if (!pg) throw new Error('the chaos cluster has no Postgres');
    return pg;
  }
}
