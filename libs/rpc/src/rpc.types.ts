/** TypeScript shapes of the messages in proto/porpoise/v1 (proto-loader: camelCase, longs as numbers, enums as strings). */
import {
  MAX_TASK_OUTPUT_NAME_LENGTH,
  MAX_TASK_OUTPUT_VALUE_BYTES,
  MAX_TASK_OUTPUTS,
  type WORKER_TASK_TYPES,
} from '@porpoise/common';

/**
 * The task types a worker runs. On the wire TaskSpec.task_type may also be "" (a master from
 * before task types), which means SHELL; a validated spec always names its type.
 */
export type WorkerTaskType = (typeof WORKER_TASK_TYPES)[number];

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
  taskType: WorkerTaskType;
  /** The type's parameters as a JSON object (HttpTaskPayload, SqlTaskPayload; "" or "{}" for SHELL and EMPTY). */
  payloadJson: string;
}

/**
 * TaskSpec.payload_json of an HTTP task, every `${name}` already substituted by the master.
 * The worker refuses (INVALID_ARGUMENT) any field not listed here.
 */
export interface HttpTaskPayload {
  /** GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS (any case). */
  method: string;
  /** http:// or https:// */
  url: string;
  headers?: Record<string, string>;
  /** Not with GET or HEAD. */
  body?: string;
  /** The statuses that mean success; absent (or empty) means any 2xx. */
  expectStatus?: number[];
  /** The request's own limit in ms (0 or absent: none; the task's timeoutMs still holds). */
  timeoutMs?: number;
}

/** TaskSpec.payload_json of a SQL task: one statement, its `$n` placeholders bound to `values`. */
export interface SqlTaskPayload {
  datasourceType: 'postgres';
  /** postgres:// or postgresql:// with the credentials; never logged with its password. */
  url: string;
  text: string;
  /** $1 first; null binds SQL NULL. */
  values: (string | null)[];
}

/** Bounds of TaskSpec.payload_json a worker accepts (larger is refused, INVALID_ARGUMENT). */
export const TASK_PAYLOAD_LIMITS = {
  /** The whole JSON text, UTF-8 bytes: the spec must fit one gRPC message (4 MiB). */
  payloadBytes: 3 * 1024 * 1024,
  httpUrlLength: 64 * 1024,
  httpHeaders: 100,
  httpHeaderValueLength: 64 * 1024,
  expectStatus: 100,
  /** Postgres takes at most 65535 bind parameters. */
  sqlValues: 65_535,
} as const;

/**
 * Bounds of TaskFinishedEvent.outputs. A worker sends nothing beyond them (what breaks a bound is
 * left out, and said in the task log); a master should refuse an event that breaks them. The
 * first three are those of `${setValue()}` parsing in libs/common; the total keeps a result (and a
 * TakeOver answer carrying it) well inside one gRPC message.
 */
export const TASK_OUTPUT_LIMITS = {
  count: MAX_TASK_OUTPUTS,
  /** Names are identifiers (a letter or _, then letters, digits, _) of at most this many characters. */
  nameLength: MAX_TASK_OUTPUT_NAME_LENGTH,
  /** UTF-8 bytes of one value. */
  valueBytes: MAX_TASK_OUTPUT_VALUE_BYTES,
  /** UTF-8 bytes of all names and values together. */
  totalBytes: 1024 * 1024,
} as const;

/** Which registration of a worker a Dispatch is meant for (its heartbeat's startTime and registration). */
export interface WorkerAddressee {
  startTimeMs: number;
  registration: number;
}
export interface DispatchRequest {
  task: TaskSpec;
  /** The addressed worker process's start time; 0 when not given. */
  workerStartTimeMs?: number;
  /** The addressed registration of that process; 0 when not given. */
  workerRegistration?: number;
}
export interface DispatchResponse {
  accepted: boolean;
  reason: string;
  /** The answering worker process's start time (its incarnation); 0 when not given. */
  workerStartTimeMs?: number;
  /** The answering process's registration (its heartbeat's); 0 when not given. */
  workerRegistration?: number;
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
  /** The answering process's registration; 0 when not given. */
  workerRegistration?: number;
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

export interface StreamLogRequest {
  taskInstanceId: number;
  offset: number;
}
/** One message of StreamLog: the first carries only `size`, the others only `content`. */
export interface LogChunk {
  size: number;
  content: Buffer;
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
  /** What the run set for downstream tasks (see TASK_OUTPUT_LIMITS); {} when nothing. */
  outputs: Record<string, string>;
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
  /**
   * StreamLog's messages, pulled one at a time as the stream can take them (the iterator is
   * returned early when the caller goes away). Throw RpcNotFound when there is no such log.
   * Optional: a server without it answers UNIMPLEMENTED.
   */
  streamLog?(req: StreamLogRequest): Promise<AsyncIterable<LogChunk>>;
}

/** What a master implements (server side). */
export interface MasterTaskEventHandlers {
  taskStarted(event: TaskStartedEvent): Promise<EventAck>;
  taskFinished(event: TaskFinishedEvent): Promise<EventAck>;
}
