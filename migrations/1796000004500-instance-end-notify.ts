import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Scheduling (DESIGN.md section 10) waits on other runs ending: a SERIAL_WAIT run on the one
 * before it, a backfill on its running dates, a DEPENDENT task on another workflow's run. Each
 * waiter is on some master, usually not the one that drives the run that ends, so an instance that
 * reaches PAUSE, STOP, FAILURE or SUCCESS NOTIFYs porpoise_instance_end with
 * `{"id": <instance id>, "code": "<workflow code>"}`. A trigger, as for sub-workflows, because
 * runs end on many paths. Sent at commit; a listener that reconnects may miss some, so every
 * waiter also has its own periodic check.
 */
export class InstanceEndNotify1796000004500 implements MigrationInterface {
  name = 'InstanceEndNotify1796000004500';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION workflow_instance_end_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        -- UPDATE OF state also fires when state is set to its own value: only a change counts.
        IF TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM NEW.state THEN
          PERFORM pg_notify('porpoise_instance_end',
                            json_build_object('id', NEW.id, 'code', NEW.workflow_code)::text);
        END IF;
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER workflow_instance_end_notify_trigger
      AFTER INSERT OR UPDATE OF state ON workflow_instance
      FOR EACH ROW
      WHEN (NEW.state IN ('SUCCESS', 'FAILURE', 'STOP', 'PAUSE'))
      EXECUTE FUNCTION workflow_instance_end_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER IF EXISTS workflow_instance_end_notify_trigger ON workflow_instance');
    await q.query('DROP FUNCTION IF EXISTS workflow_instance_end_notify()');
  }
}
