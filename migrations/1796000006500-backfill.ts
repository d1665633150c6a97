import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Backfill (DESIGN.md section 10): one run per cron fire time of a date range, at most
 * `parallelism` at once, in order.
 *
 * - `backfill`: the request and its state (RUNNING until nothing is left to create and nothing
 *   created is active, then SUCCESS or FAILURE; CANCELLED by a cancel).
 * - `backfill_run`: one row per fire time, written all at once by the POST (so thousands of dates
 *   are one INSERT and no instance). `seq` is the order in which runs are created (ASC or DESC
 *   by time, chosen at POST). A master's advance assigns `workflow_instance_id` to the next
 *   lowest-seq rows under the backfill's row lock; the primary key, UNIQUE (backfill_id,
 *   schedule_time) and UNIQUE (workflow_instance_id) make a date impossible to create twice.
 *   No foreign key to workflow_instance: a pruned instance must not make its date look unassigned.
 * - `workflow_instance.backfill_id`: which backfill created the instance (no foreign key, like
 *   the history it is). The partial index holds only a backfill's not-finished instances, so the
 *   advance counts the active ones without reading the thousands that ended.
 * - An insert of a backfill NOTIFYs porpoise_backfill with `{"id": n, "code": "..."}` at commit,
 *   so a master advances it at once (the masters also sweep RUNNING backfills periodically).
 */
export class Backfill1796000006500 implements MigrationInterface {
  name = 'Backfill1796000006500';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE backfill (
        id bigserial PRIMARY KEY,
        workflow_code text NOT NULL REFERENCES workflow_definition (code),
        cron text NOT NULL,
        timezone text NOT NULL,
        params jsonb NOT NULL DEFAULT '{}',
        parallelism integer NOT NULL CHECK (parallelism BETWEEN 1 AND 100),
        order_dir text NOT NULL CHECK (order_dir IN ('ASC', 'DESC')),
        range_start timestamptz NOT NULL,
        range_end timestamptz NOT NULL,
        total integer NOT NULL CHECK (total >= 1),
        state text NOT NULL DEFAULT 'RUNNING' CHECK (state IN ('RUNNING', 'SUCCESS', 'FAILURE', 'CANCELLED')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        end_time timestamptz
      )`);
    await q.query(`CREATE INDEX backfill_running_idx ON backfill (id) WHERE state = 'RUNNING'`);
    await q.query('CREATE INDEX backfill_workflow_idx ON backfill (workflow_code, id DESC)');
    await q.query(`
      CREATE TABLE backfill_run (
        backfill_id bigint NOT NULL REFERENCES backfill (id) ON DELETE CASCADE,
        seq integer NOT NULL,
        schedule_time timestamptz NOT NULL,
        workflow_instance_id bigint UNIQUE,
        created_by text,
        assigned_at timestamptz,
        PRIMARY KEY (backfill_id, seq),
        UNIQUE (backfill_id, schedule_time)
      )`);
    await q.query(`
      CREATE INDEX backfill_run_unassigned_idx ON backfill_run (backfill_id, seq)
      WHERE workflow_instance_id IS NULL`);
    await q.query('ALTER TABLE workflow_instance ADD COLUMN backfill_id bigint');
    await q.query(`
      CREATE INDEX workflow_instance_backfill_active_idx ON workflow_instance (backfill_id)
      WHERE backfill_id IS NOT NULL AND state NOT IN ('SUCCESS', 'FAILURE', 'STOP')`);
    await q.query(`
      CREATE FUNCTION backfill_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('porpoise_backfill', json_build_object('id', NEW.id, 'code', NEW.workflow_code)::text);
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER backfill_notify_trigger AFTER INSERT ON backfill
      FOR EACH ROW EXECUTE FUNCTION backfill_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER IF EXISTS backfill_notify_trigger ON backfill');
    await q.query('DROP FUNCTION IF EXISTS backfill_notify()');
    await q.query('DROP INDEX IF EXISTS workflow_instance_backfill_active_idx');
    await q.query('ALTER TABLE workflow_instance DROP COLUMN IF EXISTS backfill_id');
    await q.query('DROP TABLE IF EXISTS backfill_run');
    await q.query('DROP TABLE IF EXISTS backfill');
  }
}
