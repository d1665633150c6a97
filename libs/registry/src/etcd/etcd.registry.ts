import {
  ClientClosedError,
  Etcd3,
  EtcdLeaseInvalidError,
  SortOrder,
  SortTarget,
  type IDuplexStream,
  type IEvent,
  type ILeaseKeepAliveRequest,
  type ILeaseKeepAliveResponse,
  type IOptions,
} from 'etcd3';
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
  LockTimeoutError,
  RegistryClosedError,
  RegistryError,
  RegistryUnavailableError,
} from '../registry.errors';
import type {
  ConnectionListener,
  LockOptions,
  PutOptions,
  Registry,
  RegistryEventType,
  RegistryListener,
  RegistryLock,
  Subscription,
} from '../registry.interface';
import { ListenerSet } from '../registry-listeners';
import { isUnder, joinPath, validateLockTimeout, validatePath, validateValue } from '../registry-path';
import { descendantsRange, exactKey, subtreeRange } from './etcd-keys';
import { EtcdWatch } from './etcd-watch';

export type EtcdRegistryConfig = Extract<RegistryConfig, { type: 'etcd' }>;

/** How often to retry while the server is away (lease grants, keep-alives, key clean-up). */
const RETRY_MS = 500;
/** Bound on revoking a lost session's lease before a new one is announced (etcd just answered). */
const STALE_REVOKE_DEADLINE_MS = 2000;
/** Upper bound on the lease revoke in close(), so shutdown never waits a whole session timeout. */
const CLOSE_REVOKE_MS = 3_000;

type KeepaliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;
type SessionState = 'idle' | 'connected' | 'suspended' | 'lost';

interface HeldLock {
  readonly key: string;
  readonly leaseId: string;
  readonly controller: AbortController;
}

/**
 * etcd's pooled client wraps every call in a retry policy and a per-host circuit breaker that
 * stays open for 5 s after three failures; that would hide a returning server for longer than
 * a short session lasts. The registry does its own retrying, so calls go straight through.
 */
const passThrough = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
  execute: async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) =>
    fn({ signal: signal ?? new AbortController().signal }),
};

/**
 * Registry on etcd v3 (DESIGN.md section 6): keys are the registry paths, ephemeral keys hang
 * on one lease per session, subscriptions are watches resumed from the last delivered revision,
 * and locks follow etcd's lock recipe (lowest create revision under the lock path wins; each
 * waiter watches only its predecessor).
 */
export class EtcdRegistry implements Registry {
  readonly type = 'etcd' as const;

  private readonly endpoints: string[];
  private readonly sessionTimeoutMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly maxValueBytes: number;
  private readonly ttlSeconds: number;
  private readonly listeners: ListenerSet;

  private client: Etcd3 | undefined;
  private startPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private closed = false;

  private state: SessionState = 'idle';
  private leaseId: string | undefined;
  /** Send time of the last ping etcd answered: the lease was refreshed no earlier than this. */
  private lastKeepaliveOk = 0;
  /** Send times of pings not yet answered on the current keep-alive stream, oldest first. */
  private pingsInFlight: number[] = [];
  private keepaliveStream: KeepaliveStream | undefined;
  private keepaliveOpening = false;
  private keepaliveBreaks = 0;
  private tickTimer: TimerHandle | undefined;
  private regrantTimer: TimerHandle | undefined;
  private granting: Promise<void> | undefined;

  private readonly watches = new Set<EtcdWatch>();
  private readonly heldLocks = new Set<HeldLock>();
  private readonly pendingLocks = new Set<AbortController>();
  /** Lock keys whose delete failed, retried until done or their lease is gone (key -> lease). */
  private readonly orphanKeys = new Map<string, string>();
  /** Leases given up client-side that etcd may still hold; revoked as soon as it answers. */
  private readonly staleLeases = new Set<string>();
  private cleanupTimer: TimerHandle | undefined;
  private cleanupScheduled = false;
  private lockSeq = 0;
  /** Password authentication, when etcd has it enabled. Never logged. */
  private readonly auth: EtcdRegistryConfig['auth'];

  constructor(
    config: EtcdRegistryConfig,
    private readonly logger: Logger = silentLogger,
    /** Local timers and durations; gRPC deadlines stay on Date.now(), which grpc judges them by. */
    private readonly clock: Clock = systemClock,
  ) {
    const { endpoints } = config;
    if (!isList(endpoints) || endpoints.length === 0) {
      throw new InvalidArgumentError('etcd endpoints must be a non-empty array');
    }
    for (const endpoint of endpoints) {
      if (typeof endpoint !== 'string' || endpoint.length === 0) {
        throw new InvalidArgumentError(`etcd endpoint must be a non-empty string, got ${String(endpoint)}`);
      }
    }
    if (!isPositive(config.sessionTimeoutMs)) {
      throw new InvalidArgumentError(`sessionTimeoutMs must be > 0, got ${String(config.sessionTimeoutMs)}`);
    }
    if (config.heartbeatIntervalMs !== undefined && !isPositive(config.heartbeatIntervalMs)) {
      throw new InvalidArgumentError(
        `heartbeatIntervalMs must be > 0, got ${String(config.heartbeatIntervalMs)}`,
      );
    }
    if (config.maxValueBytes !== undefined && !isPositive(config.maxValueBytes)) {
      throw new InvalidArgumentError(`maxValueBytes must be > 0, got ${String(config.maxValueBytes)}`);
    }
    this.endpoints = [...endpoints];
    this.auth = config.auth;
    this.sessionTimeoutMs = config.sessionTimeoutMs;
    this.heartbeatIntervalMs = config.heartbeatIntervalMs ?? config.sessionTimeoutMs / 5;
    this.maxValueBytes = config.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.ttlSeconds = Math.max(1, Math.ceil(config.sessionTimeoutMs / 1000));
    if (this.heartbeatIntervalMs >= this.sessionTimeoutMs) {
      this.logger.warn(
        `etcd registry: heartbeatIntervalMs ${this.heartbeatIntervalMs} >= sessionTimeoutMs ` +
          `${this.sessionTimeoutMs}; the session will keep expiring`,
      );
    }
    this.listeners = new ListenerSet((err) => this.logger.error(`registry listener threw: ${describe(err)}`));
  }

  // ---------------------------------------------------------------- lifecycle

  start(): Promise<void> {
    if (this.closed) return Promise.reject(new RegistryClosedError('start'));
    this.startPromise ??= this.doStart().catch((err: unknown) => {
      // A failed start may be retried.
      this.startPromise = undefined;
      throw err;
    });
    return this.startPromise;
  }

  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  onConnectionStateChange(listener: ConnectionListener): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError('listener must be a function');
    return this.listeners.addConnectionListener(listener);
  }

  private async doStart(): Promise<void> {
    const client = this.client ?? this.createClient();
    this.client = client;
    const giveUpAt = this.clock.now() + this.sessionTimeoutMs;
    for (;;) {
      if (this.closed) throw new RegistryClosedError('start');
      try {
        const { leaseId, sentAt } = await this.grantLease(client, giveUpAt);
        if (this.closed) {
          // close() is waiting for us and revokes whatever lease is recorded here.
          this.leaseId = leaseId;
          throw new RegistryClosedError('start');
        }
        this.beginSession(leaseId, sentAt);
        this.logger.log(`etcd registry: session ${hexLease(leaseId)} open (TTL ${this.ttlSeconds} s)`);
        this.listeners.emitConnectionState('CONNECTED');
        return;
      } catch (err) {
        if (err instanceof RegistryError) throw err;
        if (this.clock.now() + RETRY_MS >= giveUpAt) {
          if (!this.closed) {
            this.client = undefined;
            client.close();
          }
          throw new RegistryUnavailableError(
            `cannot open an etcd session at ${this.endpoints.join(',')}: ${describe(err)}`,
            { cause: err },
          );
        }
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, RETRY_MS));
      }
    }
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    this.clock.clearTimeout(this.tickTimer);
    this.clock.clearTimeout(this.regrantTimer);
    this.clock.clearTimeout(this.cleanupTimer);
    this.orphanKeys.clear();
    for (const pending of this.pendingLocks) pending.abort(new RegistryClosedError('acquireLock'));
    this.pendingLocks.clear();
    for (const held of this.heldLocks) held.controller.abort(new RegistryClosedError('lock'));
    this.heldLocks.clear();
    for (const watch of this.watches) watch.close();
    this.watches.clear();
    // A grant in flight must land before we revoke, or its lease would outlive us for a TTL.
    await this.startPromise?.catch(() => undefined);
    await this.granting?.catch(() => undefined);
    this.dropKeepaliveStream();
    const client = this.client;
    const leases = [...(this.leaseId ? [this.leaseId] : []), ...this.staleLeases];
    this.client = undefined;
    this.leaseId = undefined;
    this.staleLeases.clear();
    this.state = 'idle';
    if (client) {
      // Revoking deletes our ephemeral keys and lock keys at once instead of after the TTL.
      const deadline = Date.now() + Math.min(this.sessionTimeoutMs, CLOSE_REVOKE_MS);
      await Promise.all(
        leases.map((ID) =>
          client.leaseClient.leaseRevoke({ ID }, { deadline }).catch((err: unknown) => {
            if (!(err instanceof EtcdLeaseInvalidError)) {
              this.logger.warn(
                `etcd registry: lease revoke on close failed, it expires by TTL: ${describe(err)}`,
              );
            }
          }),
        ),
      );
    }
    client?.close();
    this.listeners.clear();
  }

  private createClient(): Etcd3 {
    const auth = this.auth;
    const options: IOptions = {
      hosts: this.endpoints,
      // etcd3 exchanges these for a token on the first call and again when it expires.
      ...(auth ? { auth: { username: auth.username, password: auth.password } } : {}),
      // Unary calls are bounded so no promise hangs while the server is away; streams are not,
      // their liveness is judged by keep-alive answers.
      defaultCallOptions: (context) =>
        context.isStream ? {} : { deadline: Date.now() + this.sessionTimeoutMs },
      faultHandling: { host: () => passThrough, global: passThrough },
      grpcOptions: {
        // Reconnect quickly once the server is back (gRPC's default backoff grows to 2 minutes).
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
        // Detect a silently dead connection so watch streams on it break and resume. etcd
        // rejects pings more often than every 5 s by default.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        // A watch catching up may batch up to 1,000 revisions of up to maxValueBytes each; a
        // response over gRPC's 4 MB default would fail the stream on every retry, forever.
        'grpc.max_receive_message_length': -1,
      },
    };
    return new Etcd3(options);
  }

  // ---------------------------------------------------------------- session (lease) handling

  /**
   * Grants a lease, giving up at giveUpAt (clock time) if given; `sentAt` bounds when etcd
   * started its TTL clock from below.
   */
  private async grantLease(client: Etcd3, giveUpAt?: number): Promise<{ leaseId: string; sentAt: number }> {
    const sentAt = this.clock.now();
    const res = await client.leaseClient.leaseGrant(
      { TTL: this.ttlSeconds },
      giveUpAt === undefined
        ? undefined
        : { deadline: Date.now() + Math.min(giveUpAt - sentAt, this.sessionTimeoutMs) },
    );
    if (res.error) throw new Error(`lease grant refused: ${res.error}`);
    if (Number(res.TTL) > this.ttlSeconds) {
      this.logger.warn(`etcd registry: etcd raised the lease TTL to its minimum of ${res.TTL} s`);
    }
    return { leaseId: res.ID, sentAt };
  }

  private beginSession(leaseId: string, grantSentAt: number): void {
    this.leaseId = leaseId;
    this.state = 'connected';
    this.lastKeepaliveOk = grantSentAt;
    this.pingsInFlight = [];
    this.keepaliveBreaks = 0;
    this.scheduleTick(this.heartbeatIntervalMs);
  }

  private scheduleTick(delayMs: number): void {
    this.clock.clearTimeout(this.tickTimer);
    this.tickTimer = this.clock.setTimeout(() => this.tick(), delayMs);
    unrefTimer(this.tickTimer);
  }

  /** The keep-alive loop: one ping per heartbeat, and the client-side verdict on the session. */
  private tick(): void {
    this.tickTimer = undefined;
    if (this.closed || (this.state !== 'connected' && this.state !== 'suspended')) return;
    const now = this.clock.now();
    const silentMs = now - this.lastKeepaliveOk;
    if (silentMs > this.sessionTimeoutMs) {
      // etcd may not have expired the lease yet (its clock runs from the last refresh it saw,
      // and a restarted etcd even renews leases), but others must be able to assume we are
      // gone after sessionTimeoutMs, so we give up the session ourselves.
      this.sessionLost(`no keep-alive answer for ${silentMs} ms`);
      return;
    }
    const oldestPing = this.pingsInFlight[0];
    if (oldestPing !== undefined && now - oldestPing > 2 * this.heartbeatIntervalMs) {
      // The stream may sit on a connection that died without an error: open a fresh one.
      this.dropKeepaliveStream();
      this.suspend(`keep-alive unanswered for ${now - oldestPing} ms`);
    }
    this.sendKeepalive();
    const remaining = this.sessionTimeoutMs - silentMs + 1;
    const interval =
      this.state === 'suspended' ? Math.min(this.heartbeatIntervalMs, RETRY_MS) : this.heartbeatIntervalMs;
    this.scheduleTick(Math.max(1, Math.min(interval, remaining)));
  }

  private sendKeepalive(): void {
    const leaseId = this.leaseId;
    const client = this.client;
    if (!leaseId || !client) return;
    const stream = this.keepaliveStream;
    if (stream) {
      try {
        stream.write({ ID: leaseId });
        this.pingsInFlight.push(this.clock.now());
      } catch (err) {
        this.onKeepaliveBroken(stream, err);
      }
      return;
    }
    if (this.keepaliveOpening) return;
    this.keepaliveOpening = true;
    client.leaseClient.leaseKeepAlive().then(
      (opened) => {
        this.keepaliveOpening = false;
        opened.on('data', (res) => this.onKeepaliveAnswer(opened, res));
        opened.on('error', (err) => this.onKeepaliveBroken(opened, err));
        opened.on('end', () => this.onKeepaliveBroken(opened, new Error('keep-alive stream ended')));
        // The stream is not tied to a lease, so one opened for an earlier session serves too.
        if (this.closed || this.keepaliveStream) {
          opened.cancel();
          return;
        }
        this.keepaliveStream = opened;
        this.pingsInFlight = [];
        this.sendKeepalive();
      },
      (err: unknown) => {
        this.keepaliveOpening = false;
        if (!this.closed) this.suspend(`cannot open keep-alive stream: ${describe(err)}`);
      },
    );
  }

  private onKeepaliveAnswer(stream: KeepaliveStream, res: ILeaseKeepAliveResponse): void {
    if (stream !== this.keepaliveStream || this.closed || res.ID !== this.leaseId) return;
    const sentAt = this.pingsInFlight.shift() ?? this.clock.now();
    if (Number(res.TTL) <= 0) {
      this.sessionLost('etcd reports the lease expired');
      return;
    }
    this.lastKeepaliveOk = Math.max(this.lastKeepaliveOk, sentAt);
    this.keepaliveBreaks = 0;
    if (this.state === 'suspended') {
      this.state = 'connected';
      this.logger.log(`etcd registry: reconnected, session ${hexLease(res.ID)} survived`);
      this.listeners.emitConnectionState('RECONNECTED');
      // Watch streams may sit on a connection that died quietly; resuming them is lossless.
      for (const watch of this.watches) watch.restart();
      this.scheduleTick(this.heartbeatIntervalMs);
    }
  }

  private onKeepaliveBroken(stream: KeepaliveStream, err: unknown): void {
    if (stream !== this.keepaliveStream) return;
    this.dropKeepaliveStream();
    if (this.closed || (this.state !== 'connected' && this.state !== 'suspended')) return;
    // A single broken stream may be an unrelated channel reset: reopen once at once, and call
    // the connection suspended only if that fails as well.
    this.keepaliveBreaks++;
    if (this.keepaliveBreaks >= 2) this.suspend(`keep-alive failed: ${describe(err)}`);
    else this.sendKeepalive();
  }

  private dropKeepaliveStream(): void {
    const stream = this.keepaliveStream;
    this.keepaliveStream = undefined;
    this.pingsInFlight = [];
    try {
      stream?.cancel();
    } catch {
      // Already finished.
    }
  }

  private suspend(reason: string): void {
    if (this.state !== 'connected' || this.closed) return;
    this.state = 'suspended';
    this.logger.warn(`etcd registry: connection suspended: ${reason}`);
    this.listeners.emitConnectionState('SUSPENDED');
    this.scheduleTick(Math.min(this.heartbeatIntervalMs, RETRY_MS));
  }

  /** The session is gone: fence locks, tell the owner, then get a new session. */
  private sessionLost(reason: string): void {
    if (this.closed || (this.state !== 'connected' && this.state !== 'suspended')) return;
    const oldLease = this.leaseId;
    this.state = 'lost';
    this.leaseId = undefined;
    this.clock.clearTimeout(this.tickTimer);
    this.dropKeepaliveStream();
    // Abort before announcing LOST: holders must stop acting under the lock at once.
    const lost = new RegistryUnavailableError(`etcd session lost: ${reason}`);
    for (const held of this.heldLocks) held.controller.abort(lost);
    this.heldLocks.clear();
    for (const pending of this.pendingLocks) pending.abort(lost);
    this.pendingLocks.clear();
    for (const [key, lease] of this.orphanKeys) if (lease === oldLease) this.orphanKeys.delete(key);
    this.logger.warn(`etcd registry: session ${oldLease ? hexLease(oldLease) : '?'} lost: ${reason}`);
    this.listeners.emitConnectionState('LOST');
    if (oldLease) {
      // etcd may still hold the old lease (a restarted etcd even renews leases): revoke it so
      // our old ephemeral and lock keys do not linger for another TTL once it answers.
      this.staleLeases.add(oldLease);
      this.scheduleCleanup(0);
    }
    this.regrant();
  }

  private regrant(): void {
    this.regrantTimer = undefined;
    const client = this.client;
    if (this.closed || !client) return;
    this.granting = this.grantLease(client)
      // The old lease goes before the new session is announced: a put still carrying it (sent
      // while suspended, delivered once etcd is back, which even renews leases on restart)
      // then either lands before the revoke and is deleted with it, or is refused after it. Else
      // that late revoke would delete the key the owner had re-registered under the new lease,
      // and masters would see a live worker vanish (and its new tasks taken as lost).
      .then(async (granted) => {
        await this.revokeStaleLeases(client);
        return granted;
      })
      .then(
        ({ leaseId, sentAt }) => {
          this.granting = undefined;
          if (this.closed) {
            this.leaseId = leaseId; // close() revokes it
            return;
          }
          this.beginSession(leaseId, sentAt);
          this.logger.log(`etcd registry: new session ${hexLease(leaseId)} open`);
          this.listeners.emitConnectionState('CONNECTED');
        },
        (err: unknown) => {
          this.granting = undefined;
          if (this.closed) return;
          this.logger.warn(`etcd registry: new session not granted yet, retrying: ${describe(err)}`);
          this.regrantTimer = this.clock.setTimeout(() => this.regrant(), RETRY_MS);
          unrefTimer(this.regrantTimer);
        },
      );
  }

  // ---------------------------------------------------------------- data

  async put(key: string, value: string, options?: PutOptions): Promise<void> {
    validatePath(key);
    validateValue(key, value, this.maxValueBytes);
    const client = this.requireOpen('put');
    // Truthy counts: an ephemeral registration stored as persistent would never go away.
    const lease = options?.ephemeral ? this.requireLease('put') : '0';
    try {
      await client.kv.put({ key: Buffer.from(key), value: Buffer.from(value, 'utf8'), lease });
    } catch (err) {
      throw this.failure('put', err, lease);
    }
  }

  async get(key: string): Promise<string | null> {
    validatePath(key);
    const client = this.requireOpen('get');
    try {
      const res = await client.kv.range(exactKey(key));
      const kv = res.kvs[0];
      return kv ? kv.value.toString('utf8') : null;
    } catch (err) {
      throw this.failure('get', err);
    }
  }

  async exists(key: string): Promise<boolean> {
    validatePath(key);
    const client = this.requireOpen('exists');
    try {
      const res = await client.kv.range({ ...exactKey(key), count_only: true });
      return Number(res.count) > 0;
    } catch (err) {
      throw this.failure('exists', err);
    }
  }

  async delete(key: string): Promise<void> {
    validatePath(key);
    const client = this.requireOpen('delete');
    try {
      if (key === '/') {
        await client.kv.deleteRange(subtreeRange('/'));
      } else {
        // One transaction: the key and its subtree vanish in the same revision.
        await client.kv.txn({
          success: [{ request_delete_range: exactKey(key) }, { request_delete_range: descendantsRange(key) }],
        });
      }
    } catch (err) {
      throw this.failure('delete', err);
    }
  }

  async children(key: string): Promise<string[]> {
    validatePath(key);
    const client = this.requireOpen('children');
    try {
      // Parents are implicit in etcd, so the children are the next segments of all descendants.
      const res = await client.kv.range({ ...descendantsRange(key), keys_only: true });
      const base = key === '/' ? '/' : `${key}/`;
      const names = new Set<string>();
      for (const kv of res.kvs) {
        const name = kv.key.toString('utf8').slice(base.length).split('/')[0];
        if (name) names.add(name);
      }
      return [...names].sort();
    } catch (err) {
      throw this.failure('children', err);
    }
  }

  // ---------------------------------------------------------------- subscriptions

  async subscribe(prefix: string, listener: RegistryListener): Promise<Subscription> {
    validatePath(prefix);
    if (typeof listener !== 'function') throw new InvalidArgumentError('listener must be a function');
    const client = this.requireOpen('subscribe');
    const range = subtreeRange(prefix);
    let revision: bigint;
    try {
      // Start right after the current revision: later changes are all delivered, none before.
      const res = await client.kv.range({ ...range, count_only: true });
      revision = BigInt(res.header.revision);
    } catch (err) {
      throw this.failure('subscribe', err);
    }
    const lastValues = new Map<string, string>();
    const deliver = (events: IEvent[]) => {
      for (const ev of events) {
        if (watch.isClosed) return; // unsubscribed from inside a listener
        const key = ev.kv.key.toString('utf8');
        if (!isUnder(key, prefix)) continue; // a sibling such as /a-b caught by the range
        let type: RegistryEventType;
        let value: string | null;
        if (String(ev.type).toUpperCase() === 'DELETE') {
          type = 'REMOVE';
          value = ev.prev_kv ? ev.prev_kv.value.toString('utf8') : (lastValues.get(key) ?? null);
          lastValues.delete(key);
        } else {
          type = ev.kv.version === '1' ? 'ADD' : 'UPDATE';
          value = ev.kv.value.toString('utf8');
          lastValues.set(key, value);
        }
        try {
          listener({ type, key, value });
        } catch (err) {
          this.logger.error(`registry listener for ${prefix} threw: ${describe(err)}`);
        }
      }
    };
    const watch = new EtcdWatch(
      client.watchClient,
      range,
      revision + 1n,
      deliver,
      (m) => this.logger.error(`etcd registry: watch on ${prefix}: ${m}`),
      this.clock,
    );
    this.watches.add(watch);
    try {
      await this.within(watch.open(), this.sessionTimeoutMs, 'watch not confirmed by etcd in time');
    } catch (err) {
      watch.close();
      this.watches.delete(watch);
      throw this.closed ? new RegistryClosedError('subscribe') : this.failure('subscribe', err);
    }
    if (this.closed) {
      watch.close();
      throw new RegistryClosedError('subscribe');
    }
    return {
      unsubscribe: () => {
        watch.close();
        this.watches.delete(watch);
      },
    };
  }

  // ---------------------------------------------------------------- locks

  async acquireLock(path: string, options?: LockOptions): Promise<RegistryLock> {
    validatePath(path);
    const timeoutMs = validateLockTimeout(options?.timeoutMs);
    const client = this.requireOpen('acquireLock');
    const leaseId = this.requireLease('acquireLock');
    const startedAt = this.clock.now();
    const myKey = joinPath(path, `${hexLease(leaseId)}-${++this.lockSeq}`);
    const aborter = new AbortController();
    this.pendingLocks.add(aborter);
    let timer: TimerHandle | undefined;
    try {
      // Our place in the queue is the create revision of our key, which lives on the lease.
      const put = await raceAbort(
        client.kv.put({ key: Buffer.from(myKey), value: Buffer.alloc(0), lease: leaseId }),
        aborter.signal,
      );
      const myRevision = BigInt(put.header.revision);
      for (;;) {
        // The waiter just ahead of us: the newest key created before ours.
        const res = await raceAbort(
          client.kv.range({
            ...descendantsRange(path),
            max_create_revision: String(myRevision - 1n),
            sort_target: SortTarget.Create,
            sort_order: SortOrder.Descend,
            limit: 1,
            keys_only: true,
          }),
          aborter.signal,
        );
        const predecessor = res.kvs[0];
        if (!predecessor) break;
        if (timeoutMs !== undefined && timer === undefined) {
          const remaining = startedAt + timeoutMs - this.clock.now();
          if (remaining <= 0) throw new LockTimeoutError(path, timeoutMs);
          timer = this.clock.setTimeout(
            () => aborter.abort(new LockTimeoutError(path, timeoutMs)),
            remaining,
          );
        }
        await this.waitForDelete(
          client,
          predecessor.key.toString('utf8'),
          BigInt(res.header.revision) + 1n,
          aborter.signal,
        );
      }
      // Someone may have deleted our key (e.g. delete() of the lock path) while we waited.
      const mine = await raceAbort(client.kv.range({ ...exactKey(myKey), count_only: true }), aborter.signal);
      if (Number(mine.count) === 0) {
        throw new RegistryUnavailableError(`lock key ${myKey} vanished while waiting`);
      }
      if (aborter.signal.aborted) throw aborter.signal.reason;
    } catch (err) {
      const reason: unknown = aborter.signal.aborted ? aborter.signal.reason : err;
      // A waiter key left behind would block everyone queued after it until our session ends.
      // (No-op when the session is gone: the key went with the lease.)
      await this.deleteLockKey(myKey, leaseId);
      throw this.failure('acquireLock', reason, leaseId);
    } finally {
      this.clock.clearTimeout(timer);
      this.pendingLocks.delete(aborter);
    }
    return this.holdLock(path, myKey, leaseId);
  }

  private holdLock(path: string, key: string, leaseId: string): RegistryLock {
    const held: HeldLock = { key, leaseId, controller: new AbortController() };
    this.heldLocks.add(held);
    let releasing: Promise<void> | undefined;
    return {
      path,
      lost: held.controller.signal,
      release: () => {
        releasing ??= (async () => {
          const stillOurs = this.heldLocks.delete(held);
          // After LOST or close the key went with the lease; nothing to do.
          if (stillOurs && !this.closed && this.leaseId === leaseId) await this.deleteLockKey(key, leaseId);
        })();
        return releasing;
      },
    };
  }

  /** Resolves once key is deleted at or after fromRevision; the watch survives reconnects. */
  private waitForDelete(
    client: Etcd3,
    key: string,
    fromRevision: bigint,
    signal: AbortSignal,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        watch.close();
        this.watches.delete(watch);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onAbort = () => finish(asError(signal.reason));
      const watch = new EtcdWatch(
        client.watchClient,
        exactKey(key),
        fromRevision,
        (events) => {
          if (events.some((ev) => String(ev.type).toUpperCase() === 'DELETE')) finish();
        },
        (m) => this.logger.error(`etcd registry: lock watch on ${key}: ${m}`),
        this.clock,
      );
      if (signal.aborted) return finish(asError(signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
      this.watches.add(watch);
      watch.open().catch((err: unknown) => finish(asError(err)));
    });
  }

  /** Deletes a lock key now; if etcd is away, keeps trying in the background. */
  private async deleteLockKey(key: string, leaseId: string): Promise<void> {
    const client = this.client;
    if (!client || this.closed || this.leaseId !== leaseId) return;
    try {
      await client.kv.deleteRange(exactKey(key));
    } catch (err) {
      this.logger.warn(`etcd registry: deleting lock key ${key} failed, retrying: ${describe(err)}`);
      this.orphanKeys.set(key, leaseId);
      this.scheduleCleanup(RETRY_MS);
    }
  }

  /** Background retries of lock-key deletes and stale-lease revokes while etcd is away. */
  private scheduleCleanup(delayMs: number): void {
    if (this.cleanupScheduled || this.closed) return;
    this.cleanupScheduled = true;
    this.cleanupTimer = this.clock.setTimeout(() => {
      this.runCleanup().then(
        () => {
          this.cleanupScheduled = false;
          if (this.orphanKeys.size > 0 || this.staleLeases.size > 0) this.scheduleCleanup(RETRY_MS);
        },
        () => (this.cleanupScheduled = false),
      );
    }, delayMs);
    unrefTimer(this.cleanupTimer);
  }

  private async runCleanup(): Promise<void> {
    const client = this.client;
    if (!client || this.closed) return;
    const attempts: Promise<unknown>[] = [];
    for (const [key, lease] of this.orphanKeys) {
      if (lease !== this.leaseId) {
        this.orphanKeys.delete(key); // the key died with its lease
        continue;
      }
      attempts.push(client.kv.deleteRange(exactKey(key)).then(() => this.orphanKeys.delete(key)));
    }
    attempts.push(this.revokeStaleLeases(client));
    await Promise.allSettled(attempts);
  }

  /** Revokes the leases of lost sessions (each forgotten once revoked or unknown to etcd). */
  private async revokeStaleLeases(client: Etcd3): Promise<void> {
    const deadline = new Date(this.clock.now() + STALE_REVOKE_DEADLINE_MS);
    await Promise.allSettled(
      [...this.staleLeases].map((lease) =>
        client.leaseClient.leaseRevoke({ ID: lease }, { deadline }).then(
          () => this.staleLeases.delete(lease),
          (err: unknown) => {
            if (err instanceof EtcdLeaseInvalidError) this.staleLeases.delete(lease);
          },
        ),
      ),
    );
  }

  // ---------------------------------------------------------------- helpers

  /** Rejects with RegistryUnavailableError(message) unless promise settles within ms. */
  private within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
    let timer: TimerHandle | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => reject(new RegistryUnavailableError(message)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => this.clock.clearTimeout(timer));
  }

  private requireOpen(operation: string): Etcd3 {
    if (this.closed || !this.client || this.state === 'idle') throw new RegistryClosedError(operation);
    return this.client;
  }

  private requireLease(operation: string): string {
    if (!this.leaseId || this.state === 'lost') {
      throw new RegistryUnavailableError(`etcd session lost; ${operation} must wait for a new session`);
    }
    return this.leaseId;
  }

  /** Maps an etcd failure to a registry error; a lease etcd no longer knows means LOST. */
  private failure(operation: string, err: unknown, leaseUsed?: string): RegistryError {
    if (err instanceof RegistryError) return err;
    if (this.closed || err instanceof ClientClosedError) return new RegistryClosedError(operation);
    if (err instanceof EtcdLeaseInvalidError && leaseUsed !== undefined && leaseUsed === this.leaseId) {
      this.sessionLost('etcd reports the lease is gone');
    }
    return new RegistryUnavailableError(`etcd ${operation} failed: ${describe(err)}`, { cause: err });
  }
}

/** Array.isArray, which would narrow a readonly string[] to any[]. */
function isList(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}

function isPositive(n: unknown): n is number {
  return typeof n === 'number' && Number.isFinite(n) && n > 0;
}

function hexLease(leaseId: string): string {
  return BigInt(leaseId).toString(16);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Abort reasons and stream failures here are Errors; anything else is wrapped, message kept. */
function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(describe(reason));
}

/** Rejects with the signal's reason as soon as it aborts; the call itself is bounded anyway. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(asError(signal.reason));
  let rejectAborted: (reason: Error) => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => (rejectAborted = reject));
  const onAbort = () => rejectAborted(asError(signal.reason));
  signal.addEventListener('abort', onAbort, { once: true });
  return Promise.race([promise, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}
