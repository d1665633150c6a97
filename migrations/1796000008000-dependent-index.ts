import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A DEPENDENT task (DESIGN.md section 9) looks for the runs of another workflow whose schedule
 * time (a manual run's: its start time) falls in a window, again every checkIntervalMs and each
 * time a run of that workflow ends: an index on exactly the expression it compares, so a check
 * reads the runs of that window and no others, however long the workflow's history.
 */
export class DependentIndex1796000008000 implements MigrationInterface {
  name = 'DependentIndex1796000008000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX workflow_instance_code_schedule_idx
       ON workflow_instance (workflow_code, (coalesce(schedule_time, start_time)), id)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX IF EXISTS workflow_instance_code_schedule_idx');
  }
}
