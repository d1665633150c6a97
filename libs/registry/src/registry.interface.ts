/**
 * The registry every Porpoise node uses for membership, change events and the global
 * failover lock (DESIGN.md section 6). Three backends implement it: ZooKeeper, JDBC on
 * Postgres and etcd. Keys are absolute slash-separated paths such as `/nodes/master/h:1`.
 */

export type RegistryEventType = 'ADD' | 'UPDATE' | 'REMOVE';

export interface RegistryEvent {
  readonly type: RegistryEventType;
  /** The full key that changed. */
  readonly key: string;
  /** The new value for ADD and UPDATE; the last known value for REMOVE (null only if it was never seen). */
  readonly value: string | null;
}

export type RegistryListener = (event: RegistryEvent) => void;

/**
 * CONNECTED: the first session is up (and again after a LOST, once a new session exists).
 * SUSPENDED: the connection dropped; the session may still be alive on the server.
 * RECONNECTED: the connection is back and the same session survived (ephemeral data intact).
 * LOST: the session expired; this client's ephemeral data and locks are gone.
 */
export type ConnectionState = 'CONNECTED' | 'SUSPENDED' | 'RECONNECTED' | 'LOST';

export type ConnectionListener = (state: ConnectionState) => void;

export interface PutOptions {
  /** Ephemeral data dies with this client's session. Default false (persistent). */
  readonly ephemeral?: boolean;
}

export interface LockOptions {
  /** Give up with a LockTimeoutError after this long. Default: wait forever. */
  readonly timeoutMs?: number;
}

export interface Subscription {
  unsubscribe(): void;
}

export interface RegistryLock {
  readonly path: string;
  /**
   * Aborted when the lock is lost without release(): the holder's session died, so another
   * client may already hold it. The holder must stop acting under the lock at once.
   */
  readonly lost: AbortSignal;
  /** Releases the lock. Safe to call twice and after the lock was lost. */
  release(): Promise<void>;
}

export interface Registry {
  /** Which backend this is: 'zookeeper' | 'jdbc' | 'etcd'. */
  readonly type: RegistryType;

  /** Connects and opens the session. Resolves once CONNECTED. */
  start(): Promise<void>;

  /** Creates or replaces a value. Parents are implicit. */
  put(key: string, value: string, options?: PutOptions): Promise<void>;
  /** The value, or null when the key does not exist. */
  get(key: string): Promise<string | null>;
  exists(key: string): Promise<boolean>;
  /** Deletes the key and everything under it. Deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Names (not full paths) of the direct children of key, sorted. Empty when there are none. */
  children(key: string): Promise<string[]>;

  /**
   * Delivers ADD / UPDATE / REMOVE for every key at or under prefix that changes after the
   * returned promise resolves, in order per key. Existing keys are not replayed: read them
   * with children()/get() after subscribing.
   */
  subscribe(prefix: string, listener: RegistryListener): Promise<Subscription>;

  /** Registers a connection-state listener; returns a function that removes it. */
  onConnectionStateChange(listener: ConnectionListener): () => void;

  /** A global mutual-exclusion lock released when its holder's session dies. */
  acquireLock(path: string, options?: LockOptions): Promise<RegistryLock>;

  /** Removes this client's ephemeral data and locks at once and disconnects. Idempotent. */
  close(): Promise<void>;
}

export type RegistryType = 'zookeeper' | 'jdbc' | 'etcd';
