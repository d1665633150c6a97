/** TypeScript shapes of the messages in proto/porpoise/v1 (proto-loader: camelCase, longs as numbers, enums as strings). */

export interface TaskSpec {
  taskInstanceId: number;
  workflowInstanceId: number;
  taskName: string;
  command: string;
  attempt: number;
  timeoutMs: number;
  params: Record<string, string>;
  masterAddress: string;
  epoch: number;
}

export interface DispatchRequest {
  task: TaskSpec;
}
export interface DispatchResponse {
  accepted: boolean;
  reason: string;
  /** The answering worker process's start time (its incarnation); 0 when not given. */
  workerStartTimeMs?: number;
}
export interface KillRequest {
  taskInstanceId: number;
}
export interface KillResponse {
  killed: boolean;
}
export interface TakeOverRequest {
  taskInstanceId: number;
  newMasterAddress: string;
  epoch: number;
}
export type TaskRunStatus = 'UNKNOWN' | 'RUNNING' | 'FINISHED';
export interface TakeOverResponse {
  status: TaskRunStatus;
  result: TaskFinishedEvent | null;
  startTimeMs: number;
  /** The answering worker process's start time (its incarnation); 0 when not given. */
  workerStartTimeMs?: number;
}
export interface ReadLogRequest {
  taskInstanceId: number;
  offset: number;
  limit: number;
}
export interface ReadLogResponse {
  found: boolean;
  content: Buffer;
  nextOffset: number;
  eof: boolean;
}

export type TaskFinalState = 'SUCCESS' | 'FAILURE' | 'KILL';

/**
 * TaskFinishedEvent.message values a worker sends. Only `killed` answers a master's Kill; every
 * other KILL is the worker's own doing (session lost, draining, restarted) and means "run this
 * task again elsewhere", not "the user stopped it".
 */
export const TASK_RESULT_MESSAGES = {
  killed: 'killed on request',
  timeout: 'timeout',
  sessionLost: 'registry session lost',
  stopping: 'worker stopping',
  restarted: 'worker restarted while the task ran',
  obsolete: 'master answered OBSOLETE',
} as const;

export interface TaskFinishedEvent {
  taskInstanceId: number;
  workflowInstanceId: number;
  attempt: number;
  state: TaskFinalState;
  exitCode: number;
  startTimeMs: number;
  endTimeMs: number;
  workerAddress: string;
  epoch: number;
  message: string;
}

export interface TaskStartedEvent {
  taskInstanceId: number;
  workflowInstanceId: number;
  attempt: number;
  startTimeMs: number;
  workerAddress: string;
  epoch: number;
}

export type EventAckStatus = 'ACCEPTED' | 'NOT_OWNER' | 'OBSOLETE';
export interface EventAck {
  status: EventAckStatus;
  reason: string;
}

/** What a worker implements (server side). Throw RpcInvalidArgument for bad input. */
export interface WorkerTaskHandlers {
  dispatch(req: DispatchRequest): Promise<DispatchResponse>;
  kill(req: KillRequest): Promise<KillResponse>;
  takeOver(req: TakeOverRequest): Promise<TakeOverResponse>;
  readLog(req: ReadLogRequest): Promise<ReadLogResponse>;
}

/** What a master implements (server side). */
export interface MasterTaskEventHandlers {
  taskStarted(event: TaskStartedEvent): Promise<EventAck>;
  taskFinished(event: TaskFinishedEvent): Promise<EventAck>;
}
