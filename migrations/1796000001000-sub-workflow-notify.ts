import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A SUB_WORKFLOW task ends with its child instance's state (DESIGN.md section 9), but the child is
 * driven by whichever master took its command, usually not the parent's. So that the parent's
 * master learns at once, without polling every child, a child instance (parent_instance_id set)
 * that reaches a final state (SUCCESS, FAILURE, STOP, PAUSE) NOTIFYs porpoise_instance_control with
 * the PARENT's id: the channel on which a master already re-reads an instance it drives (the
 * API's stop/pause requests); it then reads its children (SubWorkflowRepository.childStates).
 * A trigger, not code in each writer, because children end on many paths (their own master, the
 * API's stop of a paused or submitted child, a stop of the parent's tree) and none may forget it.
 * The NOTIFY is sent at commit, so the parent's master never reads a state not yet visible. It
 * fires on INSERT too: a child started under a parent that is already stopping or pausing is
 * inserted final. A missed notification (the parent's master restarting) is covered by the
 * master reading childStates when it adopts the parent.
 */
export class SubWorkflowNotify1796000001000 implements MigrationInterface {
  name = 'SubWorkflowNotify1796000001000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION workflow_instance_child_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        -- UPDATE OF state also fires when state is set to its own value: only a change counts.
        IF TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM NEW.state THEN
          PERFORM pg_notify('porpoise_instance_control', NEW.parent_instance_id::text);
        END IF;
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER workflow_instance_child_notify_trigger
      AFTER INSERT OR UPDATE OF state ON workflow_instance
      FOR EACH ROW
      WHEN (NEW.parent_instance_id IS NOT NULL AND NEW.state IN ('SUCCESS', 'FAILURE', 'STOP', 'PAUSE'))
      EXECUTE FUNCTION workflow_instance_child_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER IF EXISTS workflow_instance_child_notify_trigger ON workflow_instance');
    await q.query('DROP FUNCTION IF EXISTS workflow_instance_child_notify()');
  }
}
