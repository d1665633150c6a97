import { startPostgres, type TestServer } from '@porpoise/test-harness';
import type { DataSource } from 'typeorm';
import { createDataSource, firstRow, POOL_LIMITS, queryRows } from '../src';

describe('createDataSource pool limits', () => {
  let pg: TestServer;
  let source: DataSource;
  beforeAll(async () => {
    pg = await startPostgres();
    source = createDataSource(pg.endpoint, 'pool-limits-test');
    await source.initialize();
  });
  afterAll(async () => {
    await source?.destroy();
    await pg?.dispose();
  });

  it('sets the statement and idle-in-transaction timeouts on every pooled session', async () => {
    const rows = await queryRows<{ statement: string; idle: string; app: string }>(
      source,
      `SELECT extract(epoch FROM current_setting('statement_timeout')::interval) * 1000 AS statement,
              extract(epoch FROM current_setting('idle_in_transaction_session_timeout')::interval) * 1000 AS idle,
              current_setting('application_name') AS app`,
    );
    const row = firstRow(rows, 'session settings');
    expect({ statement: Number(row.statement), idle: Number(row.idle), app: row.app }).toEqual({
      statement: POOL_LIMITS.statement_timeout,
      idle: POOL_LIMITS.idle_in_transaction_session_timeout,
      app: 'pool-limits-test',
    });
  });

  it('cancels a statement that outlives statement_timeout instead of waiting forever', async () => {
    const runner = source.createQueryRunner();
    try {
      await runner.query('SET statement_timeout = 200');
      await expect(runner.query('SELECT pg_sleep(5)')).rejects.toThrow(/statement timeout/);
    } finally {
      await runner.query('RESET statement_timeout').catch(() => undefined);
      await runner.release();
    }
  });

  it('fails a caller waiting for a pooled connection after connectionTimeoutMillis', async () => {
    // One connection and a short wait, so the test can hold the only one.
    const small = createDataSource(pg.endpoint, 'pool-wait-test', { max: 1, connectionTimeoutMillis: 300 });
    await small.initialize();
    const holder = small.createQueryRunner();
    try {
      await holder.connect();
      await expect(queryRows(small, 'SELECT 1')).rejects.toThrow(/timeout/i);
    } finally {
      await holder.release();
      await small.destroy();
    }
  });
});
