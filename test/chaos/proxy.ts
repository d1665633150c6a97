/**
 * Network partitions without root: TCP proxies in the chaos harness, written with Node's `net`
 * module, that stand between a node and everything it talks to (docs/chaos.md, "Partitions").
 *
 * A PartitionNet holds one link mode per (initiator, acceptor) pair of endpoint names ('master-1',
 * 'postgres', 'registry', ...) and every connection that crosses one of its proxies. A Proxy listens
 * on one address and forwards to one target (the acceptor); the initiator of a connection is fixed
 * for a proxy that only one node dials (a node's own way to Postgres or to the registry server), or
 * identified per connection (a node's gRPC port, which every node dials): by the client's source
 * address, looked up in /proc/net/tcp and in the /proc/<pid>/fd of the candidate processes.
 *
 * The modes:
 * - open: bytes flow;
 * - blackhole: connections are still accepted and kept open, but nothing crosses in either
 *   direction (not even a close) until the link is healed, as with a cable pulled or a firewall
 *   dropping packets. Bytes are held, not dropped: TCP retransmits what a real partition dropped,
 *   so after a heal the peer gets everything, late; a connection accepted meanwhile reaches its
 *   target only after the heal. Never a refused connect, never a reset: a master judges a node
 *   provably dead when its port refuses (apps/master/src/registry/provable-death.ts), so a proxy
 *   that refused would make a partitioned live node look dead;
 * - delay: every chunk is forwarded that many ms after it arrived, in order (both ways, or only
 *   what the initiator sends: a request lands late, its answer comes back at once).
 *
 * Changing a mode applies at once to the connections already open, not only to new ones.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export type LinkMode =
  | { readonly kind: 'open' }
  | { readonly kind: 'blackhole' }
  /** oneWay: only what the initiator sends is delayed (its requests), not the answers. */
  | { readonly kind: 'delay'; readonly ms: number; readonly oneWay?: boolean };

export const OPEN: LinkMode = { kind: 'open' };
export const BLACKHOLE: LinkMode = { kind: 'blackhole' };
export const delayOf = (ms: number, oneWay = false): LinkMode => ({ kind: 'delay', ms, oneWay });

/** The name of a connection's initiator when it cannot be identified (the test process itself). */
export const UNKNOWN_INITIATOR = '?';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface ProxyOptions {
  /** The endpoint name of the target (the acceptor of every connection). */
  readonly to: string;
  readonly target: HostPort;
  /** Where to listen (port 0: any free port). */
  readonly listen: HostPort;
  /** The initiator: a fixed name, or a lookup per accepted connection (UNKNOWN_INITIATOR if undefined). */
  readonly from: string | ((socket: Socket) => string | undefined);
}

type Direction = 'up' | 'down';

/** One accepted connection and its upstream half, forwarding as its link's mode says. */
class Pipe {
  private upstream: Socket | undefined;
  private connecting = false;
  private mode: LinkMode = OPEN;
  /** Chunks (and ends: null) waiting for their delay, per direction. */
  private readonly queues: Record<Direction, Array<{ due: number; chunk: Buffer | null }>> = {
    up: [],
    down: [],
  };
  private timer: NodeJS.Timeout | undefined;
  /** A side that closed (or failed) while the link was black-holed: told to the other side at the heal. */
  private readonly closedSides = new Set<Direction>();
  private done = false;

  constructor(
    private readonly net: PartitionNet,
    readonly from: string,
    readonly to: string,
    private readonly client: Socket,
    private readonly target: HostPort,
  ) {
    client.setNoDelay(true);
    client.pause();
    client.on('data', (chunk: Buffer) => this.receive('up', chunk));
    client.on('end', () => this.receive('up', null));
    client.on('error', () => this.sideClosed('up'));
    client.on('close', () => this.sideClosed('up'));
  }

  /** Applies a (new) mode: connects upstream once the link is not black-holed, pauses or resumes. */
  apply(mode: LinkMode): void {
    if (this.done) return;
    this.mode = mode;
    if (mode.kind === 'blackhole') {
      this.client.pause();
      this.upstream?.pause();
      clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    if (!this.upstream) {
      // The client gave up while the link was black-holed: nothing to carry to the target.
      if (this.client.destroyed) this.finish();
      else this.connectUpstream();
      return;
    }
    this.client.resume();
    this.upstream.resume();
    this.flush();
    for (const side of [...this.closedSides]) this.propagateClose(side);
  }

  private connectUpstream(): void {
    if (this.connecting) return;
    this.connecting = true;
    const upstream = connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    upstream.setNoDelay(true);
    upstream.pause();
    upstream.on('data', (chunk: Buffer) => this.receive('down', chunk));
    upstream.on('end', () => this.receive('down', null));
    upstream.on('error', () => this.sideClosed('down'));
    upstream.on('close', () => this.sideClosed('down'));
    upstream.once('connect', () => {
      this.upstream = upstream;
      this.apply(this.mode);
    });
  }

  /** A chunk (null: the end) read from one side, to be written to the other as the mode says. */
  private receive(direction: Direction, chunk: Buffer | null): void {
    const delay =
      this.mode.kind === 'delay' && (direction === 'up' || this.mode.oneWay !== true) ? this.mode.ms : 0;
    this.queues[direction].push({ due: Date.now() + delay, chunk });
    this.flush();
  }

  private flush(): void {
    if (this.mode.kind === 'blackhole' || this.done) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    let next = Number.POSITIVE_INFINITY;
    for (const direction of ['up', 'down'] as const) {
      const queue = this.queues[direction];
      const out = direction === 'up' ? this.upstream : this.client;
      const source = direction === 'up' ? this.client : this.upstream;
      while (queue.length > 0 && out) {
        const head = queue[0];
        if (head === undefined) break;
        if (head.due > Date.now()) {
          next = Math.min(next, head.due);
          break;
        }
        queue.shift();
        if (head.chunk === null) {
          out.end();
          continue;
        }
        if (!out.write(head.chunk) && source && !source.isPaused()) {
          // Backpressure: stop reading the source until the other side drained.
          source.pause();
          out.once('drain', () => {
            if (this.mode.kind !== 'blackhole' && !this.done) source.resume();
          });
        }
      }
    }
    if (next !== Number.POSITIVE_INFINITY) {
      this.timer = setTimeout(() => this.flush(), Math.max(0, next - Date.now()));
    }
  }

  /**
   * One side closed or failed. Black-holed: the other side hears of it only at the heal (a real
   * partition carries no FIN either). Otherwise: after what is still queued, the other side is
   * ended with a FIN (never a reset) and the pipe forgotten once both are gone.
   */
  private sideClosed(direction: Direction): void {
    if (this.done) return;
    if (direction === 'down' && !this.upstream) {
      // The target refused or failed the connect (the node behind it is down): hang up politely.
      this.connecting = false;
      this.closedSides.add('down');
      if (this.mode.kind !== 'blackhole') this.propagateClose('down');
      return;
    }
    this.closedSides.add(direction);
    if (this.mode.kind !== 'blackhole') this.propagateClose(direction);
  }

  private propagateClose(direction: Direction): void {
    if (this.done) return;
    this.closedSides.delete(direction);
    const other = direction === 'up' ? this.upstream : this.client;
    const queue = this.queues[direction];
    if (queue.length > 0) {
      // Wait until the delayed bytes are out, then end.
      queue.push({ due: Math.max(...queue.map((q) => q.due)), chunk: null });
      this.flush();
    } else if (other && !other.destroyed) {
      // Drain whatever it still sends (an unread receive buffer would make close() send a RST).
      other.on('data', () => undefined);
      other.resume();
      other.end();
    }
    if (this.client.destroyed && (this.upstream?.destroyed ?? !this.connecting)) this.finish();
    else this.lingerThenFinish();
  }

  private lingerTimer: NodeJS.Timeout | undefined;
  /** Both sides are ended; drop the sockets once their FINs had time to cross (no RST). */
  private lingerThenFinish(): void {
    if (this.lingerTimer) return;
    this.lingerTimer = setTimeout(() => this.finish(), 5_000);
    this.lingerTimer.unref();
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    clearTimeout(this.lingerTimer);
    this.client.destroy();
    this.upstream?.destroy();
    this.net.forget(this);
  }
}

/** One listening address forwarding to one target through the net's link modes. */
export class Proxy {
  private constructor(
    private readonly server: Server,
    readonly options: ProxyOptions,
    readonly address: HostPort,
  ) {}

  static async listen(net: PartitionNet, options: ProxyOptions): Promise<Proxy> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      socket.on('error', () => undefined);
      let from: string;
      try {
        from = typeof options.from === 'string' ? options.from : (options.from(socket) ?? UNKNOWN_INITIATOR);
      } catch {
        from = UNKNOWN_INITIATOR;
      }
      net.adopt(new Pipe(net, from, options.to, socket, options.target));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listen.port, options.listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => undefined);
    const bound = server.address() as AddressInfo;
    return new Proxy(server, options, { host: options.listen.host, port: bound.port });
  }

  /** `host:port` of the listener. */
  get endpoint(): string {
    return `${this.address.host}:${this.address.port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The link modes and every live connection of a set of proxies. */
export class PartitionNet {
  private readonly modes = new Map<string, LinkMode>();
  private readonly pipes = new Set<Pipe>();
  private readonly proxies: Proxy[] = [];

  /** A proxy on listen forwarding to target, registered with this net. */
  async proxy(options: ProxyOptions): Promise<Proxy> {
    const proxy = await Proxy.listen(this, options);
    this.proxies.push(proxy);
    return proxy;
  }

  /** The mode of connections that from opens to to (both directions of their bytes). */
  mode(from: string, to: string): LinkMode {
    return this.modes.get(linkKey(from, to)) ?? OPEN;
  }

  /** Sets the mode of connections from opens to to, the open ones included. */
  set(from: string, to: string, mode: LinkMode): void {
    if (mode.kind === 'open') this.modes.delete(linkKey(from, to));
    else this.modes.set(linkKey(from, to), mode);
    for (const pipe of this.pipes) if (pipe.from === from && pipe.to === to) pipe.apply(mode);
  }

  /** Both ways between a and each of others: connections a opens to them and they open to a. */
  cut(a: string, others: readonly string[], mode: LinkMode = BLACKHOLE): void {
    for (const b of others) {
      this.set(a, b, mode);
      this.set(b, a, mode);
    }
  }

  /** Every link open again; what was held flows. */
  healAll(): void {
    for (const key of [...this.modes.keys()]) {
      const [from, to] = key.split('\u0000') as [string, string];
      this.set(from, to, OPEN);
    }
  }

  /** Live connections from → to (for tests of the proxy). */
  connections(from?: string, to?: string): number {
    return [...this.pipes].filter(
      (p) => (from === undefined || p.from === from) && (to === undefined || p.to === to),
    ).length;
  }

  adopt(pipe: Pipe): void {
    this.pipes.add(pipe);
    pipe.apply(this.mode(pipe.from, pipe.to));
  }

  forget(pipe: Pipe): void {
    this.pipes.delete(pipe);
  }

  async close(): Promise<void> {
    for (const pipe of [...this.pipes]) pipe.finish();
    await Promise.all(this.proxies.map((p) => p.close()));
  }
}

const linkKey = (from: string, to: string) => `${from}\u0000${to}`;

/** An IPv4 address and port as /proc/net/tcp writes them: `0100007F:1F90` for 127.0.0.1:8080. */
export function procTcpAddress(host: string, port: number): string {
  const octets = host.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) {
    throw new Error(`not an IPv4 address: ${host}`);
  }
  const hex = (n: number, width: number) => n.toString(16).toUpperCase().padStart(width, '0');
  return `${[...octets]
    .reverse()
    .map((o) => hex(o, 2))
    .join('')}:${hex(port, 4)}`;
}

/**
 * The socket inode of the TCP connection whose local end is local and remote end is remote, from
 * /proc/net/tcp (the text passed in, for tests), or undefined.
 */
export function findSocketInode(procNetTcp: string, local: HostPort, remote: HostPort): number | undefined {
  const l = procTcpAddress(local.host, local.port);
  const r = procTcpAddress(remote.host, remote.port);
  for (const line of procNetTcp.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === l && fields[2] === r) {
      const inode = Number(fields[9]);
      if (Number.isInteger(inode) && inode > 0) return inode;
    }
  }
  return undefined;
}

/**
 * Which of the candidate processes holds the other end of an accepted connection: the socket
 * whose local end is the client's address (the proxy's remote end), found by inode among the
 * candidates' open files. Works for processes of the test's own user (and for any as root).
 */
export function identifyPeer(
  socket: Socket,
  candidates: () => ReadonlyArray<{ readonly name: string; readonly pid: number | undefined }>,
): string | undefined {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (!remoteAddress || !remotePort || !localAddress || !localPort) return undefined;
  const host = (a: string) => a.replace(/^::ffff:/, '');
  let inode: number | undefined;
  try {
    inode = findSocketInode(
      readFileSync('/proc/net/tcp', 'utf8'),
      { host: host(remoteAddress), port: remotePort },
      { host: host(localAddress), port: localPort },
    );
  } catch {
    return undefined;
  }
  if (inode === undefined) return undefined;
  const wanted = `socket:[${inode}]`;
  for (const { name, pid } of candidates()) {
    if (pid === undefined) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === wanted) return name;
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

/**
 * Why partitions between nodes cannot be made here, or undefined: the initiator of a connection is
 * found through /proc/net/tcp, and every node gets an address of its own in 127/8 (Linux loopback).
 */
export function partitionSkipReason(): string | undefined {
  if (process.platform !== 'linux' || !existsSync('/proc/net/tcp')) {
    return 'not Linux with /proc/net/tcp: the partition proxy cannot tell which node opened a connection';
  }
  return undefined;
}
