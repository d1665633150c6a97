import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The epoch of the master that last wrote a task row (its fence, DESIGN.md section 6), so that an
 * audit of the row's changes shows a stale master's write: a writer_epoch older than the
 * instance's epoch at the time of the write. NULL: written outside a master's fence (a stop of a
 * paused tree), or before this column existed. Nothing reads it to decide anything.
 */
export class TaskWriterEpoch1796000013500 implements MigrationInterface {
  name = 'TaskWriterEpoch1796000013500';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE task_instance ADD COLUMN writer_epoch bigint');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE task_instance DROP COLUMN IF EXISTS writer_epoch');
  }
}
