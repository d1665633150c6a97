import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Workflow definitions (versioned), commands, workflow and task instances, schedules and
 * idempotency keys. Indexes follow the hot queries: command consumption by id slot,
 * failover by host, instance listing by workflow and state, tasks by instance.
 */
export class WorkflowTables1795307647000 implements MigrationInterface {
  name = 'WorkflowTables1795307647000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE workflow_definition (
        code text PRIMARY KEY,
        name text NOT NULL,
        description text NOT NULL DEFAULT '',
        version integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE workflow_definition_version (
        code text NOT NULL REFERENCES workflow_definition (code) ON DELETE CASCADE,
        version integer NOT NULL,
        name text NOT NULL,
        description text NOT NULL DEFAULT '',
        tasks jsonb NOT NULL,
        edges jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (code, version)
      )`);
    await q.query(`
      CREATE TABLE workflow_instance (
        id bigserial PRIMARY KEY,
        workflow_code text NOT NULL REFERENCES workflow_definition (code),
        workflow_version integer NOT NULL,
        state text NOT NULL,
        host text,
        epoch bigint NOT NULL DEFAULT 0,
        command_type text NOT NULL,
        params jsonb NOT NULL DEFAULT '{}',
        schedule_time timestamptz,
        start_time timestamptz,
        end_time timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query('CREATE INDEX workflow_instance_code_idx ON workflow_instance (workflow_code, id DESC)');
    await q.query('CREATE INDEX workflow_instance_state_idx ON workflow_instance (state, id DESC)');
    // Failover looks for unfinished instances by owning host.
    await q.query(`
      CREATE INDEX workflow_instance_host_idx ON workflow_instance (host)
      WHERE state NOT IN ('SUCCESS', 'FAILURE', 'STOP', 'PAUSE')`);
    await q.query(`
      CREATE TABLE command (
        id bigserial PRIMARY KEY,
        type text NOT NULL,
        workflow_code text NOT NULL,
        workflow_version integer NOT NULL,
        workflow_instance_id bigint NOT NULL REFERENCES workflow_instance (id) ON DELETE CASCADE,
        params jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE task_instance (
        id bigserial PRIMARY KEY,
        workflow_instance_id bigint NOT NULL REFERENCES workflow_instance (id) ON DELETE CASCADE,
        name text NOT NULL,
        state text NOT NULL,
        host text,
        attempt integer NOT NULL DEFAULT 1,
        start_time timestamptz,
        end_time timestamptz,
        exit_code integer,
        log_path text,
        message text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (workflow_instance_id, name, attempt)
      )`);
    // Worker failover looks for unfinished tasks by worker.
    await q.query(`
      CREATE INDEX task_instance_host_idx ON task_instance (host)
      WHERE state IN ('DISPATCH', 'RUNNING_EXECUTION')`);
    await q.query(`
      CREATE TABLE schedule (
        id bigserial PRIMARY KEY,
        workflow_code text NOT NULL REFERENCES workflow_definition (code) ON DELETE CASCADE,
        cron text NOT NULL,
        timezone text NOT NULL DEFAULT 'UTC',
        next_fire_time timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE idempotency_key (
        key text NOT NULL,
        workflow_code text NOT NULL,
        command_id bigint NOT NULL,
        workflow_instance_id bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (workflow_code, key)
      )`);
    // Masters LISTEN on this channel and wake at once on a new command.
    await q.query(`
      CREATE FUNCTION command_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('porpoise_command', NEW.id::text);
        RETURN NEW;
      END $$`);
    await q.query(
      'CREATE TRIGGER command_notify_trigger AFTER INSERT ON command FOR EACH ROW EXECUTE FUNCTION command_notify()',
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TRIGGER IF EXISTS command_notify_trigger ON command');
    await q.query('DROP FUNCTION IF EXISTS command_notify()');
    for (const table of [
      'idempotency_key',
      'schedule',
      'task_instance',
      'command',
      'workflow_instance',
      'workflow_definition_version',
      'workflow_definition',
    ]) {
      await q.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
