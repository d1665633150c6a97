import { Inject, Injectable } from '@nestjs/common';
import type { TaskState, WorkflowState } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { firstRow, queryRows } from './sql';

/** What a DEPENDENT task waits for: runs of a workflow (or one task of them) in a window. */
export interface DependencyQuery {
  readonly workflowCode: string;
  /** Absent: a run must end SUCCESS; present: that task's latest attempt must be SUCCESS. */
  readonly taskName?: string;
  /** The window on the runs' schedule time, [fromMs, toMs), epoch ms. */
  readonly fromMs: number;
  readonly toMs: number;
}

/**
 * - `met`: a run in the window succeeded (with a task name: that task's latest attempt in some
 *   run of the window is SUCCESS); `instanceId` names it.
 * - `failed`: none did, and the latest run of the window (highest id) ended FAILURE or STOP (with a
 *   task name: it ended, SUCCESS included, without that task succeeding, e.g. SKIPPED).
 * - `waiting`: neither (no run yet, or the latest one not ended, or paused).
 */
export type DependencyOutcome =
  | { readonly outcome: 'met'; readonly instanceId: number; readonly message: string }
  | { readonly outcome: 'failed'; readonly instanceId: number; readonly message: string }
  | { readonly outcome: 'waiting'; readonly runs: number; readonly message: string };

interface RawCheck {
  runs: number;
  met_id: string | null;
  latest_id: string | null;
  latest_state: WorkflowState | null;
  latest_task_state: TaskState | null;
}

const ENDED: readonly WorkflowState[] = ['SUCCESS', 'FAILURE', 'STOP'];

/**
 * The check's one statement ($1 workflow code, $2 from ms, $3 to ms, $4 task name or NULL);
 * exported for the test that EXPLAINs it.
 */
export const DEPENDENCY_CHECK_SQL = `WITH runs AS (
     SELECT w.id, w.state,
            CASE WHEN $4::text IS NOT NULL THEN (
              SELECT t.state FROM task_instance t
              WHERE t.workflow_instance_id = w.id AND t.name = $4::text
              ORDER BY t.attempt DESC LIMIT 1) END AS task_state
     FROM workflow_instance w
     WHERE w.workflow_code = $1
       AND coalesce(w.schedule_time, w.start_time) >= to_timestamp($2::bigint / 1000.0)
       AND coalesce(w.schedule_time, w.start_time) < to_timestamp($3::bigint / 1000.0))
   SELECT (SELECT count(*) FROM runs)::int AS runs,
          (SELECT id FROM runs
           WHERE CASE WHEN $4::text IS NULL THEN state = 'SUCCESS' ELSE task_state = 'SUCCESS' END
           ORDER BY id DESC LIMIT 1) AS met_id,
          latest.id AS latest_id, latest.state AS latest_state, latest.task_state AS latest_task_state
   FROM (SELECT 1) one
   LEFT JOIN (SELECT * FROM runs ORDER BY id DESC LIMIT 1) latest ON true`;

/**
 * The DEPENDENT check (DESIGN.md section 9), one statement: the runs of the awaited workflow whose
 * schedule time (a manual run's: its start time, as the run's own `${porpoise.scheduleTime}`) is
 * in the window, by the index workflow_instance_code_schedule_idx. A success wins over a later
 * failure (a failed run re-run by hand, or another run of the window that failed after it).
 */
@Injectable()
export class DependencyRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async check(q: DependencyQuery): Promise<DependencyOutcome> {
    const rows = await queryRows<RawCheck>(this.dataSource, DEPENDENCY_CHECK_SQL, [
      q.workflowCode,
      q.fromMs,
      q.toMs,
      q.taskName ?? null,
    ]);
    const r = firstRow(rows, 'dependency check');
    const what =
      q.taskName === undefined
        ? `workflow ${q.workflowCode}`
        : `task ${q.taskName} of workflow ${q.workflowCode}`;
    const window = `scheduled in [${iso(q.fromMs)}, ${iso(q.toMs)})`;
    if (r.met_id !== null) {
      const id = Number(r.met_id);
      return { outcome: 'met', instanceId: id, message: `${what} succeeded in instance ${id}, ${window}` };
    }
    if (r.latest_id !== null && r.latest_state !== null && ENDED.includes(r.latest_state)) {
      const id = Number(r.latest_id);
      if (q.taskName === undefined && r.latest_state !== 'SUCCESS') {
        return {
          outcome: 'failed',
          instanceId: id,
          message: `${what}: its latest run ${window}, instance ${id}, ended ${r.latest_state}`,
        };
      }
      if (q.taskName !== undefined) {
        const task = r.latest_task_state === null ? 'has no attempt' : `ended ${r.latest_task_state}`;
        return {
          outcome: 'failed',
          instanceId: id,
          message: `${what}: its latest run ${window}, instance ${id}, ended ${r.latest_state} and the task ${task}`,
        };
      }
    }
    return {
      outcome: 'waiting',
      runs: r.runs,
      message:
        r.latest_id === null
          ? `waits for a SUCCESS run of ${what} ${window}: none yet`
          : `waits for a SUCCESS run of ${what} ${window}: latest instance ${r.latest_id} is ${r.latest_state ?? '?'}`,
    };
  }
}

/** Epoch ms as ISO 8601 (a conversion for messages, not a clock read). */
function iso(ms: number): string {
  return new Date(ms).toISOString();
}
