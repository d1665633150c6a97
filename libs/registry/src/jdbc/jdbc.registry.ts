import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Client, Pool, type Notification } from 'pg';
import {
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type TimerHandle,
  unrefTimer,
} from '@porpoise/common';
import { DEFAULT_MAX_VALUE_BYTES, type RegistryConfig } from '../registry.config';
import type {
  ConnectionListener,
  ConnectionState,
  LockOptions,
  PutOptions,
  Registry,
  RegistryEvent,
  RegistryEventType,
  RegistryListener,
  RegistryLock,
  Subscription,
} from '../registry.interface';
import {
  InvalidArgumentError,
  InvalidPathError,
  LockTimeoutError,
  RegistryClosedError,
  RegistryError,
  RegistrySchemaMissingError,
  RegistryUnavailableError,
} from '../registry.errors';
import { ListenerSet } from '../registry-listeners';
import { validateLockTimeout, validatePath, validateValue } from '../registry-path';
import { SESSION_EXPIRED_SQLSTATE, isConnectionFailure, messageOf, sqlState } from './jdbc-errors';

export type JdbcRegistryConfig = Extract<RegistryConfig, { type: 'jdbc' }>;

/** Channels the registry functions pg_notify (migration 1795306077000). */
const EVENT_CHANNEL = 'porpoise_registry_event';
const LOCK_CHANNEL = 'porpoise_registry_lock';
/** Seed 003: change events are kept two hours, then pruned. */
export const EVENT_RETENTION_MS = 2 * 60 * 60 * 1000;
const PRUNE_EVERY_MS = 60_000;
const EVENT_BATCH = 500;
const POOL_SIZE = 4;
const CLOSE_WAIT_MS = 5_000;
/** How long after a client's expiry (database clock) to sweep it: covers timer and network jitter. */
const SWEEP_SLACK_MS = 20;
/** Floor between heartbeats, should an expired client stay unsweepable (row locked) for a while. */
const MIN_TICK_MS = 50;

const SQL = {
  register: 'SELECT registry_register_client($1, $2, $3, $4, $5)',
  heartbeat: 'SELECT alive, next_expiry_ms FROM registry_heartbeat($1, $2)',
  removeClient: 'SELECT registry_remove_client($1)',
  put: 'SELECT registry_put($1, $2, $3)',
  delete: 'SELECT registry_delete($1)',
  get: 'SELECT value FROM registry_data WHERE key = $1',
  exists: 'SELECT EXISTS (SELECT 1 FROM registry_data WHERE key = $1) AS found',
  // Everything under a key is the bytewise range [lo, hi) thanks to the "C" collation of key.
  children:
    "SELECT DISTINCT split_part(substr(key, $3::int), '/', 1) AS name FROM registry_data WHERE key >= $1 AND key < $2",
  maxEventId: 'SELECT coalesce(max(id), 0)::text AS id FROM registry_data_change_event',
  // Ordered by the bigint column: ORDER BY the text alias would sort '10' before '7'.
  events:
    'SELECT e.id::text AS id, e.type, e.key, e.value FROM registry_data_change_event e WHERE e.id > $1 ORDER BY e.id LIMIT $2',
  tryLock: 'SELECT registry_try_lock($1, $2, $3) AS acquired',
  releaseLock: `WITH d AS (DELETE FROM registry_lock WHERE key = $1 AND token = $2 RETURNING key)
    SELECT pg_notify('${LOCK_CHANNEL}', key) FROM d`,
} as const;

type Phase = 'idle' | 'starting' | 'open' | 'closed';

interface HeldLock {
  abort(reason: string): void;
}

const noop = () => undefined;

/**
 * The JDBC registry on Postgres (seed 003, DESIGN.md section 6).
 *
 * - Sessions: a row per client in registry_client_heartbeat, refreshed every heartbeat with the
 *   database's clock; the database alone decides expiry (last_heartbeat + the client's own
 *   session timeout), so client clocks never matter. Every heartbeat also sweeps expired clients
 *   with their ephemeral data and locks, recording a REMOVE event per key.
 * - Changes: every write records its events in the same transaction (one registry_* function
 *   call, one round trip) and NOTIFYs; subscribers read events by id, woken by LISTEN on a
 *   dedicated connection and polling every heartbeat as the fallback. Event ids commit in order
 *   (see the migration), so reading `id > cursor` never skips one.
 * - Connection: the dedicated connection also carries the heartbeat, so SUSPENDED means "cannot
 *   reach the database"; a pool serves the operations.
 */
export class JdbcRegistry implements Registry {
  readonly type = 'jdbc' as const;

  private readonly databaseUrl: string;
  private readonly sessionTimeoutMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly maxValueBytes: number;
  private readonly retryDelayMs: number;
  private readonly connectTimeoutMs: number;
  private readonly queryTimeoutMs: number;
  private readonly controlTimeoutMs: number;
  private readonly lockPollMs: number;
  private readonly listeners: ListenerSet;

  private phase: Phase = 'idle';
  private startPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private pool: Pool | undefined;
  /** LISTEN + heartbeat connection; undefined while down. */
  private control: Client | undefined;
  private readonly droppedControls = new WeakSet<Client>();
  private clientId: string | undefined;
  private state: ConnectionState | undefined;
  /** Set from LOST until a new session is registered. */
  private sessionLost = false;
  /** performance.now() when the last successful heartbeat was sent (≤ the database's time of it). */
  private lastHeartbeatSentAt = 0;
  private lastPruneAt = -Infinity;
  private nextTickMs = 0;
  private tickTimer: TimerHandle | undefined;
  private lostTimer: TimerHandle | undefined;
  private ticking: Promise<void> | undefined;
  private reportedOutage = false;

  // Event reading: one reader at a time (serial), cursor = last event id read.
  private serialChain: Promise<unknown> = Promise.resolve();
  private cursor = 0n;
  private delivering = 0n;
  private pumping = false;
  private pumpAgain = false;

  // Locks.
  private readonly held = new Set<HeldLock>();
  /** Per key with acquirers in flight: bumped on each release NOTIFY, so no wake-up is missed. */
  private readonly lockGeneration = new Map<string, { generation: number; acquirers: number }>();
  private readonly lockWaiters = new Map<string, Set<() => void>>();

  /**
   * Timers come from clock; elapsed times are read from performance.now(), which no clock step
   * can move, and the session's expiry is judged by the database's clock.
   */
  constructor(
    config: JdbcRegistryConfig,
    private readonly logger: Logger = silentLogger,
    private readonly clock: Clock = systemClock,
  ) {
    if (typeof config.databaseUrl !== 'string' || config.databaseUrl === '') {
      throw new InvalidArgumentError('jdbc registry: databaseUrl is required');
    }
    const { sessionTimeoutMs } = config;
    if (typeof sessionTimeoutMs !== 'number' || !Number.isFinite(sessionTimeoutMs) || sessionTimeoutMs <= 0) {
      throw new InvalidArgumentError(
        `sessionTimeoutMs must be a positive number, got ${String(sessionTimeoutMs)}`,
      );
    }
    const heartbeatIntervalMs = config.heartbeatIntervalMs ?? sessionTimeoutMs / 5;
    if (
      typeof heartbeatIntervalMs !== 'number' ||
      !Number.isFinite(heartbeatIntervalMs) ||
      heartbeatIntervalMs <= 0 ||
      heartbeatIntervalMs >= sessionTimeoutMs
    ) {
      throw new InvalidArgumentError(
        `heartbeatIntervalMs must be positive and below sessionTimeoutMs, got ${String(heartbeatIntervalMs)}`,
      );
    }
    const maxValueBytes = config.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    if (!Number.isInteger(maxValueBytes) || maxValueBytes <= 0) {
      throw new InvalidArgumentError(
        `maxValueBytes must be a positive integer, got ${String(maxValueBytes)}`,
      );
    }

    this.databaseUrl = config.databaseUrl;
    this.sessionTimeoutMs = Math.round(sessionTimeoutMs);
    this.heartbeatIntervalMs = heartbeatIntervalMs;
    this.maxValueBytes = maxValueBytes;
    this.retryDelayMs = Math.min(heartbeatIntervalMs, 1000);
    this.lockPollMs = Math.min(heartbeatIntervalMs, 1000);
    // Bounded waits, so no call hangs while the database is away; the heartbeat's own bound is
    // the interval, so a stuck heartbeat cannot delay noticing the outage by more than that.
    this.connectTimeoutMs = clamp(heartbeatIntervalMs, 1000, 10_000);
    this.controlTimeoutMs = clamp(heartbeatIntervalMs, 1000, 10_000);
    this.queryTimeoutMs = clamp(sessionTimeoutMs / 2, 2000, 15_000);
    this.listeners = new ListenerSet((err) => this.logger.warn(`registry listener threw: ${messageOf(err)}`));
  }

  // ---------------------------------------------------------------- lifecycle

  start(): Promise<void> {
    if (this.phase === 'closed') return Promise.reject(new RegistryClosedError('start'));
    this.startPromise ??= this.doStart().catch((err: unknown) => {
      this.startPromise = undefined;
      throw err;
    });
    return this.startPromise;
  }

  private async doStart(): Promise<void> {
    this.phase = 'starting';
    const pool = new Pool({
      connectionString: this.databaseUrl,
      max: POOL_SIZE,
      connectionTimeoutMillis: this.connectTimeoutMs,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      query_timeout: this.queryTimeoutMs,
      statement_timeout: this.queryTimeoutMs,
      application_name: 'porpoise-registry',
    });
    // Idle connections error when the server goes away; without a listener that would crash the process.
    pool.on('error', (err) => this.logger.log(`registry pool connection dropped: ${err.message}`));
    this.pool = pool;
    try {
      const id = randomUUID();
      const sentAt = performance.now();
      await pool.query(SQL.register, [id, hostname(), process.pid, this.sessionTimeoutMs, null]);
      this.clientId = id;
      this.lastHeartbeatSentAt = sentAt;
      await this.connectControl();
    } catch (err) {
      const closed = this.isClosed();
      if (!closed) {
        this.phase = 'idle';
        await this.removeSessionQuietly(pool);
        await this.teardownConnections();
      }
      if (closed) throw new RegistryClosedError('start');
      // undefined_function / undefined_table: the migrations have not created the registry yet.
      if (sqlState(err) === '42883' || sqlState(err) === '42P01') {
        throw new RegistrySchemaMissingError(
          `start: the registry tables are not in the database yet (${messageOf(err)}); ` +
            'a master or API server creates them at start (or `npm run migration:run`)',
          { cause: err },
        );
      }
      throw this.translate('start', err);
    }
    if (this.isClosed()) throw new RegistryClosedError('start');
    this.phase = 'open';
    this.armLostTimer();
    this.setState('CONNECTED');
    this.scheduleTick(this.heartbeatIntervalMs);
  }

  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.phase = 'closed';
    this.clock.clearTimeout(this.tickTimer);
    this.clock.clearTimeout(this.lostTimer);
    this.wakeAllLockWaiters();
    await this.startPromise?.catch(noop);
    // A heartbeat in flight holds our client row; removing it concurrently could deadlock.
    await this.ticking;
    if (this.pool) await this.removeSessionQuietly(this.pool);
    this.abortHeldLocks('the registry client was closed');
    this.listeners.clear();
    await this.teardownConnections();
  }

  /** Deletes our session (ephemeral data with REMOVE events, locks, heartbeat row); logs failures. */
  private async removeSessionQuietly(pool: Pool): Promise<void> {
    if (!this.clientId) return;
    try {
      await pool.query(SQL.removeClient, [this.clientId]);
    } catch (err) {
      this.logger.warn(
        `registry could not remove its session at close; it expires by timeout: ${messageOf(err)}`,
      );
    }
  }

  private async teardownConnections(): Promise<void> {
    const control = this.control;
    const pool = this.pool;
    this.control = undefined;
    this.pool = undefined;
    await Promise.all([
      control && this.settleWithin(control.end(), CLOSE_WAIT_MS),
      pool && this.settleWithin(pool.end(), CLOSE_WAIT_MS),
    ]);
  }

  private isClosed(): boolean {
    return this.phase === 'closed';
  }

  onConnectionStateChange(listener: ConnectionListener): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError('listener must be a function');
    return this.listeners.addConnectionListener(listener);
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    if (state === 'CONNECTED' || state === 'RECONNECTED') this.logger.log(`registry connection ${state}`);
    else this.logger.warn(`registry connection ${state}`);
    this.listeners.emitConnectionState(state);
  }

  // ---------------------------------------------------------------- session upkeep

  private scheduleTick(delayMs: number): void {
    if (this.phase !== 'open') return;
    this.clock.clearTimeout(this.tickTimer);
    this.tickTimer = this.clock.setTimeout(() => void this.tick(), delayMs);
    unrefTimer(this.tickTimer);
  }

  private async tick(): Promise<void> {
    if (this.phase !== 'open' || this.ticking) return;
    let healthy = false;
    this.ticking = this.heartbeat().then(
      () => {
        healthy = true;
        this.reportedOutage = false;
      },
      (err: unknown) => this.onHeartbeatFailure(err),
    );
    await this.ticking;
    this.ticking = undefined;
    // Polling fallback: picks up events whose NOTIFY we missed.
    this.kickPump();
    this.scheduleTick(healthy ? this.nextTickMs : this.retryDelayMs);
  }

  private async heartbeat(): Promise<void> {
    this.nextTickMs = this.heartbeatIntervalMs;
    const control = this.control ?? (await this.connectControl());
    if (this.sessionLost) return this.renewSession(control);
    const sentAt = performance.now();
    const prune = sentAt - this.lastPruneAt >= PRUNE_EVERY_MS;
    const { rows } = await control.query<{ alive: boolean; next_expiry_ms: number | null }>(SQL.heartbeat, [
      this.clientId,
      prune ? EVENT_RETENTION_MS : null,
    ]);
    if (prune) this.lastPruneAt = sentAt;
    if (this.phase !== 'open') return;
    const nextExpiry = rows[0]?.next_expiry_ms;
    // Sweep a silent client as soon as the database would expire it, not up to an interval later.
    this.nextTickMs =
      nextExpiry === null || nextExpiry === undefined
        ? this.heartbeatIntervalMs
        : Math.min(this.heartbeatIntervalMs, Math.max(MIN_TICK_MS, nextExpiry + SWEEP_SLACK_MS));
    if (!rows[0]?.alive) this.declareLost('the database expired this session');
    // Declared LOST meanwhile (client-side timeout): that session is given up even if it survived.
    if (this.sessionLost) return this.renewSession(control);
    this.lastHeartbeatSentAt = sentAt;
    this.armLostTimer();
    if (this.state === 'SUSPENDED') this.setState('RECONNECTED');
  }

  /** After LOST: removes what is left of the old session (with REMOVE events) and opens a new one. */
  private async renewSession(control: Client): Promise<void> {
    const id = randomUUID();
    const sentAt = performance.now();
    await control.query(SQL.register, [
      id,
      hostname(),
      process.pid,
      this.sessionTimeoutMs,
      this.clientId ?? null,
    ]);
    // Set even when closing, so close() removes the new session rather than the old one.
    this.clientId = id;
    if (this.phase !== 'open') return;
    this.sessionLost = false;
    this.lastHeartbeatSentAt = sentAt;
    this.armLostTimer();
    this.setState('CONNECTED');
  }

  private onHeartbeatFailure(err: unknown): void {
    if (this.phase !== 'open') return;
    // Whatever failed, start over on a fresh connection: a timed-out query leaves it busy.
    this.dropControl(this.control);
    if (!this.reportedOutage) {
      this.reportedOutage = true;
      this.logger.warn(`registry heartbeat failed: ${messageOf(err)}`);
    }
    this.suspend();
  }

  /** Moves a live connection to SUSPENDED; true if it did. */
  private suspend(): boolean {
    if (this.state !== 'CONNECTED' && this.state !== 'RECONNECTED') return false;
    this.setState('SUSPENDED');
    return true;
  }

  /**
   * Client-side expiry: no heartbeat has succeeded for sessionTimeoutMs since one was sent, so
   * the database (which stamped that heartbeat no earlier) may expire us at any moment.
   */
  private armLostTimer(): void {
    this.clock.clearTimeout(this.lostTimer);
    const dueIn = this.lastHeartbeatSentAt + this.sessionTimeoutMs - performance.now();
    this.lostTimer = this.clock.setTimeout(
      () => this.declareLost(`no successful heartbeat for ${this.sessionTimeoutMs} ms`),
      Math.max(0, dueIn),
    );
    unrefTimer(this.lostTimer);
  }

  private declareLost(reason: string): void {
    if (this.sessionLost || this.phase !== 'open') return;
    this.sessionLost = true;
    this.clock.clearTimeout(this.lostTimer);
    this.logger.warn(`registry session lost: ${reason}`);
    this.abortHeldLocks(`registry session lost: ${reason}`);
    this.setState('LOST');
    this.scheduleTick(0);
  }

  /** Called with the session id an operation used when the database said that session is gone. */
  private sessionExpired(sessionId: string | null | undefined): void {
    if (sessionId && sessionId === this.clientId) this.declareLost('the database no longer has this session');
  }

  // ---------------------------------------------------------------- LISTEN connection

  private async connectControl(): Promise<Client> {
    const client = new Client({
      connectionString: this.databaseUrl,
      connectionTimeoutMillis: this.connectTimeoutMs,
      keepAlive: true,
      query_timeout: this.controlTimeoutMs,
      statement_timeout: this.controlTimeoutMs,
      application_name: 'porpoise-registry-listen',
    });
    const down = (why: string) => {
      const current = this.control === client;
      this.dropControl(client);
      if (!current || this.phase !== 'open') return;
      this.logger.log(`registry listen connection dropped: ${why}`);
      // Heartbeat at once on a new connection: it fails (SUSPENDED) only if the database is really away.
      if (!this.ticking) this.scheduleTick(0);
    };
    // Must stay attached for the client's whole life: an unhandled 'error' event crashes the process.
    client.on('error', (err) => down(err.message));
    client.on('end', () => down('connection ended'));
    client.on('notification', (n) => this.onNotification(n));
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENT_CHANNEL}; LISTEN ${LOCK_CHANNEL}`);
    } catch (err) {
      void client.end().catch(noop);
      throw err;
    }
    if (this.isClosed()) {
      void client.end().catch(noop);
      throw new RegistryClosedError('connect');
    }
    this.control = client;
    // NOTIFYs sent while no listener was connected are gone: catch up by id, re-check locks.
    this.kickPump();
    this.wakeAllLockWaiters();
    return client;
  }

  private dropControl(client: Client | undefined): void {
    if (!client || this.droppedControls.has(client)) return;
    this.droppedControls.add(client);
    if (this.control === client) this.control = undefined;
    client.removeAllListeners('notification');
    void client.end().catch(noop);
  }

  private onNotification(n: Notification): void {
    if (n.channel === EVENT_CHANNEL) this.kickPump();
    else if (n.channel === LOCK_CHANNEL && n.payload) this.wakeLockWaiters(n.payload);
  }

  // ---------------------------------------------------------------- data

  async put(key: string, value: string, options?: PutOptions): Promise<void> {
    validatePath(key);
    if (key === '/') throw new InvalidPathError(key, 'the root holds no value');
    validateValue(key, value, this.maxValueBytes);
    // Postgres text cannot hold NUL; say so instead of failing as "unavailable".
    if (value.includes('\u0000')) throw new InvalidArgumentError(`value for ${key} contains a NUL character`);
    const ephemeral = options?.ephemeral ?? false;
    if (typeof ephemeral !== 'boolean') throw new InvalidArgumentError('options.ephemeral must be a boolean');
    const pool = this.openPool('put');
    if (ephemeral && this.sessionLost) {
      throw new RegistryUnavailableError(`put ${key}: the registry session is lost and not yet renewed`);
    }
    const owner = ephemeral ? this.clientId : null;
    try {
      await pool.query(SQL.put, [key, value, owner]);
    } catch (err) {
      throw this.translate('put', err, owner);
    }
  }

  async get(key: string): Promise<string | null> {
    validatePath(key);
    const { rows } = await this.query<{ value: string }>('get', SQL.get, [key]);
    return rows[0]?.value ?? null;
  }

  async exists(key: string): Promise<boolean> {
    validatePath(key);
    const { rows } = await this.query<{ found: boolean }>('exists', SQL.exists, [key]);
    return rows[0]?.found === true;
  }

  async delete(key: string): Promise<void> {
    validatePath(key);
    await this.query('delete', SQL.delete, [key]);
  }

  async children(key: string): Promise<string[]> {
    validatePath(key);
    const lo = key === '/' ? '/' : `${key}/`;
    const hi = key === '/' ? '0' : `${key}0`; // '0' is the character after '/'
    const { rows } = await this.query<{ name: string }>('children', SQL.children, [lo, hi, lo.length + 1]);
    return rows.map((r) => r.name).sort();
  }

  private openPool(operation: string): Pool {
    if (this.phase !== 'open' || !this.pool) throw new RegistryClosedError(operation);
    return this.pool;
  }

  private async query<R extends object>(
    operation: string,
    text: string,
    values: unknown[],
  ): Promise<{ rows: R[] }> {
    const pool = this.openPool(operation);
    try {
      return await pool.query<R>(text, values);
    } catch (err) {
      throw this.translate(operation, err);
    }
  }

  /** Maps a failure to the registry's errors, and notes what it says about the connection. */
  private translate(operation: string, err: unknown, sessionId?: string | null): RegistryError {
    if (err instanceof RegistryError) return err;
    if (this.isClosed()) return new RegistryClosedError(operation);
    if (sqlState(err) === SESSION_EXPIRED_SQLSTATE) {
      this.sessionExpired(sessionId);
      return new RegistryUnavailableError(`${operation}: the registry session has expired`, { cause: err });
    }
    // Confirm (RECONNECTED) or refute quickly instead of waiting for the next heartbeat.
    if (isConnectionFailure(err) && this.phase === 'open' && this.suspend() && !this.ticking) {
      this.scheduleTick(0);
    }
    return new RegistryUnavailableError(`${operation} failed: ${messageOf(err)}`, { cause: err });
  }

  // ---------------------------------------------------------------- events

  async subscribe(prefix: string, listener: RegistryListener): Promise<Subscription> {
    validatePath(prefix);
    if (typeof listener !== 'function') throw new InvalidArgumentError('listener must be a function');
    this.openPool('subscribe');
    // Serialized with the reader, so the reader cannot pass `from` between our read and the registration.
    return this.serial(async () => {
      const { rows } = await this.query<{ id: string }>('subscribe', SQL.maxEventId, []);
      const from = BigInt(rows[0]?.id ?? '0');
      if (this.listeners.prefixes().length === 0) this.cursor = from;
      // The reader may still be behind `from`; events up to it happened before this subscription.
      return this.listeners.addSubscription(prefix, (event) => {
        if (this.delivering > from) listener(event);
      });
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.serialChain.then(fn);
    this.serialChain = result.catch(noop);
    return result;
  }

  /** Reads new events unless a read is running, in which case that read goes round once more. */
  private kickPump(): void {
    if (this.phase !== 'open' || this.listeners.prefixes().length === 0) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.serial(async () => {
      try {
        do {
          this.pumpAgain = false;
          await this.readEvents();
        } while (this.pumpAgain && this.phase === 'open');
      } finally {
        // Cleared in the same turn as the last pumpAgain check, so no kick falls in between.
        this.pumping = false;
      }
    }).catch((err: unknown) => {
      if (!this.isClosed()) this.logger.log(`registry event read failed, retrying: ${messageOf(err)}`);
    });
  }

  private async readEvents(): Promise<void> {
    for (;;) {
      const pool = this.pool;
      if (this.phase !== 'open' || !pool || this.listeners.prefixes().length === 0) return;
      const { rows } = await pool.query<{
        id: string;
        type: RegistryEventType;
        key: string;
        value: string | null;
      }>(SQL.events, [this.cursor.toString(), EVENT_BATCH]);
      for (const row of rows) {
        if (this.phase !== 'open') return;
        const id = BigInt(row.id);
        this.cursor = id;
        this.delivering = id;
        const event: RegistryEvent = { type: row.type, key: row.key, value: row.value };
        this.listeners.emit(event);
      }
      if (rows.length < EVENT_BATCH) return;
    }
  }

  // ---------------------------------------------------------------- locks

  async acquireLock(path: string, options?: LockOptions): Promise<RegistryLock> {
    const key = validatePath(path);
    const timeoutMs = validateLockTimeout(options?.timeoutMs);
    this.openPool('acquireLock');
    const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
    const token = randomUUID();
    const gen = this.beginAcquire(key);
    let uncertain = false; // an attempt failed without telling whether it inserted our row
    try {
      for (;;) {
        const pool = this.openPool('acquireLock');
        if (this.sessionLost) {
          throw new RegistryUnavailableError(
            `acquireLock ${key}: the registry session is lost and not yet renewed`,
          );
        }
        const generation = gen.generation;
        const owner = this.clientId;
        let acquired: boolean;
        try {
          uncertain = true;
          const { rows } = await pool.query<{ acquired: boolean }>(SQL.tryLock, [key, owner, token]);
          uncertain = false;
          acquired = rows[0]?.acquired === true;
        } catch (err) {
          throw this.translate('acquireLock', err, owner);
        }
        if (acquired) {
          if (owner === this.clientId && !this.sessionLost && this.phase === 'open') {
            return this.holdLock(key, token);
          }
          // That session ended while we were acquiring, and its locks with it; try again.
          continue;
        }
        const remaining = deadline - performance.now();
        if (remaining <= 0) throw new LockTimeoutError(key, timeoutMs ?? 0);
        await this.waitForLockChange(key, generation, Math.min(remaining, this.lockPollMs));
      }
    } catch (err) {
      if (uncertain) void this.pool?.query(SQL.releaseLock, [key, token]).catch(noop);
      throw err;
    } finally {
      this.endAcquire(key);
    }
  }

  private holdLock(key: string, token: string): RegistryLock {
    const controller = new AbortController();
    const held: HeldLock = { abort: (reason) => controller.abort(new RegistryError(reason)) };
    this.held.add(held);
    let releasing: Promise<void> | undefined;
    let released = false;
    const release = async (): Promise<void> => {
      // After LOST or close the row went with the session; nothing is left to release.
      if (released || controller.signal.aborted) return;
      releasing ??= this.query('release', SQL.releaseLock, [key, token]).then(
        () => {
          released = true;
          this.held.delete(held);
        },
        (err: unknown) => {
          releasing = undefined; // let the caller retry
          throw err;
        },
      );
      return releasing;
    };
    return { path: key, lost: controller.signal, release };
  }

  private abortHeldLocks(reason: string): void {
    const held = [...this.held];
    this.held.clear();
    for (const lock of held) lock.abort(reason);
  }

  private beginAcquire(key: string): { generation: number; acquirers: number } {
    let entry = this.lockGeneration.get(key);
    if (!entry) this.lockGeneration.set(key, (entry = { generation: 0, acquirers: 0 }));
    entry.acquirers++;
    return entry;
  }

  private endAcquire(key: string): void {
    const entry = this.lockGeneration.get(key);
    if (entry && --entry.acquirers === 0) this.lockGeneration.delete(key);
  }

  /** Resolves on a release NOTIFY for key (or one since `generation` was read), after ms, or at close. */
  private waitForLockChange(key: string, generation: number, ms: number): Promise<void> {
    if (this.lockGeneration.get(key)?.generation !== generation || this.phase !== 'open') {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let waiters = this.lockWaiters.get(key);
      if (!waiters) this.lockWaiters.set(key, (waiters = new Set()));
      const set = waiters;
      const done = () => {
        this.clock.clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.lockWaiters.get(key) === set) this.lockWaiters.delete(key);
        resolve();
      };
      const timer = this.clock.setTimeout(done, ms);
      set.add(done);
    });
  }

  private wakeLockWaiters(key: string): void {
    const entry = this.lockGeneration.get(key);
    if (entry) entry.generation++;
    for (const wake of [...(this.lockWaiters.get(key) ?? [])]) wake();
  }

  private wakeAllLockWaiters(): void {
    for (const key of [...this.lockGeneration.keys()]) this.wakeLockWaiters(key);
  }

  /** Waits for p but at most ms; errors are ignored (used only while tearing down). */
  private async settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
    let timer: TimerHandle | undefined;
    await Promise.race([
      p.catch(noop),
      new Promise<void>((resolve) => {
        timer = this.clock.setTimeout(resolve, ms);
        unrefTimer(timer);
      }),
    ]);
    this.clock.clearTimeout(timer);
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.round(Math.min(max, Math.max(min, value)));
}
