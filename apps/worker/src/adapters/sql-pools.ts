import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Client, Pool } from 'pg';
import { CLOCK, type Clock } from '@porpoise/common';
import { redactUrl, scrub } from '../domain/redact';

/** Connections per data source URL: SQL tasks of one source queue for these. */
export const SQL_POOL_MAX_CONNECTIONS = 4;
/** Pools kept at once; the least recently used idle one is closed to make room. */
export const SQL_POOL_MAX_POOLS = 16;
/** An idle connection is closed after this long. */
export const SQL_POOL_IDLE_MS = 30_000;
/** Connecting gives up after this long (the task then fails). */
export const SQL_CONNECT_TIMEOUT_MS = 10_000;
/** At shutdown, how long to wait for the pools' connections to close. */
const SHUTDOWN_WAIT_MS = 5_000;

/**
 * The worker's connections to the data sources of SQL tasks: one bounded pool per URL, few pools
 * (least recently used first out), all closed at shutdown. A URL carries its password, so it is a
 * key here and never appears in a log or a message (redactUrl).
 */
@Injectable()
export class SqlPools implements OnApplicationShutdown {
  private readonly logger = new Logger('WorkerSql');
  /** In use order: the first entry is the least recently used. */
  private readonly pools = new Map<string, Pool>();
  private closed = false;

  constructor(@Inject(CLOCK) private readonly clock: Clock) {}

  get size(): number {
    return this.pools.size;
  }

  /** The pool of a URL, created on first use. */
  pool(url: string): Pool {
    if (this.closed) throw new Error('the worker is stopping');
    let pool = this.pools.get(url);
    if (pool) {
      this.pools.delete(url);
    } else {
      pool = this.create(url);
      this.evict();
    }
    this.pools.set(url, pool);
    return pool;
  }

  /**
   * Asks the server to cancel what a connection runs (pg_cancel_backend, on a connection of its
   * own: the pool's may all be busy). Best effort; never rejects.
   */
  async cancel(url: string, backendPid: number): Promise<void> {
    const client = new Client({ connectionString: url, connectionTimeoutMillis: SQL_CONNECT_TIMEOUT_MS });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT pg_cancel_backend($1)', [backendPid]);
    } catch (err) {
      this.logger.warn(
        `cannot cancel a statement on ${redactUrl(url)}: ${scrub((err as Error).message, password(url))}`,
      );
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    const ends = [...this.pools.values()].map((p) => p.end().catch(() => undefined));
    this.pools.clear();
    await Promise.race([Promise.all(ends), this.clock.sleep(SHUTDOWN_WAIT_MS)]);
  }

  private create(url: string): Pool {
    const pool = new Pool({
      connectionString: url,
      max: SQL_POOL_MAX_CONNECTIONS,
      idleTimeoutMillis: SQL_POOL_IDLE_MS,
      connectionTimeoutMillis: SQL_CONNECT_TIMEOUT_MS,
      allowExitOnIdle: true,
    });
    // An idle connection that breaks (the server restarted) must not crash the worker.
    pool.on('error', (err) => {
      this.logger.warn(
        `an idle connection to ${redactUrl(url)} failed: ${scrub(err.message, password(url))}`,
      );
    });
    return pool;
  }

  /** Closes least recently used pools with no connection in use while there are too many. */
  private evict(): void {
    for (const [url, pool] of this.pools) {
      if (this.pools.size < SQL_POOL_MAX_POOLS) return;
      if (pool.totalCount - pool.idleCount > 0 || pool.waitingCount > 0) continue;
      this.pools.delete(url);
      void pool.end().catch(() => undefined);
    }
  }
}

/** The password of a URL (to scrub from messages), if it has one. */
export function password(url: string): string | undefined {
  try {
    const p = new URL(url).password;
    return p ? decodeURIComponent(p) : undefined;
  } catch {
    return undefined;
  }
}
