import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Priorities (DESIGN.md section 10): a workflow's priority (0 HIGHEST .. 4 LOWEST, 2 MEDIUM) is
 * kept on workflow_definition (the current version's) and copied onto each command when it is
 * written, so that consuming orders by (priority, id) without a join; the index serves that
 * order. Existing rows are MEDIUM.
 */
export class Priority1796000009000 implements MigrationInterface {
  name = 'Priority1796000009000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE workflow_definition
        ADD COLUMN priority smallint NOT NULL DEFAULT 2 CHECK (priority BETWEEN 0 AND 4)`);
    await q.query(`
      ALTER TABLE command ADD COLUMN priority smallint NOT NULL DEFAULT 2 CHECK (priority BETWEEN 0 AND 4)`);
    await q.query('CREATE INDEX command_priority_id_idx ON command (priority, id)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX IF EXISTS command_priority_id_idx');
    await q.query('ALTER TABLE command DROP COLUMN IF EXISTS priority');
    await q.query('ALTER TABLE workflow_definition DROP COLUMN IF EXISTS priority');
  }
}
