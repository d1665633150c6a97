import { DataSource } from 'typeorm';
/**
 * Bounds on every pooled connection. Without them one connection that never answers (a half-open
 * TCP connection, a lock nobody releases) parks its caller forever: a master's consumer loop
 * awaiting it takes no command again and its shutdown waits on it.
 */
export const POOL_LIMITS = {
  /** Connections per node. */
  max: 10,
  /** Waiting for a free pooled connection (or a new one) fails after this. */
  connectionTimeoutMillis: 10_000,
  /** The server cancels any statement running longer (no hot-path statement comes near it). */
  statement_timeout: 60_000,
  /** The server ends a session left idle inside a transaction this long, releasing its locks. */
  idle_in_transaction_session_timeout: 60_000,
  /** TCP keep-alive, so a connection to a vanished server errors instead of hanging. */
  keepAlive: true,
} as const;

/** The TypeORM data source of a node. The schema comes from migrations only, never synchronize. */
export function createDataSource(
  databaseUrl: string,
  applicationName: string,
  limits: Partial<Record<keyof typeof POOL_LIMITS, number | boolean>> = {},
): DataSource {
  return new DataSource({
    type: 'postgres',
    url: databaseUrl,
    // No entities: every query is parameterized SQL (repositories/sql.ts); TypeORM supplies the
    // pool, transactions and the migration runner.
    entities: [],
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra: { ...POOL_LIMITS, ...limits, application_name: applicationName },
  });
}
