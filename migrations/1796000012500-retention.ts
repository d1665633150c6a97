import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Retention (DESIGN.md section 11, Bounds): the masters' sweep deletes ended instances older than
 * RETENTION_DAYS, oldest end first, a batch per statement, and idempotency keys after 24 hours.
 * Each batch reads its victims by an index on exactly what it compares, so a batch costs the
 * same with 100 or 10 million rows kept.
 */
export class Retention1796000012500 implements MigrationInterface {
  name = 'Retention1796000012500';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE INDEX workflow_instance_ended_idx ON workflow_instance (end_time)
      WHERE state IN ('SUCCESS', 'FAILURE', 'STOP')`);
    await q.query('CREATE INDEX idempotency_key_created_idx ON idempotency_key (created_at)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX IF EXISTS idempotency_key_created_idx');
    await q.query('DROP INDEX IF EXISTS workflow_instance_ended_idx');
  }
}
