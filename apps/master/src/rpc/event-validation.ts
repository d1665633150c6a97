import {
  RpcInvalidArgument,
  TASK_OUTPUT_LIMITS,
  type TaskFinishedEvent,
  type TaskStartedEvent,
} from '@porpoise/rpc';

const ADDRESS = /^[A-Za-z0-9.-]+:\d{1,5}$/;
const FINAL = ['SUCCESS', 'FAILURE', 'KILL'];
const MAX_MESSAGE = 4096;
const OUTPUT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A received value for an error message, cut short: the message goes back as the gRPC status
 * details, an HTTP/2 trailer, and a 300 KB one never arrived (the call hung until its deadline).
 */
function show(v: unknown): string {
  const text = String(JSON.stringify(v));
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function positiveId(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new RpcInvalidArgument(`${name}: must be a positive integer, got ${show(v)}`);
  }
}

function nonNegative(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new RpcInvalidArgument(`${name}: must be an integer >= 0, got ${show(v)}`);
  }
}

function address(name: string, v: unknown): void {
  if (typeof v !== 'string' || !ADDRESS.test(v)) {
    throw new RpcInvalidArgument(`${name}: must be "host:port", got ${show(v)}`);
  }
}

/**
 * Checks a TaskStarted message (proto3 defaults: an absent field arrives as 0 or ""). Throws
 * RpcInvalidArgument naming the first bad field; the gRPC server answers INVALID_ARGUMENT.
 */
export function validateTaskStarted(ev: TaskStartedEvent): TaskStartedEvent {
  if (typeof ev !== 'object' || ev === null) throw new RpcInvalidArgument('message: missing');
  positiveId('taskInstanceId', ev.taskInstanceId);
  positiveId('workflowInstanceId', ev.workflowInstanceId);
  positiveId('attempt', ev.attempt);
  nonNegative('startTimeMs', ev.startTimeMs);
  address('workerAddress', ev.workerAddress);
  positiveId('epoch', ev.epoch);
  return ev;
}

/** Checks a TaskFinished message, as validateTaskStarted. */
export function validateTaskFinished(ev: TaskFinishedEvent): TaskFinishedEvent {
  if (typeof ev !== 'object' || ev === null) throw new RpcInvalidArgument('message: missing');
  positiveId('taskInstanceId', ev.taskInstanceId);
  positiveId('workflowInstanceId', ev.workflowInstanceId);
  positiveId('attempt', ev.attempt);
  if (!FINAL.includes(ev.state)) {
    throw new RpcInvalidArgument(`state: must be one of ${FINAL.join(', ')}, got ${show(ev.state)}`);
  }
  if (typeof ev.exitCode !== 'number' || !Number.isInteger(ev.exitCode)) {
    throw new RpcInvalidArgument(`exitCode: must be an integer, got ${show(ev.exitCode)}`);
  }
  nonNegative('startTimeMs', ev.startTimeMs);
  nonNegative('endTimeMs', ev.endTimeMs);
  address('workerAddress', ev.workerAddress);
  positiveId('epoch', ev.epoch);
  if (typeof ev.message !== 'string') throw new RpcInvalidArgument('message: must be a string');
  return {
    ...ev,
    message: ev.message.length > MAX_MESSAGE ? ev.message.slice(0, MAX_MESSAGE) : ev.message,
    outputs: validOutputs(ev.outputs),
  };
}

/**
 * A run's outputs (stored with the task instance and handed to every downstream task): absent
 * means none; the bounds are the worker's own (TASK_OUTPUT_LIMITS), so only a foreign or broken
 * sender is refused.
 */
function validOutputs(outputs: unknown): Record<string, string> {
  if (outputs === undefined || outputs === null) return {};
  if (typeof outputs !== 'object' || Array.isArray(outputs)) {
    throw new RpcInvalidArgument('outputs: must be a map of strings');
  }
  const entries = Object.entries(outputs as Record<string, unknown>);
  if (entries.length > TASK_OUTPUT_LIMITS.count) {
    throw new RpcInvalidArgument(`outputs: more than ${TASK_OUTPUT_LIMITS.count} entries`);
  }
  let total = 0;
  const valid: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (!OUTPUT_NAME.test(name) || name.length > TASK_OUTPUT_LIMITS.nameLength) {
      throw new RpcInvalidArgument(`outputs: ${JSON.stringify(name.slice(0, 80))} is not an output name`);
    }
    if (typeof value !== 'string' || value.includes('\u0000')) {
      throw new RpcInvalidArgument(`outputs.${name}: must be a string without NUL`);
    }
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > TASK_OUTPUT_LIMITS.valueBytes) {
      throw new RpcInvalidArgument(`outputs.${name}: larger than ${TASK_OUTPUT_LIMITS.valueBytes} bytes`);
    }
    total += bytes + name.length;
    if (total > TASK_OUTPUT_LIMITS.totalBytes) {
      throw new RpcInvalidArgument(`outputs: larger than ${TASK_OUTPUT_LIMITS.totalBytes} bytes in all`);
    }
    Object.defineProperty(valid, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return valid;
}
