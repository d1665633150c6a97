import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import ZooKeeperNative from 'zookeeper';

/** Result codes of the ZooKeeper C client that this backend acts on. */
export const ZK = {
  OK: 0,
  CONNECTIONLOSS: -4,
  OPERATIONTIMEOUT: -7,
  BADARGUMENTS: -8,
  INVALIDSTATE: -9,
  NONODE: -101,
  NOAUTH: -102,
  BADVERSION: -103,
  NOCHILDRENFOREPHEMERALS: -108,
  NODEEXISTS: -110,
  NOTEMPTY: -111,
  SESSIONEXPIRED: -112,
  CLOSING: -116,
  SESSIONMOVED: -118,
} as const;

/** Enough partial reads for a response of many MB, few enough to end a genuine busy loop fast. */
const RESPONSE_COUNTER_LIMIT = 10_000;
const CONNECTED_STATE = 3;
const READONLY_STATE = 5;

export const CreateMode = {
  PERSISTENT: 0,
  EPHEMERAL: 1,
  EPHEMERAL_SEQUENTIAL: 3,
} as const;

/** Codes after which the same request may succeed once the connection (or a new session) is back. */
const TRANSIENT = new Set<number>([
  ZK.CONNECTIONLOSS,
  ZK.OPERATIONTIMEOUT,
  ZK.INVALIDSTATE,
  ZK.SESSIONEXPIRED,
  ZK.CLOSING,
  ZK.SESSIONMOVED,
]);

export class ZkError extends Error {
  constructor(
    readonly code: number,
    readonly path: string,
    text: string,
  ) {
    super(`zookeeper ${text} (${code}) at ${path}`);
    this.name = 'ZkError';
  }

  get transient(): boolean {
    return TRANSIENT.has(this.code);
  }
}

export function isZkError(err: unknown, code?: number): err is ZkError {
  return err instanceof ZkError && (code === undefined || err.code === code);
}

export interface ZkStat {
  readonly czxid: number;
  readonly mzxid: number;
  readonly version: number;
  readonly numChildren: number;
  readonly dataLength: number;
  /** Session id in hex, '0' for persistent nodes; same format as ZkClient.sessionId. */
  readonly ephemeralOwner: string;
}

export interface ZkData {
  readonly stat: ZkStat;
  readonly data: Buffer | null;
}

export type WatchType = 'created' | 'deleted' | 'changed' | 'child';

/** The slice of the native binding (lib/zookeeper.js) this facade uses; its own typings are `any`. */
interface NativeHandle extends EventEmitter {
  init(config: Record<string, unknown>): unknown;
  close(): unknown;
  a_create(
    path: string,
    data: Buffer,
    flags: number,
    cb: (rc: number, text: string, path: string) => void,
  ): number;
  a_exists(path: string, watch: boolean, cb: (rc: number, text: string, stat: ZkStat | null) => void): number;
  a_get(
    path: string,
    watch: boolean,
    cb: (rc: number, text: string, stat: ZkStat | null, data: Buffer | null) => void,
  ): number;
  a_get_children(
    path: string,
    watch: boolean,
    cb: (rc: number, text: string, children: string[] | null) => void,
  ): number;
  a_set(
    path: string,
    data: Buffer,
    version: number,
    cb: (rc: number, text: string, stat: ZkStat | null) => void,
  ): number;
  a_delete_(path: string, version: number, cb: (rc: number, text: string) => void): number;
  a_set_acl(
    path: string,
    version: number,
    acl: readonly NativeAcl[],
    cb: (rc: number, text: string) => void,
  ): number;
  add_auth(scheme: string, auth: string, cb: (rc: number, text: string) => void): number;
  readonly client_id: string;
  readonly client_password: string;
  /** zoo_state(): 3 connected, 5 read-only, anything else means not connected. */
  readonly state: number;
  /** Negotiated session timeout in ms, -1 without a handle. */
  readonly timeout: number;
}

/** One ACL entry as the binding takes it. */
interface NativeAcl {
  readonly perms: number;
  readonly scheme: string;
  readonly auth: string;
}

/** ZOO_PERM_ALL: read, write, create, delete, admin. */
const PERM_ALL = 31;

/** ZooKeeper digest credentials (ZOOKEEPER_AUTH): the session's identity and every node's ACL. */
export interface ZkDigestAuth {
  readonly user: string;
  readonly password: string;
}

/** The digest ACL id of user:password, as ZooKeeper's DigestAuthenticationProvider computes it. */
export function digestAclId(auth: ZkDigestAuth): string {
  const digest = createHash('sha1').update(`${auth.user}:${auth.password}`).digest('base64');
  return `${auth.user}:${digest}`;
}

type NativeCtor = new (config: Record<string, unknown>) => NativeHandle;

export interface ZkClientEvents {
  /** Connected (first time or again with the same session). */
  connected: () => void;
  /** The TCP connection dropped (reported once per drop); the C client keeps trying on its own. */
  disconnected: () => void;
  /** The handle is dead: session expired (or the binding gave up), or close() was called. */
  closed: (code: number) => void;
  /** A one-shot watch (all of them use the default watcher) fired for path. */
  watch: (type: WatchType, path: string) => void;
}

export interface SessionCredentials {
  readonly id: string;
  readonly password: string;
}

/**
 * One native ZooKeeper handle, which is one session: a small typed facade over the callback
 * API. Watches always go through the default watcher (watch=true), so the C client keeps at
 * most one watch per path and kind and no per-watch callback is leaked by the binding.
 * Completions are delivered in server order, which the tree cache relies on.
 */
export class ZkClient {
  private readonly native: NativeHandle;
  private readonly events = new EventEmitter();
  private closeCalled = false;
  private dead = false;
  private lastSession: SessionCredentials | undefined;
  private negotiatedTimeout = -1;
  private linkUp = false;
  private initialized = false;
  /** With digest auth: the ACL every node this client creates gets (all permissions, our digest). */
  private readonly acl: readonly NativeAcl[] | undefined;

  /**
   * onError receives whatever a callback of ours threw: nothing may escape into the binding.
   * auth: digest credentials added to the session at once (the C client sends them again after
   * every reconnect), and the digest ACL put on every node create() makes.
   */
  constructor(
    connect: string,
    sessionTimeoutMs: number,
    private readonly onError: (err: unknown) => void,
    credentials?: SessionCredentials,
    auth?: ZkDigestAuth,
  ) {
    this.acl = auth ? [{ perms: PERM_ALL, scheme: 'digest', auth: digestAclId(auth) }] : undefined;
    this.native = new (ZooKeeperNative as unknown as NativeCtor)({});
    this.events.setMaxListeners(0);
    this.native.on('connect', () =>
      this.guard(() => {
        this.lastSession = { id: this.native.client_id, password: this.native.client_password };
        this.negotiatedTimeout = this.native.timeout;
        // Reconnected without a disconnect having been reported: report it now, in order.
        if (this.linkUp) this.linkDown();
        this.linkUp = true;
        this.events.emit('connected');
      }),
    );
    this.native.on('connecting', () => this.guard(() => this.linkDown()));
    this.native.on('close', (_self: unknown, code: unknown) =>
      this.guard(() => {
        this.dead = true;
        this.events.emit('closed', typeof code === 'number' ? code : 0);
      }),
    );
    for (const type of ['created', 'deleted', 'changed', 'child'] as const) {
      this.native.on(type, (_self: unknown, path: unknown) =>
        this.guard(() => {
          if (typeof path === 'string') this.events.emit('watch', type, path);
        }),
      );
    }
    // Deferred to a macrotask of its own: init opens a socket at once, and it should not do so
    // from inside another handle's native callback, where that handle may just have closed
    // an fd number that its libuv poll watcher still holds.
    setImmediate(() => {
      if (this.closeCalled) return;
      try {
        this.native.init({
          connect,
          timeout: sessionTimeoutMs,
          // 0 switches the C client's own stderr logging off (zoo_set_debug_level).
          debug_level: 0,
          // The binding kills the session after this many reads in a row that complete no
          // response (default 10), and a value near 1 MB arrives in more pieces than that.
          response_counter_limit: RESPONSE_COUNTER_LIMIT,
          host_order_deterministic: false,
          ...(credentials ? { client_id: credentials.id, client_password: credentials.password } : {}),
        });
        this.initialized = true;
        // Queued by the C client before any request of ours; a wrong password closes the session
        // (AUTHFAILED), reported through 'closed'. The text is never logged: it holds the password.
        if (auth) {
          this.native.add_auth('digest', `${auth.user}:${auth.password}`, (rc) => {
            if (rc !== ZK.OK) this.onError(new ZkError(rc, '/', 'digest authentication failed'));
          });
        }
      } catch (err) {
        this.onError(err);
        this.dead = true;
        this.guard(() => this.events.emit('closed', ZK.BADARGUMENTS));
      }
    });
  }

  on<E extends keyof ZkClientEvents>(event: E, listener: ZkClientEvents[E]): void {
    this.events.on(event, listener);
  }

  /** Hex session id, as in ZkStat.ephemeralOwner; '0' before the first connect. */
  get sessionId(): string {
    return this.lastSession?.id ?? '0';
  }

  /** The session timeout the server granted (it clamps to its min/max), or -1 before connecting. */
  get negotiatedTimeoutMs(): number {
    return this.negotiatedTimeout;
  }

  /** Id and password of the session, once it has connected at least once. */
  get session(): SessionCredentials | undefined {
    return this.lastSession;
  }

  get isClosed(): boolean {
    return this.dead || this.closeCalled;
  }

  /**
   * Closes the handle (a connected session is closed on the server, deleting its ephemeral
   * nodes). Deferred to a macrotask: zookeeper_close must not run inside the binding's own
   * callbacks. It blocks briefly while the server confirms.
   */
  close(): Promise<void> {
    if (this.closeCalled) return Promise.resolve();
    this.closeCalled = true;
    return new Promise((resolve) =>
      setImmediate(() => {
        try {
          if (this.initialized) this.native.close();
        } catch {
          // Already closed by the binding (expired session): nothing left to free.
        }
        this.dead = true;
        this.events.removeAllListeners();
        resolve();
      }),
    );
  }

  // --- callback API (completion order = server order) ---

  getCb(path: string, watch: boolean, cb: (err: ZkError | null, res: ZkData | null) => void): void {
    this.call(
      path,
      (done) =>
        this.native.a_get(path, watch, (rc, text, stat, data) =>
          done(rc, text, () => cb(null, { stat: stat!, data })),
        ),
      (err) => (err.code === ZK.NONODE ? cb(null, null) : cb(err, null)),
    );
  }

  existsCb(path: string, watch: boolean, cb: (err: ZkError | null, stat: ZkStat | null) => void): void {
    this.call(
      path,
      (done) => this.native.a_exists(path, watch, (rc, text, stat) => done(rc, text, () => cb(null, stat))),
      (err) => (err.code === ZK.NONODE ? cb(null, null) : cb(err, null)),
    );
  }

  childrenCb(path: string, watch: boolean, cb: (err: ZkError | null, names: string[] | null) => void): void {
    this.call(
      path,
      (done) =>
        this.native.a_get_children(path, watch, (rc, text, names) =>
          done(rc, text, () => cb(null, names ?? [])),
        ),
      (err) => (err.code === ZK.NONODE ? cb(null, null) : cb(err, null)),
    );
  }

  // --- promise API ---

  /** Data and stat, or null when the node does not exist. */
  get(path: string, watch = false): Promise<ZkData | null> {
    return new Promise((resolve, reject) =>
      this.getCb(path, watch, (err, res) => (err ? reject(err) : resolve(res))),
    );
  }

  /** Stat, or null when the node does not exist. */
  exists(path: string, watch = false): Promise<ZkStat | null> {
    return new Promise((resolve, reject) =>
      this.existsCb(path, watch, (err, s) => (err ? reject(err) : resolve(s))),
    );
  }

  /** Child names (unsorted), or null when the node does not exist. */
  children(path: string, watch = false): Promise<string[] | null> {
    return new Promise((resolve, reject) =>
      this.childrenCb(path, watch, (err, n) => (err ? reject(err) : resolve(n))),
    );
  }

  /**
   * Creates the node; resolves with its actual path (with the sequence suffix if sequential).
   * With digest auth the node then gets the digest ACL, before this resolves. The binding's
   * create always passes the open ACL (world:anyone) to the C client, so the ACL is set right
   * after, on the same session: in between (one round trip) an anonymous client could at most
   * write the new node's data or add a child to it; it cannot create beside it or delete it,
   * which needs the parent's permissions, and the parent is Porpoise's and already protected.
   */
  async create(path: string, data: Buffer, mode: number): Promise<string> {
    const created = await new Promise<string>((resolve, reject) =>
      this.call(
        path,
        (done) =>
          this.native.a_create(path, data, mode, (rc, text, actual) => done(rc, text, () => resolve(actual))),
        reject,
      ),
    );
    const acl = this.acl;
    if (acl) {
      await new Promise<void>((resolve, reject) =>
        this.call(
          created,
          (done) => this.native.a_set_acl(created, -1, acl, (rc, text) => done(rc, text, resolve)),
          reject,
        ),
      );
    }
    return created;
  }

  set(path: string, data: Buffer, version: number): Promise<ZkStat> {
    return new Promise((resolve, reject) =>
      this.call(
        path,
        (done) =>
          this.native.a_set(path, data, version, (rc, text, stat) => done(rc, text, () => resolve(stat!))),
        reject,
      ),
    );
  }

  delete(path: string, version: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.call(
        path,
        (done) => this.native.a_delete_(path, version, (rc, text) => done(rc, text, resolve)),
        reject,
      ),
    );
  }

  /**
   * Issues one request. `issue` returns the binding's immediate result code; when that is not
   * ZOK the completion never runs, so the failure is reported here instead (asynchronously,
   * like every other completion).
   */
  private call(
    path: string,
    issue: (done: (rc: number, text: string, ok: () => void) => void) => number,
    fail: (err: ZkError) => void,
  ): void {
    const done = (rc: number, text: string, ok: () => void) =>
      this.guard(() => {
        if (rc === ZK.OK) return ok();
        // The C client does not always raise its CONNECTING session event (not when the
        // socket dies while it is sending from inside a callback); a request failing with
        // connection loss is proof enough, and 'connected' follows once it is back.
        if (rc === ZK.CONNECTIONLOSS || rc === ZK.OPERATIONTIMEOUT) this.linkDown();
        fail(new ZkError(rc, path, text));
      });
    const failLater = (rc: number, text: string) =>
      queueMicrotask(() => this.guard(() => fail(new ZkError(rc, path, text))));
    if (this.isClosed) return failLater(ZK.CLOSING, 'handle closed');
    let rc: number;
    try {
      rc = issue(done);
    } catch (err) {
      return failLater(ZK.BADARGUMENTS, err instanceof Error ? err.message : String(err));
    }
    if (typeof rc === 'number' && rc !== ZK.OK) failLater(rc, 'request refused');
  }

  /**
   * Safety net for session events the C client did not raise: reports a drop if the handle
   * is no longer connected although we think it is. Called periodically.
   */
  checkLink(): void {
    if (!this.linkUp || this.dead) return;
    let state: number;
    try {
      state = this.native.state;
    } catch {
      return;
    }
    if (state !== CONNECTED_STATE && state !== READONLY_STATE) this.linkDown();
  }

  private linkDown(): void {
    if (!this.linkUp || this.dead) return;
    this.linkUp = false;
    this.events.emit('disconnected');
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.onError(err);
    }
  }
}
