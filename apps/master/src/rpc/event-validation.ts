import { RpcInvalidArgument, type TaskFinishedEvent, type TaskStartedEvent } from '@porpoise/rpc';

const ADDRESS = /^[A-Za-z0-9.-]+:\d{1,5}$/;
const FINAL = ['SUCCESS', 'FAILURE', 'KILL'];
const MAX_MESSAGE = 4096;

function positiveId(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new RpcInvalidArgument(`${name}: must be a positive integer, got ${JSON.stringify(v)}`);
  }
}

function nonNegative(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new RpcInvalidArgument(`${name}: must be an integer >= 0, got ${JSON.stringify(v)}`);
  }
}

function address(name: string, v: unknown): void {
  if (typeof v !== 'string' || !ADDRESS.test(v)) {
    throw new RpcInvalidArgument(`${name}: must be "host:port", got ${JSON.stringify(v)}`);
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
    throw new RpcInvalidArgument(
      `state: must be one of ${FINAL.join(', ')}, got ${JSON.stringify(ev.state)}`,
    );
  }
  if (typeof ev.exitCode !== 'number' || !Number.isInteger(ev.exitCode)) {
    throw new RpcInvalidArgument(`exitCode: must be an integer, got ${JSON.stringify(ev.exitCode)}`);
  }
  nonNegative('startTimeMs', ev.startTimeMs);
  nonNegative('endTimeMs', ev.endTimeMs);
  address('workerAddress', ev.workerAddress);
  positiveId('epoch', ev.epoch);
  if (typeof ev.message !== 'string') throw new RpcInvalidArgument('message: must be a string');
  return { ...ev, message: ev.message.length > MAX_MESSAGE ? ev.message.slice(0, MAX_MESSAGE) : ev.message };
}
