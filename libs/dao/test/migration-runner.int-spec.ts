import { Client } from 'pg';
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { MIGRATIONS } from '@porpoise/migrations';
import { runMigrations } from '../src';

describe('runMigrations', () => {
  let pg: TestServer;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    await pg?.dispose();
  });

  it('applies every migration exactly once when five nodes start at the same moment', async () => {
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => runMigrations(pg.endpoint)));
    const applied = results.flatMap((r) => r.applied);
    expect(applied).toHaveLength(MIGRATIONS.length);
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);

    const c = new Client({ connectionString: pg.endpoint });
    await c.connect();
    try {
      const rows = await c.query<{ name: string }>('SELECT name FROM porpoise_migrations ORDER BY id');
      expect(rows.rows.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => new m().name));
      // The advisory lock is not left behind.
      const locks = await c.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory'");
      expect(locks.rowCount).toBe(0);
    } finally {
      await c.end();
    }
    expect((await runMigrations(pg.endpoint)).applied).toEqual([]);
  });
});
