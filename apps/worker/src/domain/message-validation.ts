import { WORKER_TASK_TYPES } from '@porpoise/common';
import {
  RpcInvalidArgument,
  TASK_PAYLOAD_LIMITS,
  type DispatchRequest,
  type KillRequest,
  type ReadLogRequest,
  type StreamLogRequest,
  type TakeOverRequest,
  type TaskSpec,
  type WorkerTaskType,
} from '@porpoise/rpc';

/**
 * Validation of every message the worker receives over gRPC. proto-loader already gives the
 * right JavaScript types with defaults for missing fields (0, '', {}), so these checks are about
 * values: a missing id arrives as 0 and is refused as "must be a positive integer". Each failure
 * throws RpcInvalidArgument (answered INVALID_ARGUMENT) with a message naming the field.
 */

export const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const HOST_PORT = /^([A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):(\d{1,5})$/;
const INT32_MAX = 2_147_483_647;

function invalid(field: string, problem: string): never {
  throw new RpcInvalidArgument(`${field} ${problem}`);
}

function positiveInteger(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    invalid(field, `must be a positive integer, got ${describe(value)}`);
  }
  return value;
}

function nonNegativeInteger(field: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    invalid(field, `must be an integer between 0 and ${max}, got ${describe(value)}`);
  }
  return value;
}

/** A string that can go into argv/environment: no NUL (execve cannot carry it). */
function text(field: string, value: unknown, { nonEmpty }: { nonEmpty: boolean }): string {
  if (typeof value !== 'string') invalid(field, `must be a string, got ${describe(value)}`);
  if (nonEmpty && value.trim() === '') invalid(field, 'must be a non-empty string');
  if (value.includes('\u0000')) invalid(field, 'must not contain a NUL character');
  return value;
}

/** host:port of a master, as built from NODE_HOST and MASTER_PORT. */
export function hostPort(field: string, value: unknown): string {
  if (typeof value !== 'string') invalid(field, `must be a host:port string, got ${describe(value)}`);
  const m = HOST_PORT.exec(value);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) invalid(field, `must be host:port, got ${describe(value)}`);
  return value;
}

function params(field: string, value: unknown): Record<string, string> {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    invalid(field, `must be a map of strings, got ${describe(value)}`);
  }
  const out: [string, string][] = [];
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (!PARAM_NAME.test(name)) {
      invalid(
        `${field}`,
        `name ${JSON.stringify(name)} must match ${PARAM_NAME.source} (it becomes PORPOISE_PARAM_<NAME>)`,
      );
    }
    out.push([name, text(`${field}.${name}`, v, { nonEmpty: false })]);
  }
  // fromEntries defines each key: a param named __proto__ stays a param.
  return Object.fromEntries(out);
}

/** Types the masters run themselves (DESIGN.md section 9): never dispatched to a worker. */
const MASTER_SIDE_TYPES = ['SUB_WORKFLOW', 'CONDITIONS', 'SWITCH', 'DEPENDENT'];

/** "" is SHELL: a master from before task types sends no type. */
function taskType(field: string, value: unknown): WorkerTaskType {
  if (value === undefined || value === null || value === '') return 'SHELL';
  if (typeof value !== 'string') invalid(field, `must be a string, got ${describe(value)}`);
  const known = WORKER_TASK_TYPES.find((t) => t === value);
  if (known) return known;
  if (MASTER_SIDE_TYPES.includes(value)) {
    invalid(field, `${value} runs on the master, never on a worker`);
  }
  invalid(field, `must be one of ${WORKER_TASK_TYPES.join(', ')}, got ${describe(value)}`);
}

/** The JSON text only: each task type parses and checks its own fields (task-types/). */
function payloadJson(field: string, value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value !== 'string') invalid(field, `must be a string, got ${describe(value)}`);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > TASK_PAYLOAD_LIMITS.payloadBytes) {
    invalid(field, `is ${bytes} bytes, more than the ${TASK_PAYLOAD_LIMITS.payloadBytes} a worker takes`);
  }
  return value;
}

export function validateTaskSpec(task: unknown, field = 'task'): TaskSpec {
  if (task === null || task === undefined || typeof task !== 'object') invalid(field, 'is required');
  const t = task as Partial<Record<keyof TaskSpec, unknown>>;
  const type = taskType(`${field}.taskType`, t.taskType);
  return {
    taskInstanceId: positiveInteger(`${field}.taskInstanceId`, t.taskInstanceId),
    workflowInstanceId: positiveInteger(`${field}.workflowInstanceId`, t.workflowInstanceId),
    taskName: text(`${field}.taskName`, t.taskName, { nonEmpty: true }),
    // Only SHELL runs it; the other types ignore it (a master sends "").
    command: text(`${field}.command`, t.command ?? '', { nonEmpty: type === 'SHELL' }),
    attempt: positiveInteger(`${field}.attempt`, t.attempt),
    timeoutMs: nonNegativeInteger(`${field}.timeoutMs`, t.timeoutMs),
    params: params(`${field}.params`, t.params),
    masterAddress: hostPort(`${field}.masterAddress`, t.masterAddress),
    epoch: nonNegativeInteger(`${field}.epoch`, t.epoch),
    taskType: type,
    payloadJson: payloadJson(`${field}.payloadJson`, t.payloadJson),
  };
}

export function validateDispatchRequest(req: unknown): Required<DispatchRequest> {
  const r = (req ?? {}) as Partial<Record<keyof DispatchRequest, unknown>>;
  return {
    task: validateTaskSpec(r.task),
    // Absent from a master from before addressing: 0, accepted as before.
    workerStartTimeMs: nonNegativeInteger('workerStartTimeMs', r.workerStartTimeMs ?? 0),
    workerRegistration: nonNegativeInteger('workerRegistration', r.workerRegistration ?? 0),
  };
}

export function validateKillRequest(req: unknown): KillRequest {
  const r = (req ?? {}) as Partial<Record<keyof KillRequest, unknown>>;
  return { taskInstanceId: positiveInteger('taskInstanceId', r.taskInstanceId) };
}

export function validateTakeOverRequest(req: unknown): TakeOverRequest {
  const r = (req ?? {}) as Partial<Record<keyof TakeOverRequest, unknown>>;
  return {
    taskInstanceId: positiveInteger('taskInstanceId', r.taskInstanceId),
    newMasterAddress: hostPort('newMasterAddress', r.newMasterAddress),
    epoch: nonNegativeInteger('epoch', r.epoch),
  };
}

export function validateReadLogRequest(req: unknown): ReadLogRequest {
  const r = (req ?? {}) as Partial<Record<keyof ReadLogRequest, unknown>>;
  return {
    taskInstanceId: positiveInteger('taskInstanceId', r.taskInstanceId),
    offset: nonNegativeInteger('offset', r.offset),
    limit: nonNegativeInteger('limit', r.limit, INT32_MAX),
  };
}

export function validateStreamLogRequest(req: unknown): StreamLogRequest {
  const r = (req ?? {}) as Partial<Record<keyof StreamLogRequest, unknown>>;
  return {
    taskInstanceId: positiveInteger('taskInstanceId', r.taskInstanceId),
    offset: nonNegativeInteger('offset', r.offset),
  };
}

function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
    case 'object':
      if (value === null) return 'null';
      return Array.isArray(value) ? 'an array' : 'an object';
    case 'function':
      return 'a function';
    case 'number':
    case 'bigint':
    case 'boolean':
    case 'symbol':
    case 'undefined':
      return String(value);
  }
}
