import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Task groups (DESIGN.md section 10): across the cluster at most `capacity` tasks of a group run
 * at once, first come first served, held across failover.
 *
 * - task_group: the groups (POST /task-groups).
 * - task_group_queue: one row per attempt of a grouped task that asked for a slot. slot_no NULL:
 *   waiting; else the slot it holds. UNIQUE (task_group, slot_no) (NULLs are distinct) plus
 *   slot_no < capacity at grant time make an over-grant a constraint error, never a silent bug.
 *   Slots are granted only by the grant pass (TaskGroupRepository.grantPass), which locks the
 *   task_group row first (FOR NO KEY UPDATE: the FK's KEY SHARE of queue inserts is not blocked),
 *   then decides in a new statement, so deciders on several masters are serialised.
 * - task_instance.task_group: set when the attempt is created, so the release trigger below is
 *   filtered by its WHEN and costs ungrouped tasks nothing.
 * - Release: when a grouped attempt reaches a state in which it no longer runs, its queue row is
 *   deleted in the same transaction, and porpoise_task_group is NOTIFYed with the group name (the
 *   masters with waiters run a grant pass). Every path that ends an attempt (a worker result, the
 *   NEED_FAULT_TOLERANCE of a lost worker, stop, pause, a retry's DELAY_EXECUTION) frees its slot.
 * - Grant: a queue row that gets a slot NOTIFYs porpoise_instance_control with its instance id,
 *   the channel the owning master's runner already reads.
 */
export class TaskGroups1796000007000 implements MigrationInterface {
  name = 'TaskGroups1796000007000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE task_group (
        name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
        capacity integer NOT NULL CHECK (capacity >= 0),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE task_group_queue (
        id bigserial PRIMARY KEY,
        task_group text NOT NULL REFERENCES task_group (name) ON DELETE RESTRICT,
        task_instance_id bigint NOT NULL UNIQUE REFERENCES task_instance (id) ON DELETE CASCADE,
        workflow_instance_id bigint NOT NULL,
        slot_no integer CHECK (slot_no >= 0),
        requested_at timestamptz NOT NULL DEFAULT now(),
        granted_at timestamptz,
        UNIQUE (task_group, slot_no)
      )`);
    // The grant pass walks a group's waiters oldest first.
    await q.query(`
      CREATE INDEX task_group_queue_waiting_idx ON task_group_queue (task_group, id) WHERE slot_no IS NULL`);
    await q.query(`CREATE INDEX task_group_queue_instance_idx ON task_group_queue (workflow_instance_id)`);
    await q.query(`ALTER TABLE task_instance ADD task_group text`);
    await q.query(`
      CREATE FUNCTION task_group_release() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM task_group_queue WHERE task_instance_id = NEW.id;
        IF FOUND THEN
          PERFORM pg_notify('porpoise_task_group', NEW.task_group);
        END IF;
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER task_group_release_trigger
      AFTER UPDATE OF state ON task_instance
      FOR EACH ROW
      WHEN (NEW.task_group IS NOT NULL AND OLD.state IS DISTINCT FROM NEW.state
            AND NEW.state IN ('SUCCESS', 'FAILURE', 'KILL', 'PAUSE', 'SKIPPED', 'NEED_FAULT_TOLERANCE',
                              'DELAY_EXECUTION'))
      EXECUTE FUNCTION task_group_release()`);
    await q.query(`
      CREATE FUNCTION task_group_grant_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('porpoise_instance_control', NEW.workflow_instance_id::text);
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER task_group_grant_notify_trigger
      AFTER UPDATE OF slot_no ON task_group_queue
      FOR EACH ROW
      WHEN (NEW.slot_no IS NOT NULL AND OLD.slot_no IS NULL)
      EXECUTE FUNCTION task_group_grant_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER IF EXISTS task_group_grant_notify_trigger ON task_group_queue');
    await q.query('DROP FUNCTION IF EXISTS task_group_grant_notify()');
    await q.query('DROP TRIGGER IF EXISTS task_group_release_trigger ON task_instance');
    await q.query('DROP FUNCTION IF EXISTS task_group_release()');
    await q.query('ALTER TABLE task_instance DROP COLUMN IF EXISTS task_group');
    await q.query('DROP TABLE IF EXISTS task_group_queue');
    await q.query('DROP TABLE IF EXISTS task_group');
  }
}
