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
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const FINAL_TASK_STATES: readonly TaskState[] = ['PAUSE', 'KILL', 'FAILURE', 'SUCCESS'];

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

export const TASK_TYPES = ['SHELL'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** A task of a workflow definition, as stored in workflow_definition_version.tasks. */
export interface TaskDefinition {
  name: string;
  type: TaskType;
  command: string;
  retries: number;
  retryIntervalMs: number;
  timeoutMs: number;
  workerGroup: string;
}

export interface EdgeDefinition {
  from: string;
  to: string;
}

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
} as const;
