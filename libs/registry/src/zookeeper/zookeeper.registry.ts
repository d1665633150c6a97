import { randomUUID } from 'node:crypto';
import {
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type TimerHandle,
  unrefTimer,
} from '@porpoise/common';
import { DEFAULT_MAX_VALUE_BYTES, type RegistryConfig } from '../registry.config';
import {
  InvalidArgumentError,
  InvalidPathError,
  LockTimeoutError,
  RegistryClosedError,
  RegistryError,
  RegistryUnavailableError,
} from '../registry.errors';
import type {
  ConnectionListener,
  ConnectionState,
  LockOptions,
  PutOptions,
  Registry,
  RegistryListener,
  RegistryLock,
  Subscription,
} from '../registry.interface';
import { ListenerSet } from '../registry-listeners';
import { joinPath, parentOf, validateLockTimeout, validatePath, validateValue } from '../registry-path';
import {
  CreateMode,
  isZkError,
  ZK,
  ZkClient,
  type SessionCredentials,
  type WatchType,
} from './zookeeper.client';
import { decodeValue, encodeValue, isMarker, MARKER } from './zookeeper.codec';
import { connectPorts, inheritableSockets } from './zookeeper.fd-check';
import { byLockSequence, isLockNode, lockNodePrefix, lockNodeToken, ZkHeldLock } from './zookeeper.lock';
import { ZkTreeCache } from './zookeeper.tree';

export type ZooKeeperRegistryConfig = Extract<RegistryConfig, { type: 'zookeeper' }>;

type Phase = 'idle' | 'starting' | 'connected' | 'suspended' | 'recovering' | 'closed';

/** Shortest bound on a call or a connect attempt, so that tiny test session timeouts stay usable. */
const MIN_OPERATION_TIMEOUT_MS = 5_000;
/** Attempts of a create/set/delete sequence that keeps racing with other writers. */
const MAX_RACE_ATTEMPTS = 10;
/** How often failed watch re-reads and leftover lock nodes are retried while connected. */
const MAINTENANCE_INTERVAL_MS = 1_000;
/** Longest pause between new sessions when each one is lost right after it was made. */
const MAX_RETRY_DELAY_MS = 10_000;

/** A lock node to delete once the link is back, if its session still lives. */
interface Cleanup {
  readonly client: ZkClient;
  readonly parent: string;
  readonly token: string;
}

/**
 * The ZooKeeper backend: ephemeral znodes, a watched mirror of subscribed subtrees and the
 * ephemeral-sequential lock recipe, with Curator-like connection states.
 *
 * One session at a time. When it is lost (expired, or disconnected longer than the session
 * timeout: a restarted server may restore the session and never say it expired) the handle
 * is dropped, a new session is opened (retrying until the server answers), the old session is
 * closed on the server if it still exists there, subscriptions are re-read and their
 * differences delivered, and CONNECTED follows.
 *
 * heartbeatIntervalMs does not apply: the C client pings on its own at a third of the
 * negotiated session timeout.
 */
export class ZooKeeperRegistry implements Registry {
  readonly type = 'zookeeper' as const;

  private readonly sessionTimeoutMs: number;
  private readonly maxValueBytes: number;
  private readonly opTimeoutMs: number;
  private readonly listeners: ListenerSet;
  private readonly tree: ZkTreeCache;

  private phase: Phase = 'idle';
  private client: ZkClient | undefined;
  private linkUp = false;
  private startPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private recovering = false;
  /** When the current session was established, and the pause before the next attempt. */
  private establishedAt = 0;
  private retryDelayMs = 0;
  private lostTimer: TimerHandle | undefined;
  private maintenanceTimer: TimerHandle | undefined;
  /** Woken on any change of phase, link or session. */
  private readonly changeWaiters = new Set<() => void>();
  /** Woken when a watch on the path fires (lock waiters watching their predecessor). */
  private readonly watchWaiters = new Map<string, Set<() => void>>();
  private readonly heldLocks = new Set<ZkHeldLock>();
  private cleanups: Cleanup[] = [];
  /** Sessions declared lost on our side that the server may still keep alive. */
  private readonly toReap: SessionCredentials[] = [];

  constructor(
    private readonly config: ZooKeeperRegistryConfig,
    private readonly logger: Logger = silentLogger,
    /** Local timers and deadlines; the C client's own pings and timeouts are its business. */
    private readonly clock: Clock = systemClock,
  ) {
    const { sessionTimeoutMs, maxValueBytes } = config;
    if (typeof config.connect !== 'string' || config.connect.trim() === '') {
      throw new InvalidArgumentError('zookeeper connect string must be a non-empty host:port list');
    }
    if (typeof sessionTimeoutMs !== 'number' || !Number.isFinite(sessionTimeoutMs) || sessionTimeoutMs <= 0) {
      throw new InvalidArgumentError(
        `sessionTimeoutMs must be a positive number, got ${String(sessionTimeoutMs)}`,
      );
    }
    if (maxValueBytes !== undefined && (!Number.isInteger(maxValueBytes) || maxValueBytes < 0)) {
      throw new InvalidArgumentError(
        `maxValueBytes must be a non-negative integer, got ${String(maxValueBytes)}`,
      );
    }
    this.sessionTimeoutMs = sessionTimeoutMs;
    this.maxValueBytes = maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    // The server drops the connection on a request above its jute.maxbuffer (1 MiB by default).
    if (this.maxValueBytes > DEFAULT_MAX_VALUE_BYTES) {
      this.logger.warn(
        `maxValueBytes ${this.maxValueBytes} exceeds ZooKeeper's default request limit; raise jute.maxbuffer on the servers`,
      );
    }
    // A call waits for a lost link at most about as long as the session would survive it.
    this.opTimeoutMs = Math.max(sessionTimeoutMs, MIN_OPERATION_TIMEOUT_MS);
    this.listeners = new ListenerSet((err) =>
      this.logger.error(
        `registry listener threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      ),
    );
    this.tree = new ZkTreeCache({
      session: () => this.client,
      emit: (event) => this.listeners.emit(event),
    });
  }

  // ---------------------------------------------------------------- lifecycle

  start(): Promise<void> {
    if (this.phase === 'closed') return Promise.reject(new RegistryClosedError('start'));
    this.startPromise ??= this.doStart();
    // A failed start may be tried again.
    this.startPromise.catch(() => (this.startPromise = undefined));
    return this.startPromise;
  }

  private async doStart(): Promise<void> {
    this.phase = 'starting';
    const deadline = this.clock.now() + this.opTimeoutMs;
    try {
      while (!this.linkUp) {
        if (this.isClosed()) throw new RegistryClosedError('start');
        if (!this.client) this.openClient();
        if (this.clock.now() >= deadline) {
          throw new RegistryUnavailableError(
            `could not connect to ZooKeeper at ${this.config.connect} within ${this.opTimeoutMs} ms`,
          );
        }
        await this.waitForChange(deadline - this.clock.now());
      }
    } catch (err) {
      if (!this.isClosed()) {
        this.phase = 'idle';
        this.dropClient();
      }
      throw err;
    }
    this.phase = 'connected';
    this.establishedAt = this.clock.now();
    this.maintenanceTimer = this.clock.setInterval(() => this.maintain(), MAINTENANCE_INTERVAL_MS);
    unrefTimer(this.maintenanceTimer);
    this.logger.log(`zookeeper session ${this.client?.sessionId} established`);
    this.warnIfSocketsLeak();
    this.emitState('CONNECTED');
  }

  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.phase = 'closed';
    this.clearLostTimer();
    this.clock.clearInterval(this.maintenanceTimer);
    for (const lock of this.heldLocks) lock.markLost(new RegistryClosedError('close'));
    this.heldLocks.clear();
    this.cleanups = [];
    this.tree.clear();
    const client = this.client;
    this.client = undefined;
    this.linkUp = false;
    this.notifyChange();
    this.wakeAllWatchWaiters();
    this.listeners.clear();
    // Closing a connected session makes the server delete its ephemeral nodes right away.
    await client?.close();
  }

  onConnectionStateChange(listener: ConnectionListener): () => void {
    if (typeof listener !== 'function') {
      throw new InvalidArgumentError('connection listener must be a function');
    }
    return this.listeners.addConnectionListener(listener);
  }

  // ---------------------------------------------------------------- key/value

  async put(key: string, value: string, options?: PutOptions): Promise<void> {
    validatePath(key);
    validateValue(key, value, this.maxValueBytes);
    if (key === '/') throw new InvalidPathError(key, 'the root cannot hold a value');
    const data = encodeValue(value);
    const ephemeral = options?.ephemeral === true;
    await this.run('put', (c) =>
      ephemeral ? this.putEphemeral(c, key, data) : this.putPersistent(c, key, data),
    );
  }

  async get(key: string): Promise<string | null> {
    validatePath(key);
    return this.readValue('get', key);
  }

  async exists(key: string): Promise<boolean> {
    validatePath(key);
    return (await this.readValue('exists', key)) !== null;
  }

  async delete(key: string): Promise<void> {
    validatePath(key);
    await this.run('delete', async (c) => {
      if (key === '/') {
        const names = (await c.children('/')) ?? [];
        await Promise.all(
          names.filter((n) => n !== 'zookeeper').map((n) => this.deleteTree(c, joinPath('/', n))),
        );
        return;
      }
      await this.deleteTree(c, key);
      await this.pruneParents(c, parentOf(key));
    });
  }

  async children(key: string): Promise<string[]> {
    validatePath(key);
    return this.run('children', async (c) => {
      const names = (await c.children(key)) ?? [];
      const candidates = key === '/' ? names.filter((n) => n !== 'zookeeper') : names;
      // Parents left empty after their keys went, and lock nodes, are not keys: hide them.
      const visible = await Promise.all(
        candidates.map(async (name) => {
          const path = joinPath(key, name);
          const stat = await c.exists(path);
          if (!stat) return false;
          if (stat.numChildren > 0 || stat.dataLength !== MARKER.length) return true;
          const node = await c.get(path);
          return node !== null && (node.stat.numChildren > 0 || !isMarker(node.data));
        }),
      );
      return candidates.filter((_, i) => visible[i]).sort();
    });
  }

  private async readValue(op: string, key: string): Promise<string | null> {
    return this.run(op, async (c) => {
      if (key === '/') return null;
      const node = await c.get(key);
      return node ? decodeValue(node.data) : null;
    });
  }

  private async putPersistent(c: ZkClient, key: string, data: Buffer): Promise<void> {
    for (let attempt = 0; attempt < MAX_RACE_ATTEMPTS; attempt++) {
      try {
        const stat = await c.set(key, data, -1);
        if (stat.ephemeralOwner === '0') return;
        // It was ephemeral: a persistent put must outlive the session, so recreate it.
        await c.delete(key, stat.version);
      } catch (err) {
        if (isZkError(err, ZK.BADVERSION)) continue;
        if (!isZkError(err, ZK.NONODE)) throw err;
      }
      if (await this.createNode(c, key, data, CreateMode.PERSISTENT)) return;
    }
    throw new RegistryUnavailableError(`put ${key}: gave up racing with concurrent writers`);
  }

  /**
   * An ephemeral put must leave a node owned by this session. One left by an earlier session
   * (ours before a LOST, or anyone's) or a persistent one is deleted and created again.
   */
  private async putEphemeral(c: ZkClient, key: string, data: Buffer): Promise<void> {
    for (let attempt = 0; attempt < MAX_RACE_ATTEMPTS; attempt++) {
      const stat = await c.exists(key);
      if (stat) {
        try {
          if (stat.ephemeralOwner === c.sessionId) {
            await c.set(key, data, stat.version);
            return;
          }
          await c.delete(key, stat.version);
        } catch (err) {
          if (isZkError(err, ZK.NOTEMPTY)) {
            throw new InvalidArgumentError(`${key} has keys under it and cannot become ephemeral`);
          }
          if (
            isZkError(err, ZK.BADVERSION) ||
            (isZkError(err, ZK.NONODE) && stat.ephemeralOwner === c.sessionId)
          ) {
            continue;
          }
          if (!isZkError(err, ZK.NONODE)) throw err;
        }
      }
      if (await this.createNode(c, key, data, CreateMode.EPHEMERAL)) return;
    }
    throw new RegistryUnavailableError(`put ${key}: gave up racing with concurrent writers`);
  }

  /** Creates path (and missing parents); false when it appeared meanwhile and the caller should retry. */
  private async createNode(c: ZkClient, path: string, data: Buffer, mode: number): Promise<boolean> {
    try {
      await c.create(path, data, mode);
      return true;
    } catch (err) {
      if (isZkError(err, ZK.NODEEXISTS)) return false;
      if (!isZkError(err, ZK.NONODE)) throw err;
    }
    await this.ensureParents(c, parentOf(path));
    return false;
  }

  private async ensureParents(c: ZkClient, path: string): Promise<void> {
    if (path === '/') return;
    for (let attempt = 0; attempt < MAX_RACE_ATTEMPTS; attempt++) {
      try {
        await c.create(path, MARKER, CreateMode.PERSISTENT);
        return;
      } catch (err) {
        if (isZkError(err, ZK.NODEEXISTS)) return;
        if (!isZkError(err, ZK.NONODE)) throw err;
      }
      await this.ensureParents(c, parentOf(path));
    }
  }

  private async deleteTree(c: ZkClient, path: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_RACE_ATTEMPTS; attempt++) {
      const names = await c.children(path);
      if (names === null) return;
      await Promise.all(names.map((n) => this.deleteTree(c, joinPath(path, n))));
      try {
        await c.delete(path, -1);
        return;
      } catch (err) {
        if (isZkError(err, ZK.NONODE)) return;
        // Something was created under it meanwhile: delete that too.
        if (!isZkError(err, ZK.NOTEMPTY)) throw err;
      }
    }
    throw new RegistryUnavailableError(`delete ${path}: keys keep appearing under it`);
  }

  /** Removes parents that put() created and that now hold nothing, so they leave no trace. */
  private async pruneParents(c: ZkClient, path: string): Promise<void> {
    while (path !== '/') {
      const node = await c.get(path);
      if (node) {
        if (!isMarker(node.data) || node.stat.numChildren > 0) return;
        try {
          // The version check keeps a parent that someone turned into a key meanwhile.
          await c.delete(path, node.stat.version);
        } catch {
          return; // In use again (or changed): leave it.
        }
      }
      path = parentOf(path);
    }
  }

  // ---------------------------------------------------------------- subscriptions

  async subscribe(prefix: string, listener: RegistryListener): Promise<Subscription> {
    validatePath(prefix);
    if (typeof listener !== 'function') {
      throw new InvalidArgumentError('subscription listener must be a function');
    }
    const deadline = this.clock.now() + this.opTimeoutMs;
    // Not while a new session is being re-synced: that re-read would replay the new root's keys.
    await this.linkedClient('subscribe', deadline, undefined, true);
    this.tree.addRoot(prefix);
    try {
      // The first scan is silent: nobody listens to prefix yet. Reads that failed are redone.
      while (!(await this.within(this.tree.settle(prefix), deadline, 'subscribe'))) {
        await this.linkedClient('subscribe', deadline, undefined, true);
        await this.within(this.tree.retryDirty(), deadline, 'subscribe');
      }
    } catch (err) {
      this.tree.removeRoot(prefix);
      throw err;
    }
    const subscription = this.listeners.addSubscription(prefix, listener);
    let active = true;
    return {
      unsubscribe: () => {
        if (!active) return;
        active = false;
        subscription.unsubscribe();
        if (!this.isClosed()) this.tree.removeRoot(prefix);
      },
    };
  }

  // ---------------------------------------------------------------- locks

  async acquireLock(path: string, options?: LockOptions): Promise<RegistryLock> {
    validatePath(path);
    const timeoutMs = validateLockTimeout(options?.timeoutMs);
    if (path === '/') throw new InvalidPathError(path, 'a lock needs a path of its own');
    const lockDeadline = timeoutMs === undefined ? Infinity : this.clock.now() + timeoutMs;
    const token = randomUUID().replace(/-/g, '');

    // Our ephemeral-sequential node. After a lost reply it may exist already: look for the
    // token before creating another (Curator's "protected" mode).
    let attempts = 0;
    let owner: ZkClient | undefined;
    let created: { readonly node: string; readonly client: ZkClient };
    try {
      created = await this.run('acquireLock', async (c) => {
        owner = c;
        if (attempts++ > 0) {
          const found = await this.findLockNode(c, path, token);
          if (found) return { node: found, client: c };
        }
        return { node: await this.createLockNode(c, path, token), client: c };
      });
    } catch (err) {
      // The node may exist without our knowing its name: remove it once the link is back.
      if (owner && !this.isClosed()) this.cleanups.push({ client: owner, parent: path, token });
      throw err;
    }
    const { node, client } = created;
    const name = node.slice(node.lastIndexOf('/') + 1);

    try {
      for (;;) {
        const names = (await this.run('acquireLock', (c) => c.children(path), client)) ?? [];
        const queue = names.filter(isLockNode).sort(byLockSequence);
        const index = queue.indexOf(name);
        if (index < 0) throw new RegistryUnavailableError(`lock node ${node} vanished while waiting`);
        const ahead = queue[index - 1];
        if (ahead === undefined) break; // First in line: the lock is ours.
        if (timeoutMs !== undefined && this.clock.now() >= lockDeadline) {
          throw new LockTimeoutError(path, timeoutMs);
        }
        // Watch only the node just ahead of us: no herd when the holder lets go.
        const predecessor = joinPath(path, ahead);
        const woken = this.watchWaiter(predecessor);
        try {
          const stat = await this.run('acquireLock', (c) => c.exists(predecessor, true), client);
          if (stat) await woken.wait(lockDeadline);
        } finally {
          woken.cancel();
        }
      }
    } catch (err) {
      await this.deleteLockNode(client, path, node, token);
      throw err;
    }

    if (client !== this.client) {
      throw new RegistryUnavailableError('acquireLock: the ZooKeeper session was lost');
    }
    const lock = new ZkHeldLock(path, node, client, (l) => this.releaseLock(l));
    this.heldLocks.add(lock);
    this.watchHeldLock(lock);
    return lock;
  }

  private async createLockNode(c: ZkClient, path: string, token: string): Promise<string> {
    const prefix = joinPath(path, lockNodePrefix(token));
    for (let attempt = 0; attempt < MAX_RACE_ATTEMPTS; attempt++) {
      try {
        return await c.create(prefix, MARKER, CreateMode.EPHEMERAL_SEQUENTIAL);
      } catch (err) {
        if (isZkError(err, ZK.NOCHILDRENFOREPHEMERALS)) {
          throw new InvalidArgumentError(`lock path ${path} is an ephemeral key`);
        }
        if (!isZkError(err, ZK.NONODE)) throw err;
      }
      await this.ensureParents(c, path);
    }
    throw new RegistryUnavailableError(`lock ${path}: could not create its parent`);
  }

  private async findLockNode(c: ZkClient, path: string, token: string): Promise<string | undefined> {
    for (const name of (await c.children(path)) ?? []) {
      if (lockNodeToken(name) !== token) continue;
      const stat = await c.exists(joinPath(path, name));
      if (stat && stat.ephemeralOwner === c.sessionId) return joinPath(path, name);
    }
    return undefined;
  }

  /** Deletes a lock node of a failed or timed-out attempt, or leaves that to the session's end. */
  private async deleteLockNode(client: ZkClient, parent: string, node: string, token: string): Promise<void> {
    if (client !== this.client || this.isClosed()) return; // The session and its node are gone.
    try {
      await this.run('acquireLock', (c) => c.delete(node, -1), client);
    } catch (err) {
      if (isZkError(err, ZK.NONODE)) return;
      if (client === this.client && !this.isClosed()) this.cleanups.push({ client, parent, token });
    }
  }

  private async releaseLock(lock: ZkHeldLock): Promise<void> {
    const wasLost = lock.lost.aborted;
    lock.released = true;
    this.heldLocks.delete(lock);
    if (wasLost || lock.client !== this.client || this.isClosed()) return;
    try {
      await this.run('release', (c) => c.delete(lock.node, -1), lock.client);
    } catch (err) {
      if (isZkError(err, ZK.NONODE) || lock.client !== this.client || this.isClosed()) return;
      // Not reachable now: the node goes when the link is back, or with the session.
      const token = lockNodeToken(lock.node.slice(lock.node.lastIndexOf('/') + 1));
      if (token) this.cleanups.push({ client: lock.client, parent: lock.path, token });
      this.logger.warn(`lock ${lock.path}: release deferred (${errorText(err)})`);
    }
  }

  /** A held lock's node deleted by someone else is a lost lock, too. */
  private watchHeldLock(lock: ZkHeldLock): void {
    lock.client.existsCb(lock.node, true, (err, stat) => {
      if (!err && !stat && this.heldLocks.delete(lock)) {
        lock.markLost(new RegistryError(`lock node ${lock.node} was deleted`));
      }
    });
  }

  private watchWaiter(path: string): { wait(deadline: number): Promise<void>; cancel(): void } {
    let wake: () => void = () => undefined;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    let set = this.watchWaiters.get(path);
    if (!set) this.watchWaiters.set(path, (set = new Set()));
    set.add(wake);
    return {
      wait: async (deadline) => {
        let timer: TimerHandle | undefined;
        const expired = new Promise<void>((resolve) => {
          if (Number.isFinite(deadline)) {
            timer = this.clock.setTimeout(resolve, Math.max(0, deadline - this.clock.now()));
          }
        });
        // Session loss and close wake every waiter too (wakeAllWatchWaiters).
        await Promise.race([woken, expired]);
        this.clock.clearTimeout(timer);
      },
      cancel: () => {
        const current = this.watchWaiters.get(path);
        current?.delete(wake);
        if (current?.size === 0) this.watchWaiters.delete(path);
      },
    };
  }

  private wakeAllWatchWaiters(): void {
    for (const set of this.watchWaiters.values()) for (const wake of set) wake();
  }

  // ---------------------------------------------------------------- calls

  /**
   * Runs fn on a connected session, retrying after connection loss until the call's deadline
   * (about the session timeout). Pinned to `session`, it fails once that session is lost.
   */
  private async run<T>(op: string, fn: (c: ZkClient) => Promise<T>, session?: ZkClient): Promise<T> {
    const deadline = this.clock.now() + this.opTimeoutMs;
    for (;;) {
      const client = await this.linkedClient(op, deadline, session);
      try {
        return await this.within(fn(client), deadline, op);
      } catch (err) {
        if (this.isClosed()) throw new RegistryClosedError(op);
        if (!isZkError(err) || !err.transient || this.clock.now() >= deadline) throw this.translate(err, op);
        // Transient: wait for the link (or a new session) and try again; a short pause if it looks up.
        if (client === this.client && this.linkUp) {
          await this.waitForChange(Math.min(100, deadline - this.clock.now()));
        }
      }
    }
  }

  /** The current client once its link is up (and, if announced, past any re-sync); waits until deadline. */
  private async linkedClient(
    op: string,
    deadline: number,
    session: ZkClient | undefined,
    announced = false,
  ): Promise<ZkClient> {
    for (;;) {
      if (this.isClosed()) throw new RegistryClosedError(op);
      if (this.phase === 'idle') throw new RegistryClosedError(op);
      if (session && session !== this.client) {
        throw new RegistryUnavailableError(`${op}: the ZooKeeper session was lost`);
      }
      if (this.client && this.linkUp && !(announced && this.phase === 'recovering')) return this.client;
      const left = deadline - this.clock.now();
      if (left <= 0) {
        throw new RegistryUnavailableError(`${op}: not connected to ZooKeeper at ${this.config.connect}`);
      }
      await this.waitForChange(left);
    }
  }

  private within<T>(promise: Promise<T>, deadline: number, op: string): Promise<T> {
    let timer: TimerHandle | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(
        () =>
          reject(
            new RegistryUnavailableError(`${op}: no answer from ZooKeeper within ${this.opTimeoutMs} ms`),
          ),
        Math.max(0, deadline - this.clock.now()),
      );
    });
    return Promise.race([promise, expired]).finally(() => this.clock.clearTimeout(timer));
  }

  private translate(err: unknown, op: string): Error {
    if (err instanceof RegistryError) return err;
    if (isZkError(err)) {
      if (err.transient) return new RegistryUnavailableError(`${op} failed: ${err.message}`, { cause: err });
      if (err.code === ZK.NOAUTH) {
        return new RegistryError(
          `${op}: ZooKeeper refused it (NOAUTH at ${err.path}): ZOOKEEPER_AUTH is missing or not the cluster's`,
          { cause: err },
        );
      }
      if (err.code === ZK.NOCHILDRENFOREPHEMERALS) {
        return new InvalidArgumentError(`${op}: an ephemeral key cannot have keys under it (${err.path})`);
      }
      return new RegistryError(`${op} failed: ${err.message}`, { cause: err });
    }
    return new RegistryError(`${op} failed: ${errorText(err)}`, { cause: err });
  }

  private waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const done = () => {
        this.clock.clearTimeout(timer);
        this.changeWaiters.delete(done);
        resolve();
      };
      if (Number.isFinite(ms)) timer = this.clock.setTimeout(done, Math.max(0, ms));
      this.changeWaiters.add(done);
    });
  }

  /** Waits ms unless the registry is closed meanwhile. */
  private async pause(ms: number): Promise<void> {
    const until = this.clock.now() + ms;
    while (!this.isClosed() && this.clock.now() < until) await this.waitForChange(until - this.clock.now());
  }

  private notifyChange(): void {
    for (const done of [...this.changeWaiters]) done();
  }

  private isClosed(): boolean {
    return this.phase === 'closed';
  }

  // ---------------------------------------------------------------- session

  private openClient(): ZkClient {
    let client: ZkClient;
    try {
      client = new ZkClient(
        this.config.connect,
        this.sessionTimeoutMs,
        this.onInternalError,
        undefined,
        this.config.auth,
      );
    } catch (err) {
      throw new RegistryUnavailableError(`cannot create a ZooKeeper client: ${errorText(err)}`, {
        cause: err,
      });
    }
    this.client = client;
    this.linkUp = false;
    client.on('connected', () => client === this.client && this.onLinkUp());
    client.on('disconnected', () => client === this.client && this.onLinkDown());
    client.on('closed', (code) => client === this.client && this.onSessionLost(closeReason(code)));
    client.on('watch', (type: WatchType, path: string) => {
      if (client !== this.client) return;
      this.tree.onWatch(client, type, path);
      this.onLockWatch(client, type, path);
    });
    return client;
  }

  private dropClient(): void {
    const client = this.client;
    this.client = undefined;
    this.linkUp = false;
    void client?.close();
  }

  private onLinkUp(): void {
    this.linkUp = true;
    this.clearLostTimer();
    if (this.phase === 'suspended') {
      this.phase = 'connected';
      this.logger.log(`zookeeper session ${this.client?.sessionId} reconnected`);
      this.emitState('RECONNECTED');
      for (const lock of this.heldLocks) this.watchHeldLock(lock);
      this.maintain();
    }
    this.notifyChange();
  }

  private onLinkDown(): void {
    this.linkUp = false;
    if (this.phase === 'connected' || this.phase === 'suspended' || this.phase === 'recovering') {
      // Like Curator: a link down for longer than the session timeout means the session is
      // gone, whether or not the server ever says so.
      // The server may have granted less than we asked for (it clamps to its own bounds).
      const negotiated = this.client?.negotiatedTimeoutMs ?? -1;
      const timeoutMs = negotiated > 0 ? Math.min(negotiated, this.sessionTimeoutMs) : this.sessionTimeoutMs;
      this.lostTimer ??= this.clock.setTimeout(() => {
        this.lostTimer = undefined;
        this.onSessionLost(`disconnected for longer than the session timeout (${timeoutMs} ms)`);
      }, timeoutMs);
    }
    if (this.phase === 'connected') {
      this.phase = 'suspended';
      this.logger.warn(`zookeeper connection lost; session ${this.client?.sessionId} may survive`);
      this.emitState('SUSPENDED');
    }
    this.notifyChange();
  }

  private onSessionLost(reason: string): void {
    if (this.phase === 'starting') {
      // Never connected: just open another handle (doStart does).
      this.dropClient();
      this.notifyChange();
      return;
    }
    if (this.phase !== 'connected' && this.phase !== 'suspended' && this.phase !== 'recovering') return;
    const old = this.client;
    const announce = this.phase !== 'recovering';
    // A session that dies soon after it was made must not turn into a reconnect storm.
    this.retryDelayMs =
      this.clock.now() - this.establishedAt < this.sessionTimeoutMs
        ? Math.min(Math.max(this.retryDelayMs * 2, 250), MAX_RETRY_DELAY_MS)
        : 0;
    this.phase = 'recovering';
    this.clearLostTimer();
    if (old?.session) this.toReap.push(old.session);
    this.dropClient();
    this.cleanups = [];
    for (const lock of this.heldLocks) {
      lock.markLost(new RegistryUnavailableError(`ZooKeeper session lost: ${reason}`));
    }
    this.heldLocks.clear();
    this.notifyChange();
    this.wakeAllWatchWaiters();
    if (announce) {
      this.logger.warn(`zookeeper session ${old?.sessionId} lost: ${reason}`);
      this.emitState('LOST');
    }
    void this.recover();
  }

  /** Opens a new session, retrying until the server answers, then re-syncs and says CONNECTED. */
  private async recover(): Promise<void> {
    if (this.recovering) return;
    this.recovering = true;
    let synced: ZkClient | undefined;
    let failed = false;
    try {
      while (this.phase === 'recovering') {
        if (!this.client) {
          if (this.retryDelayMs > 0) await this.pause(this.retryDelayMs);
          if (this.phase !== 'recovering') break;
          try {
            this.openClient();
          } catch (err) {
            this.logger.warn(errorText(err));
            await this.waitForChange(MAINTENANCE_INTERVAL_MS);
            continue;
          }
        }
        // The C client keeps trying to connect on its own; wait for it (or for a change).
        if (!this.linkUp) {
          await this.waitForChange(MAINTENANCE_INTERVAL_MS);
          continue;
        }
        const client = this.client;
        if (!client) continue;
        await this.reapOldSessions();
        if (client !== this.client || !this.linkUp) continue;
        if (synced !== client) {
          synced = client;
          await this.tree.resync();
        } else if (this.tree.hasDirty()) {
          await this.tree.retryDirty();
        }
        if (client !== this.client || this.phase !== 'recovering' || !this.linkUp) continue;
        if (this.tree.hasDirty()) {
          await this.waitForChange(100);
          continue;
        }
        this.phase = 'connected';
        this.establishedAt = this.clock.now();
        this.logger.log(`zookeeper session ${client.sessionId} established after loss`);
        this.emitState('CONNECTED');
        this.notifyChange();
      }
    } catch (err) {
      failed = true;
      this.logger.error(`zookeeper recovery failed: ${errorText(err)}`);
    } finally {
      this.recovering = false;
    }
    // A loss while the loop was finishing (or a failure) starts it again.
    if (this.phase === 'recovering') {
      this.clock.setTimeout(() => void this.recover(), failed ? MAINTENANCE_INTERVAL_MS : 0);
    }
  }

  /**
   * Closes sessions we gave up on that the server may still keep (it restores sessions after
   * a restart), so their ephemeral nodes and lock nodes go now rather than a timeout later.
   */
  private async reapOldSessions(): Promise<void> {
    while (!this.isClosed()) {
      const credentials = this.toReap.shift();
      if (!credentials) return;
      await new Promise<void>((resolve) => {
        let zk: ZkClient;
        try {
          zk = new ZkClient(
            this.config.connect,
            this.sessionTimeoutMs,
            this.onInternalError,
            credentials,
            this.config.auth,
          );
        } catch {
          return resolve();
        }
        let finished = false;
        const finish = () => {
          if (finished) return;
          finished = true;
          this.clock.clearTimeout(timer);
          // Connected means the server still had it: closing it now ends it there.
          void zk.close().then(resolve);
        };
        const timer = this.clock.setTimeout(finish, Math.min(this.opTimeoutMs, MIN_OPERATION_TIMEOUT_MS));
        zk.on('connected', finish);
        zk.on('closed', finish);
      });
    }
  }

  /** Once per process: say so if child processes will inherit the client's sockets. */
  private warnIfSocketsLeak(): void {
    if (socketCheckDone) return;
    socketCheckDone = true;
    const leaking = inheritableSockets(connectPorts(this.config.connect));
    if (leaking.length > 0) {
      this.logger.warn(
        `the zookeeper native client's sockets (fd ${leaking.join(', ')}) lack close-on-exec: child processes ` +
          'inherit them, which after a reconnect can make the binding drop healthy sessions. ' +
          'Rebuild the package with CPPFLAGS=-DSOCK_CLOEXEC_ENABLED=1.',
      );
    }
  }

  /** A bug of ours surfacing in a native callback: log it rather than crash the process. */
  private readonly onInternalError = (err: unknown): void =>
    this.logger.error(
      `zookeeper registry internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );

  private clearLostTimer(): void {
    this.clock.clearTimeout(this.lostTimer);
    this.lostTimer = undefined;
  }

  private emitState(state: ConnectionState): void {
    this.listeners.emitConnectionState(state);
  }

  private onLockWatch(client: ZkClient, type: WatchType, path: string): void {
    const waiters = this.watchWaiters.get(path);
    if (waiters) for (const wake of [...waiters]) wake();
    if (type !== 'deleted') return;
    for (const lock of this.heldLocks) {
      if (lock.node === path && lock.client === client && this.heldLocks.delete(lock)) {
        lock.markLost(new RegistryError(`lock node ${path} was deleted`));
      }
    }
  }

  /** Periodic: notice a silent drop; redo failed watch reads and delete leftover lock nodes while up. */
  private maintain(): void {
    this.client?.checkLink();
    const client = this.client;
    if (!client || !this.linkUp || this.phase !== 'connected') return;
    if (this.tree.hasDirty()) void this.tree.retryDirty();
    const pending = this.cleanups;
    this.cleanups = [];
    for (const item of pending) {
      if (item.client !== client) continue; // That session is gone, and its nodes with it.
      void this.findLockNode(client, item.parent, item.token)
        .then((node) => (node ? client.delete(node, -1) : undefined))
        .catch((err: unknown) => {
          if (!isZkError(err, ZK.NONODE) && client === this.client) this.cleanups.push(item);
        });
    }
  }
}

let socketCheckDone = false;

function closeReason(code: number): string {
  if (code === ZK.SESSIONEXPIRED) return 'session expired';
  return `client closed (${code})`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
