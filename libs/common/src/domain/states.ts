/** State and command names, as in DolphinScheduler (DESIGN.md section 4). */

export const WORKFLOW_STATES = [
  'SUBMITTED_SUCCESS',
  'RUNNING_EXECUTION',
  'READY_PAUSE',
  'PAUSE',
  'READY_STOP',
  'STOP',
  'FAILURE',
  'SUCCESS',
  // Waits for its workflow's run gate (concurrency: SERIAL_WAIT, SERIAL_DISCARD, maxRuns); no master owns it.
  'SERIAL_WAIT',
] as const;
export type WorkflowState = (typeof WORKFLOW_STATES)[number];

/** A workflow instance in one of these is finished: no master drives it. */
export const FINAL_WORKFLOW_STATES: readonly WorkflowState[] = ['PAUSE', 'STOP', 'FAILURE', 'SUCCESS'];

export const TASK_STATES = [
  'SUBMITTED_SUCCESS',
  'DISPATCH',
  'RUNNING_EXECUTION',
  'DELAY_EXECUTION',
  'NEED_FAULT_TOLERANCE',
  'PAUSE',
  'KILL',
  'FAILURE',
  'SUCCESS',
  // Not run: on a branch a CONDITIONS or SWITCH task did not take, or only reachable through one.
  'SKIPPED',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const FINAL_TASK_STATES: readonly TaskState[] = ['PAUSE', 'KILL', 'FAILURE', 'SUCCESS', 'SKIPPED'];

export const COMMAND_TYPES = [
  'START_PROCESS',
  'SCHEDULER',
  'REPEAT_RUNNING',
  'START_FAILURE_TASK_PROCESS',
  'RECOVER_SUSPENDED_PROCESS',
  'RECOVER_TOLERANCE_FAULT_PROCESS',
  'COMPLEMENT_DATA',
  'PAUSE',
  'STOP',
] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

/**
 * The task types a workflow definition may use (DESIGN.md section 9). The definition model
 * (definition/definition-types.ts) has each type's fields.
 */
export const TASK_TYPES = [
  'SHELL',
  'EMPTY',
  'HTTP',
  'SQL',
  'SUB_WORKFLOW',
  'CONDITIONS',
  'SWITCH',
  'DEPENDENT',
] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** Types a worker runs (dispatched over gRPC). */
export const WORKER_TASK_TYPES = ['SHELL', 'EMPTY', 'HTTP', 'SQL'] as const satisfies readonly TaskType[];
/** Types the master runs itself: they never occupy a worker. */
export const MASTER_TASK_TYPES = [
  'SUB_WORKFLOW',
  'CONDITIONS',
  'SWITCH',
  'DEPENDENT',
] as const satisfies readonly TaskType[];

/** Registry paths (DESIGN.md section 6). */
export const REGISTRY_PATHS = {
  masters: '/nodes/master',
  workers: '/nodes/worker',
  failoverLock: '/lock/failover',
  master: (host: string, port: number) => `/nodes/master/${host}:${port}`,
  worker: (group: string, host: string, port: number) => `/nodes/worker/${group}/${host}:${port}`,
} as const;

/** The JSON a node keeps in its registry key, refreshed every heartbeat. */
export interface NodeHeartbeat {
  host: string;
  port: number;
  startTime: number;
  heartbeatTime: number;
  cpuUsage: number;
  memoryUsage: number;
  loadAverage: number;
  /** Workers only. */
  group?: string;
  /**
   * Workers only: which registration of the process this is (1, then one more each time it was
   * lost to the masters: session expired, or stalled past its liveness deadline). A master names
   * it in each Dispatch. Absent from a worker from before registrations.
   */
  registration?: number;
  runningTasks?: number;
  capacity?: number;
  /** False while the node drains or its session is suspended. */
  serving: boolean;
}

/**
 * Postgres NOTIFY channels: a new command (the insert trigger in the workflow-tables
 * migration) and a stop/pause request from the API (payload: the instance id).
 */
export const NOTIFY_CHANNELS = {
  command: 'porpoise_command',
  instanceControl: 'porpoise_instance_control',
  /** An instance reached PAUSE, STOP, FAILURE or SUCCESS; payload `{"id": n, "code": "..."}`. */
  instanceEnd: 'porpoise_instance_end',
  /** A backfill was created (its insert trigger); payload `{"id": n, "code": "..."}`. */
  backfill: 'porpoise_backfill',
  /** A schedule was created or changed (its revision went up); payload: the schedule id. */
  schedule: 'porpoise_schedule',
  /** A slot of the task group named by the payload was freed (or its capacity changed). */
  taskGroup: 'porpoise_task_group',
  /** A run of a limited workflow entered SERIAL_WAIT; payload: the workflow code. */
  gate: 'porpoise_gate',
} as const;

/**
 * A task attempt its worker has (DISPATCH: sent or being sent; RUNNING_EXECUTION: started): the
 * worker may run it, so it is never sent to another worker and ends only by its result, a Kill,
 * or the loss of that worker.
 */
export const ACTIVE_TASK_STATES: readonly TaskState[] = ['DISPATCH', 'RUNNING_EXECUTION'];
