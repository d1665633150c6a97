import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Schedules (DESIGN.md section 10): a schedule's run params, its [start_time, end_time] window,
 * enabled (PATCH { enabled: false } pauses it), its misfire policy and a revision that every PATCH
 * bumps (a master that read the schedule before the PATCH cannot fire with the old cron).
 *
 * schedule_fire is the ledger of fire times: its primary key (schedule_id, fire_time) is the
 * contract's unique key, so a fire time runs at most once whatever happens to the cursor
 * (next_fire_time). A fire time missed while no master ran and not run under the misfire policy
 * is recorded MISFIRE_SKIPPED. The ledger outlives pruned instances (workflow_instance_id SET
 * NULL). workflow_instance.schedule_id says which schedule started a run (no foreign key: deleting
 * a schedule keeps its runs' history).
 */
export class Schedules1796000005000 implements MigrationInterface {
  name = 'Schedules1796000005000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE schedule
        ADD COLUMN params jsonb NOT NULL DEFAULT '{}',
        ADD COLUMN start_time timestamptz,
        ADD COLUMN end_time timestamptz,
        ADD COLUMN enabled boolean NOT NULL DEFAULT true,
        ADD COLUMN misfire_policy text NOT NULL DEFAULT 'RUN_ONCE'
          CHECK (misfire_policy IN ('RUN_ONCE', 'SKIP', 'RUN_ALL')),
        ADD COLUMN revision integer NOT NULL DEFAULT 0,
        ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()`);
    await q.query(`
      CREATE TABLE schedule_fire (
        schedule_id bigint NOT NULL REFERENCES schedule (id) ON DELETE CASCADE,
        fire_time timestamptz NOT NULL,
        workflow_instance_id bigint REFERENCES workflow_instance (id) ON DELETE SET NULL,
        outcome text NOT NULL CHECK (outcome IN ('FIRED', 'MISFIRE_SKIPPED')),
        -- The database time the fire was planned at: the time was a misfire (late) iff
        -- fire_time < decided_at - SCHEDULE_MISFIRE_THRESHOLD_MS.
        decided_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (schedule_id, fire_time)
      )`);
    await q.query('CREATE INDEX schedule_fire_instance_idx ON schedule_fire (workflow_instance_id)');
    await q.query('ALTER TABLE workflow_instance ADD COLUMN schedule_id bigint');
    await q.query('CREATE INDEX schedule_due_idx ON schedule (next_fire_time) WHERE enabled');
    // A new or changed schedule wakes the masters' fire loops (they also look every second).
    // Not on a fire (the cursor moves, the revision stays): that would wake every master each time.
    await q.query(`
      CREATE FUNCTION schedule_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('porpoise_schedule', NEW.id::text);
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER schedule_notify_insert_trigger AFTER INSERT ON schedule
      FOR EACH ROW EXECUTE FUNCTION schedule_notify()`);
    await q.query(`
      CREATE TRIGGER schedule_notify_update_trigger AFTER UPDATE ON schedule
      FOR EACH ROW WHEN (OLD.revision IS DISTINCT FROM NEW.revision) EXECUTE FUNCTION schedule_notify()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER IF EXISTS schedule_notify_insert_trigger ON schedule');
    await q.query('DROP TRIGGER IF EXISTS schedule_notify_update_trigger ON schedule');
    await q.query('DROP FUNCTION IF EXISTS schedule_notify()');
    await q.query('DROP INDEX IF EXISTS schedule_due_idx');
    await q.query('ALTER TABLE workflow_instance DROP COLUMN IF EXISTS schedule_id');
    await q.query('DROP TABLE IF EXISTS schedule_fire');
    await q.query(`
      ALTER TABLE schedule
        DROP COLUMN IF EXISTS params, DROP COLUMN IF EXISTS start_time, DROP COLUMN IF EXISTS end_time,
        DROP COLUMN IF EXISTS enabled, DROP COLUMN IF EXISTS misfire_policy,
        DROP COLUMN IF EXISTS revision, DROP COLUMN IF EXISTS updated_at`);
  }
}
