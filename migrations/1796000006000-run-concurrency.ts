import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Run concurrency per workflow (DESIGN.md section 10, README "Run concurrency"):
 * - workflow_definition gets the current version's `concurrency` denormalised (policy and
 *   maxRuns), written by POST/PUT /workflows, so the run gate decides in SQL without reading
 *   the version's settings jsonb. A workflow is *limited* when its policy is not PARALLEL or it
 *   has max_runs.
 * - workflow_instance.wait_seq: the run's place in its workflow's queue, taken from
 *   command_id_seq when it enters SERIAL_WAIT (a resubmitted old instance gets a new one, so it
 *   does not jump the queue). It is also the id of the command the gate writes when it admits
 *   the run, which makes the commandId the trigger answered with the real one.
 * - workflow_instance_gate_idx: the gate counts the active runs and walks the waiters of one
 *   workflow in wait_seq order; the sweep finds the workflows with waiters.
 * - A run entering SERIAL_WAIT NOTIFYs porpoise_gate with its workflow code (at commit), so a
 *   master runs a gate pass for it at once.
 */
export class RunConcurrency1796000006000 implements MigrationInterface {
  name = 'RunConcurrency1796000006000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE workflow_definition
        ADD COLUMN concurrency_policy text NOT NULL DEFAULT 'PARALLEL'
          CHECK (concurrency_policy IN ('PARALLEL', 'SERIAL_WAIT', 'SERIAL_DISCARD')),
        ADD COLUMN max_runs integer CHECK (max_runs BETWEEN 1 AND 10000),
        ADD CONSTRAINT workflow_definition_max_runs_parallel
          CHECK (max_runs IS NULL OR concurrency_policy = 'PARALLEL')`);
    await q.query('ALTER TABLE workflow_instance ADD COLUMN wait_seq bigint');
    await q.query(`
      CREATE INDEX workflow_instance_gate_idx ON workflow_instance (workflow_code, wait_seq)
      WHERE state IN ('SERIAL_WAIT', 'SUBMITTED_SUCCESS', 'RUNNING_EXECUTION', 'READY_PAUSE', 'READY_STOP')`);
    await q.query(`
      CREATE FUNCTION workflow_instance_gate_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM NEW.state THEN
          PERFORM pg_notify('porpoise_gate', NEW.workflow_code);
        END IF;
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER workflow_instance_gate_notify_trigger
      AFTER INSERT OR UPDATE OF state ON workflow_instance
      FOR EACH ROW
      WHEN (NEW.state = 'SERIAL_WAIT')
      EXECUTE FUNCTION workflow_instance_gate_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER IF EXISTS workflow_instance_gate_notify_trigger ON workflow_instance');
    await q.query('DROP FUNCTION IF EXISTS workflow_instance_gate_notify()');
    await q.query('DROP INDEX IF EXISTS workflow_instance_gate_idx');
    await q.query('ALTER TABLE workflow_instance DROP COLUMN IF EXISTS wait_seq');
    await q.query(`
      ALTER TABLE workflow_definition
        DROP CONSTRAINT IF EXISTS workflow_definition_max_runs_parallel,
        DROP COLUMN IF EXISTS max_runs,
        DROP COLUMN IF EXISTS concurrency_policy`);
  }
}
