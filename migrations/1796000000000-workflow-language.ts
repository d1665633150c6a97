import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The workflow language (DESIGN.md section 9): workflow-level settings, task outputs, retry and
 * fault-rerun budgets counted in the database (so failovers cannot reset them), the retry due
 * time on the database's clock, sub-workflow links (one child per parent task attempt: a unique
 * key, not luck), an instance's failure message, and data sources for SQL tasks.
 */
export class WorkflowLanguage1796000000000 implements MigrationInterface {
  name = 'WorkflowLanguage1796000000000';

  async up(q: QueryRunner): Promise<void> {
    // params, failureStrategy, timeoutMs (and later issues' fields) of a definition version.
    await q.query(`ALTER TABLE workflow_definition_version ADD COLUMN settings jsonb NOT NULL DEFAULT '{}'`);
    await q.query(`
      ALTER TABLE task_instance
        ADD COLUMN outputs jsonb NOT NULL DEFAULT '{}',
        ADD COLUMN retries_used integer NOT NULL DEFAULT 0,
        ADD COLUMN fault_reruns integer NOT NULL DEFAULT 0,
        ADD COLUMN retry_due_at timestamptz`);
    await q.query(`
      ALTER TABLE workflow_instance
        ADD COLUMN parent_instance_id bigint REFERENCES workflow_instance (id) ON DELETE SET NULL,
        ADD COLUMN parent_task_instance_id bigint,
        ADD COLUMN message text`);
    await q.query(`
      CREATE UNIQUE INDEX workflow_instance_parent_task_uidx ON workflow_instance (parent_task_instance_id)
      WHERE parent_task_instance_id IS NOT NULL`);
    await q.query(`
      CREATE INDEX workflow_instance_parent_idx ON workflow_instance (parent_instance_id)
      WHERE parent_instance_id IS NOT NULL`);
    await q.query(`
      CREATE TABLE datasource (
        name text PRIMARY KEY,
        type text NOT NULL,
        -- The URL without its password, for answers and logs.
        url_redacted text NOT NULL,
        -- The whole URL, encrypted (AES-256-GCM: iv || tag || ciphertext) with the node's key.
        url_encrypted bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE IF EXISTS datasource');
    await q.query('DROP INDEX IF EXISTS workflow_instance_parent_idx');
    await q.query('DROP INDEX IF EXISTS workflow_instance_parent_task_uidx');
    await q.query(`
      ALTER TABLE workflow_instance
        DROP COLUMN IF EXISTS message,
        DROP COLUMN IF EXISTS parent_task_instance_id,
        DROP COLUMN IF EXISTS parent_instance_id`);
    await q.query(`
      ALTER TABLE task_instance
        DROP COLUMN IF EXISTS retry_due_at,
        DROP COLUMN IF EXISTS fault_reruns,
        DROP COLUMN IF EXISTS retries_used,
        DROP COLUMN IF EXISTS outputs`);
    await q.query('ALTER TABLE workflow_definition_version DROP COLUMN IF EXISTS settings');
  }
}
