import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Two indexes found missing by the scale benchmark (docs/benchmarks.md, "Scale"); no behaviour
 * changes.
 * - workflow_instance (workflow_code, state, id DESC): GET /workflow-instances with both
 *   workflowCode and state. Each of the two single-column indexes finds many rows the other
 *   filter drops: the count ANDed two bitmaps and read the heap, the page walked the state
 *   index. With it the count is an index-only scan of the matching rows and the page an
 *   index scan in id order.
 * - command (workflow_instance_id): the commands of one instance (a diagnosis of a run waiting
 *   for a master, the delete of a stopped run's command, the cascade from workflow_instance)
 *   were a sequential scan of the whole command table, as long as the backlog is.
 */
export class ListAndBacklogIndexes1796000004000 implements MigrationInterface {
  name = 'ListAndBacklogIndexes1796000004000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      'CREATE INDEX workflow_instance_code_state_idx ON workflow_instance (workflow_code, state, id DESC)',
    );
    await q.query('CREATE INDEX command_workflow_instance_idx ON command (workflow_instance_id)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX IF EXISTS command_workflow_instance_idx');
    await q.query('DROP INDEX IF EXISTS workflow_instance_code_state_idx');
  }
}
