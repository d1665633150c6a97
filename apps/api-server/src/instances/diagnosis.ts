/**
 * Why each unfinished task of a workflow instance is not done yet (DESIGN.md section 12): a pure
 * decision from the instance's rows, its definition's DAG and what the registry says of the
 * cluster. The route is GET /workflow-instances/{id}/diagnosis.
 */
import {
  dependencyWindow,
  MASTER_TASK_TYPES,
  type CommandType,
  type DependentSpec,
  type TaskState,
  type WorkflowGraph,
  type WorkflowState,
} from '@porpoise/common';
import type { DiagnosisFacts, DiagnosisTaskRow, TaskGroupQueueEntry } from '@porpoise/dao';

/**
 * What holds a task. `serial-wait`: the run waits at its workflow's run gate (SERIAL_WAIT,
 * README "Run concurrency").
 */
export const WAITING_FOR = [
  'upstream',
  'worker-group',
  'worker-capacity',
  'task-group',
  'retry-delay',
  'master',
  'serial-wait',
  'paused',
] as const;
export type WaitingFor = (typeof WAITING_FOR)[number];

export interface TaskDiagnosis {
  readonly name: string;
  /** The state of its latest attempt; null when it has none yet (it never became ready). */
  readonly state: TaskState | null;
  /** What holds it; null when nothing does (it runs, or is being started or dispatched right now). */
  readonly waitingFor: WaitingFor | null;
  /**
   * Since when it has been waiting (or running), ISO 8601: for `upstream` the run's start; for
   * `worker-group` / `worker-capacity` when its attempt was created (it became ready) or its
   * worker was lost; for `task-group` when it asked for a slot; for `retry-delay` when the failed
   * attempt ended; for `master` when the
   * command was written; for `paused` when the run paused (or was asked to); for a running task
   * when it started. null when no row says.
   */
  readonly since: string | null;
  /** The same in words, for a person. */
  readonly detail: string;
  /** upstream: the upstream tasks that have not succeeded yet. */
  readonly upstream?: readonly string[];
  /** worker-group, worker-capacity: the task's worker group. */
  readonly workerGroup?: string;
  /** task-group: the task group whose slot it waits for. */
  readonly taskGroup?: string;
  /** retry-delay: when the retry is due. */
  readonly retryAt?: string;
  /** master: the command waiting for a master, when there is one. */
  readonly command?: { readonly id: number; readonly type: CommandType };
  /** Running: the worker (or the master, for a master-side task) it runs on. */
  readonly host?: string;
}

/** What the registry says of the cluster (only what a diagnosis needs). */
export interface ClusterView {
  readonly masters: ReadonlyArray<{ readonly address: string }>;
  readonly workers: ReadonlyArray<{
    readonly group: string;
    readonly serving: boolean;
    readonly runningTasks: number;
    readonly capacity: number;
  }>;
}

export interface DiagnosisInput extends Omit<DiagnosisFacts, 'definition'> {
  /** The run's DAG; an Error when its definition version cannot be read (rows alone then). */
  readonly graph: WorkflowGraph | Error;
  /** undefined when clusterNeeded() said it is not needed. */
  readonly cluster?: ClusterView;
  /** The instance's task group queue rows (slotNo null: waiting); none when not read. */
  readonly taskGroupQueue?: readonly TaskGroupQueueEntry[];
}

/** Task states after which an attempt holds nothing (PAUSE resumes: not one of them). */
const DONE: readonly TaskState[] = ['SUCCESS', 'FAILURE', 'KILL', 'SKIPPED'];
/** Succeeded for its downstream tasks: a SKIPPED branch lets a task reachable another way run. */
const CLEARED: readonly TaskState[] = ['SUCCESS', 'SKIPPED'];
/** Instances nothing waits in: they ended (resume-failed and rerun start over with a command). */
const ENDED: readonly WorkflowState[] = ['SUCCESS', 'FAILURE', 'STOP'];
const MASTER_TYPES: readonly string[] = MASTER_TASK_TYPES;

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

/**
 * Whether the answer depends on the registry: the instance is driven (is its master alive?) or a
 * task waits for a worker. A paused, ended or not yet taken run needs no registry read.
 */
export function clusterNeeded(facts: Pick<DiagnosisFacts, 'instance' | 'command' | 'tasks'>): boolean {
  const { state, host } = facts.instance;
  if (ENDED.includes(state) || state === 'PAUSE' || facts.command !== null || host === null) return false;
  return true;
}

/**
 * Every unfinished task, in the DAG's order (tasks with a row but no longer in the DAG last),
 * with what holds it. An ended run (SUCCESS, FAILURE, STOP) has none. Pure.
 */
export function diagnose(input: DiagnosisInput): TaskDiagnosis[] {
  const { instance, command, cluster } = input;
  if (ENDED.includes(instance.state)) return [];
  const rows = new Map<string, DiagnosisTaskRow>(input.tasks.map((t) => [t.name, t]));
  const graph = input.graph instanceof Error ? undefined : input.graph;
  const names = [
    ...(graph?.order ?? []),
    ...input.tasks.map((t) => t.name).filter((n) => !graph?.tasks.has(n)),
  ];

  // The run as a whole waits for a master: its command is not taken yet, or its master is gone
  // from the registry (failover hands it to a live one).
  const masterGone =
    instance.host !== null &&
    cluster !== undefined &&
    !cluster.masters.some((m) => m.address === instance.host);
  const forMaster: Omit<TaskDiagnosis, 'name' | 'state'> | undefined =
    command !== null
      ? {
          waitingFor: 'master',
          since: iso(command.createdAt),
          detail: `its ${command.type} command ${command.id} waits for a master to take it`,
          command: { id: command.id, type: command.type },
        }
      : instance.host === null
        ? {
            waitingFor: 'master',
            since: iso(instance.updatedAt),
            detail: 'no master drives the run yet',
          }
        : masterGone
          ? {
              waitingFor: 'master',
              since: iso(instance.updatedAt),
              detail: `its master ${instance.host} is not in the registry; failover hands the run to a live master`,
            }
          : undefined;
  const paused: Omit<TaskDiagnosis, 'name' | 'state'> | undefined =
    instance.state === 'PAUSE'
      ? {
          waitingFor: 'paused',
          since: iso(instance.endTime ?? instance.updatedAt),
          detail: 'the run is paused',
        }
      : instance.state === 'READY_PAUSE'
        ? {
            waitingFor: 'paused',
            since: iso(instance.updatedAt),
            detail: 'the run is pausing: nothing new starts',
          }
        : undefined;

  // A run waiting at its workflow's run gate (concurrency): no master has it, no task starts
  // until the gate admits it (README "Run concurrency").
  const serialWait: Omit<TaskDiagnosis, 'name' | 'state'> | undefined =
    instance.state === 'SERIAL_WAIT'
      ? {
          waitingFor: 'serial-wait',
          since: iso(instance.updatedAt),
          detail:
            "the run waits for its workflow's concurrency limit: it starts when a run of the workflow " +
            'ends, in the order the runs were triggered',
        }
      : undefined;

  // A resume runs again every task that did not succeed (a failed one too, with the retries it
  // has left): in a paused or pausing run only SUCCESS and SKIPPED are done; so in a waiting one.
  const done = paused || serialWait ? CLEARED : DONE;
  const waitingForSlot = new Map(
    (input.taskGroupQueue ?? []).filter((q) => q.slotNo === null).map((q) => [q.taskInstanceId, q]),
  );
  const out: TaskDiagnosis[] = [];
  for (const name of names) {
    const row = rows.get(name);
    if (row && done.includes(row.state)) continue;
    const state = row?.state ?? null;
    if (serialWait) {
      out.push({ name, state, ...serialWait });
      continue;
    }
    const def = graph?.tasks.get(name);
    const onMaster = def !== undefined && MASTER_TYPES.includes(def.type);
    if (row && (row.state === 'DISPATCH' || row.state === 'RUNNING_EXECUTION')) {
      out.push({
        name,
        state,
        waitingFor: null,
        since: iso(row.startTime ?? row.updatedAt),
        detail: onMaster
          ? def.type === 'DEPENDENT'
            ? dependentDetail(def.dependent, instance)
            : 'running on its master'
          : row.state === 'DISPATCH'
            ? `dispatched to ${row.host ?? 'a worker'}`
            : `running on ${row.host ?? 'a worker'}`,
        ...(row.host !== null ? { host: row.host } : {}),
      });
      continue;
    }
    if (paused || row?.state === 'PAUSE') {
      out.push({
        name,
        state,
        ...(paused ?? { waitingFor: 'paused', since: iso(row?.updatedAt), detail: 'its attempt is paused' }),
      });
      continue;
    }
    if (instance.state === 'READY_STOP') {
      out.push({
        name,
        state,
        waitingFor: null,
        since: null,
        detail: 'the run is being stopped: it will not start',
      });
      continue;
    }
    if (forMaster) {
      out.push({ name, state, ...forMaster });
      continue;
    }
    if (!row) {
      const waiting = (graph?.upstream.get(name) ?? []).filter((u) => {
        const up = rows.get(u);
        return up === undefined || !CLEARED.includes(up.state);
      });
      out.push(
        waiting.length > 0
          ? {
              name,
              state,
              waitingFor: 'upstream',
              since: iso(instance.startTime ?? instance.createdAt),
              detail: `waits for ${waiting.join(', ')} to succeed`,
              upstream: waiting,
            }
          : {
              name,
              state,
              waitingFor: null,
              since: null,
              detail: graph ? 'ready: its master is creating its attempt' : 'not in the run’s definition',
            },
      );
      continue;
    }
    if (row.state === 'DELAY_EXECUTION') {
      out.push({
        name,
        state,
        waitingFor: 'retry-delay',
        since: iso(row.endTime ?? row.updatedAt),
        detail: `attempt ${row.attempt} failed; the next one starts ${row.retryDueAt ? `at ${iso(row.retryDueAt)}` : 'once its retry delay is over'}`,
        ...(row.retryDueAt ? { retryAt: iso(row.retryDueAt) as string } : {}),
      });
      continue;
    }
    const queued = row.state === 'SUBMITTED_SUCCESS' ? waitingForSlot.get(row.id) : undefined;
    if (queued) {
      out.push({
        name,
        state,
        waitingFor: 'task-group',
        since: iso(queued.requestedAt),
        detail: `waits for a slot of task group ${queued.taskGroup} (all its slots are held; first come first served)`,
        taskGroup: queued.taskGroup,
      });
      continue;
    }
    // SUBMITTED_SUCCESS (ready, not on a worker) or NEED_FAULT_TOLERANCE (its worker was lost).
    const since = iso(row.state === 'NEED_FAULT_TOLERANCE' ? row.updatedAt : row.createdAt);
    if (onMaster || def === undefined || cluster === undefined) {
      out.push({
        name,
        state,
        waitingFor: null,
        since,
        detail: onMaster ? 'starting on its master' : 'being dispatched',
      });
      continue;
    }
    const group = def.workerGroup;
    const live = cluster.workers.filter((w) => w.group === group && w.serving);
    if (live.length === 0) {
      out.push({
        name,
        state,
        waitingFor: 'worker-group',
        since,
        detail: `no live worker in group ${group}`,
        workerGroup: group,
      });
    } else if (live.every((w) => w.runningTasks >= w.capacity)) {
      out.push({
        name,
        state,
        waitingFor: 'worker-capacity',
        since,
        detail: `every live worker of group ${group} runs as many tasks as its capacity`,
        workerGroup: group,
      });
    } else {
      out.push({
        name,
        state,
        waitingFor: null,
        since,
        detail: `being dispatched to a worker of group ${group}`,
      });
    }
  }
  return out;
}

/**
 * What a DEPENDENT task waits for, in words (the contract has no `waitingFor` value for it: it is
 * running, on its master, and `null` says so), with the window of this run's schedule time.
 */
export function dependentDetail(
  spec: DependentSpec,
  instance: { readonly scheduleTime?: Date | null; readonly timezone?: string },
): string {
  const what =
    spec.taskName === undefined
      ? `a SUCCESS run of workflow ${spec.workflowCode}`
      : `task ${spec.taskName} of workflow ${spec.workflowCode} to succeed in a run`;
  let window = `in the ${spec.interval} of this run's schedule time shifted by ${spec.offset}`;
  if (instance.scheduleTime) {
    try {
      const w = dependencyWindow(
        instance.scheduleTime.getTime(),
        instance.timezone ?? 'UTC',
        spec.interval,
        spec.offset,
      );
      window = `scheduled in [${new Date(w.fromMs).toISOString()}, ${new Date(w.toMs).toISOString()})`;
    } catch {
      // An unknown time zone: the words above still say which window.
    }
  }
  return `waits on its master for ${what} ${window} (checked every ${spec.checkIntervalMs} ms and when a run of it ends)`;
}
