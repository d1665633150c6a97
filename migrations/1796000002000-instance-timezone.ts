import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The time zone a run's date built-ins (`${porpoise.bizDate}`, `$[yyyyMMdd-1]`, ...) are computed
 * in: a scheduled run takes its schedule's, a child its parent's, a manual run UTC.
 */
export class InstanceTimezone1796000002000 implements MigrationInterface {
  name = 'InstanceTimezone1796000002000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE workflow_instance ADD COLUMN timezone text NOT NULL DEFAULT 'UTC'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE workflow_instance DROP COLUMN IF EXISTS timezone');
  }
}
