import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * How long an instance has spent paused, in ms: added on each resume (from the PAUSE end_time to
 * the resume), reset by a re-run. The workflow's timeoutMs counts running time only, so the time
 * a run waited paused is taken off what it has used.
 */
export class InstancePausedTime1796000003000 implements MigrationInterface {
  name = 'InstancePausedTime1796000003000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE workflow_instance ADD COLUMN paused_ms bigint NOT NULL DEFAULT 0');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE workflow_instance DROP COLUMN IF EXISTS paused_ms');
  }
}
