import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { firstRow, queryRows } from './sql';

/**
 * The key of the transaction-level advisory lock a retention batch holds: one master at a time
 * deletes (two would only contend for the same rows). Arbitrary, fixed: "porpoise retention".
 */
export const RETENTION_LOCK_KEY = 7_406_232_118_400_311;
/** How long a trigger's Idempotency-Key answers with its first run (DESIGN.md section 11). */
export const IDEMPOTENCY_KEY_TTL_HOURS = 24;

/** One batch's outcome: locked false when another master held the retention lock. */
export interface RetentionBatch {
  readonly locked: boolean;
  readonly deleted: number;
}

const ENDED = `('SUCCESS', 'FAILURE', 'STOP')`;

/**
 * One batch of ended instances older than the retention ($1 days), at most $2, oldest end first,
 * deleted in this one statement (their task instances, commands and task-group queue rows go
 * with them by ON DELETE CASCADE; schedule fires and sub-workflow children keep their rows with
 * the reference set NULL). Never deleted, whatever their age:
 * - an instance that is not ended (PAUSE included: it can be resumed), nor one with a command
 *   waiting for a master (a rerun or resume asked of an old run);
 * - a child whose parent is not ended (the parent's SUB_WORKFLOW task reads it), and a parent
 *   whose child is not ended (stop and pause reach the child through it);
 * - a run of a backfill still RUNNING (its progress counts them);
 * - any run of a workflow that a DEPENDENT task of an unfinished instance waits for (its window
 *   may lie in the past: a backfill of old dates).
 * SERIAL_WAIT runs wait for a running run, never an ended one: the gate needs no exception.
 * Victims are locked SKIP LOCKED: a row someone is changing now is left for the next sweep.
 */
export const RETENTION_BATCH_SQL = `WITH lock AS (SELECT pg_try_advisory_xact_lock(${RETENTION_LOCK_KEY}) AS got),
   awaited AS (
     SELECT DISTINCT d.task -> 'dependent' ->> 'workflowCode' AS code
     FROM (SELECT DISTINCT workflow_code, workflow_version FROM workflow_instance
           WHERE state NOT IN ${ENDED}) u
     JOIN workflow_definition_version v ON v.code = u.workflow_code AND v.version = u.workflow_version
     CROSS JOIN LATERAL jsonb_array_elements(v.tasks) AS d(task)
     WHERE d.task ->> 'type' = 'DEPENDENT'),
   victims AS (
     SELECT w.id FROM workflow_instance w
     WHERE (SELECT got FROM lock)
       AND w.state IN ${ENDED}
       AND w.end_time < now() - make_interval(days => $1::int)
       AND NOT EXISTS (SELECT 1 FROM command c WHERE c.workflow_instance_id = w.id)
       AND NOT EXISTS (SELECT 1 FROM workflow_instance p
                       WHERE p.id = w.parent_instance_id AND p.state NOT IN ${ENDED})
       AND NOT EXISTS (SELECT 1 FROM workflow_instance c
                       WHERE c.parent_instance_id = w.id AND c.state NOT IN ${ENDED})
       AND NOT EXISTS (SELECT 1 FROM backfill b WHERE b.id = w.backfill_id AND b.state = 'RUNNING')
       AND NOT EXISTS (SELECT 1 FROM awaited a WHERE a.code = w.workflow_code)
     ORDER BY w.end_time
     LIMIT $2
     FOR UPDATE OF w SKIP LOCKED),
   gone AS (DELETE FROM workflow_instance w USING victims v WHERE w.id = v.id RETURNING w.id)
 SELECT (SELECT got FROM lock) AS locked, (SELECT count(*) FROM gone)::int AS deleted`;

/** One batch of idempotency keys older than IDEMPOTENCY_KEY_TTL_HOURS, at most $1. */
export const IDEMPOTENCY_BATCH_SQL = `WITH lock AS (SELECT pg_try_advisory_xact_lock(${RETENTION_LOCK_KEY}) AS got),
   victims AS (
     SELECT workflow_code, key FROM idempotency_key
     WHERE (SELECT got FROM lock)
       AND created_at < now() - make_interval(hours => ${IDEMPOTENCY_KEY_TTL_HOURS})
     ORDER BY created_at
     LIMIT $1
     FOR UPDATE SKIP LOCKED),
   gone AS (DELETE FROM idempotency_key k USING victims v
            WHERE k.workflow_code = v.workflow_code AND k.key = v.key RETURNING 1)
 SELECT (SELECT got FROM lock) AS locked, (SELECT count(*) FROM gone)::int AS deleted`;

/** One batch of audit rows older than $1 days, at most $2 (oldest first, by audit_event_at_idx). */
export const AUDIT_BATCH_SQL = `WITH lock AS (SELECT pg_try_advisory_xact_lock(${RETENTION_LOCK_KEY}) AS got),
   victims AS (
     SELECT id FROM audit_event
     WHERE (SELECT got FROM lock) AND at < now() - make_interval(days => $1::int)
     ORDER BY at
     LIMIT $2
     FOR UPDATE SKIP LOCKED),
   gone AS (DELETE FROM audit_event a USING victims v WHERE a.id = v.id RETURNING 1)
 SELECT (SELECT got FROM lock) AS locked, (SELECT count(*) FROM gone)::int AS deleted`;

/**
 * Retention (DESIGN.md section 11, Bounds): the statements of the masters' sweep. Each batch is
 * one statement, so one transaction: it takes the retention advisory lock for its own duration
 * (pg_try_advisory_xact_lock: a batch of another master in flight makes this one delete nothing
 * and say so), picks its victims by index and deletes them. The age is judged by the database's
 * clock, never a node's.
 */
@Injectable()
export class RetentionRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async deleteEndedInstances(retentionDays: number, batchSize: number): Promise<RetentionBatch> {
    return this.batch(RETENTION_BATCH_SQL, [retentionDays, batchSize], 'retention batch');
  }

  async deleteExpiredIdempotencyKeys(batchSize: number): Promise<RetentionBatch> {
    return this.batch(IDEMPOTENCY_BATCH_SQL, [batchSize], 'idempotency key batch');
  }

  async deleteOldAuditEvents(auditRetentionDays: number, batchSize: number): Promise<RetentionBatch> {
    return this.batch(AUDIT_BATCH_SQL, [auditRetentionDays, batchSize], 'audit batch');
  }

  private async batch(sql: string, params: unknown[], what: string): Promise<RetentionBatch> {
    const rows = await queryRows<{ locked: boolean; deleted: number }>(this.dataSource, sql, params);
    const row = firstRow(rows, what);
    return { locked: row.locked, deleted: Number(row.deleted) };
  }
}
