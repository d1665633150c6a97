import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '@porpoise/migrations';

/** Every node takes this advisory lock before migrating, so nodes starting together cannot race. */
export const MIGRATION_LOCK_KEY = 0x706f7270; // "porp"

export interface MigrationResult {
  /** Names of the migrations this call applied; empty when the schema was already current. */
  readonly applied: string[];
}

/**
 * Brings the schema up to date with the migrations in migrations/, one transaction each,
 * while holding pg_advisory_lock on a dedicated connection. Safe to call from every node at
 * start: the first one migrates, the others wait and then find nothing to do.
 */
export async function runMigrations(databaseUrl: string): Promise<MigrationResult> {
  const lockClient = new Client({ connectionString: databaseUrl, application_name: 'porpoise-migrate-lock' });
  await lockClient.connect();
  try {
    await lockClient.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const dataSource = new DataSource({
      type: 'postgres',
      url: databaseUrl,
      migrations: MIGRATIONS,
      migrationsTableName: 'porpoise_migrations',
      migrationsTransactionMode: 'each',
      synchronize: false,
      logging: false,
      extra: { max: 1, application_name: 'porpoise-migrate' },
    });
    await dataSource.initialize();
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      return { applied: applied.map((m) => m.name) };
    } finally {
      await dataSource.destroy();
    }
  } finally {
    await lockClient.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await lockClient.end();
  }
}

/** The migrations in migrations/ that the database has not applied yet, oldest first. */
export async function pendingMigrations(databaseUrl: string): Promise<string[]> {
  const client = new Client({ connectionString: databaseUrl, application_name: 'porpoise-schema-check' });
  await client.connect();
  try {
    const table = await client.query<{ found: string | null }>(
      "SELECT to_regclass('porpoise_migrations')::text AS found",
    );
    const applied = new Set<string>();
    if (table.rows[0]?.found) {
      const rows = await client.query<{ name: string }>('SELECT name FROM porpoise_migrations');
      for (const row of rows.rows) applied.add(row.name);
    }
    return MIGRATIONS.map((M) => new M().name ?? M.name).filter((name) => !applied.has(name));
  } finally {
    await client.end();
  }
}
