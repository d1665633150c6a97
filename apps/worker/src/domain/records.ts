import type { TaskFinishedEvent } from '@porpoise/rpc';
import { CorruptRecordError } from '../worker.errors';
import { hostPort } from './message-validation';

/**
 * The two kinds of small JSON files the worker keeps under DATA_DIR so that a restart (even after
 * SIGKILL) loses nothing: a held result (outbox) and a marker of a task that is running.
 * Both are read back at start and validated like any other input.
 */

/** DATA_DIR/outbox/{taskInstanceId}.json: a result not yet acknowledged by a master. */
export interface OutboxRecord {
  version: 1;
  /** Where the result goes; a TakeOver rewrites it. */
  masterAddress: string;
  /** When the result was first held (for OUTBOX_MAX_AGE_MS). */
  createdAtMs: number;
  event: TaskFinishedEvent;
}

/**
 * DATA_DIR/running/{taskInstanceId}.json: a task that is running: a SHELL task's process group
 * (pid set) that may outlive the worker, or a run inside the worker (pid null: HTTP, SQL, EMPTY)
 * that dies with it. Either way a restart finds the marker and reports the run KILL.
 */
export interface RunningMarker {
  version: 1;
  taskInstanceId: number;
  workflowInstanceId: number;
  taskName: string;
  attempt: number;
  masterAddress: string;
  epoch: number;
  startTimeMs: number;
  /** The shell's pid, which is also the process group id (it runs detached); null: no process. */
  pid: number | null;
  /** The process's start time as the kernel records it, to tell a reused pid from ours. */
  startToken: string | null;
}

/**
 * DATA_DIR/superseded.json: for each task whose TakeOver this worker answered UNKNOWN, the epoch of
 * that TakeOver (the newest one), so a Dispatch from an older epoch is refused even after a restart.
 */
export interface SupersededRecord {
  version: 1;
  entries: { taskInstanceId: number; epoch: number; atMs: number }[];
}

const FINAL_STATES = new Set(['SUCCESS', 'FAILURE', 'KILL']);

function fail(file: string, reason: string): never {
  throw new CorruptRecordError(file, reason);
}

function object(file: string, field: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(file, `${field} must be an object`);
  return v as Record<string, unknown>;
}

function int(file: string, field: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    fail(file, `${field} must be an integer >= ${min}`);
  }
  return v;
}

function str(file: string, field: string, v: unknown): string {
  if (typeof v !== 'string') fail(file, `${field} must be a string`);
  return v;
}

/** A map of strings (outputs); absent in records written before outputs existed. */
function strings(file: string, field: string, v: unknown): Record<string, string> {
  if (v === undefined) return {};
  // fromEntries defines each key, so even a name like __proto__ stays an ordinary entry.
  return Object.fromEntries(
    Object.entries(object(file, field, v)).map(([name, value]) => [
      name,
      str(file, `${field}.${name}`, value),
    ]),
  );
}

function address(file: string, field: string, v: unknown): string {
  try {
    return hostPort(field, v);
  } catch (err) {
    fail(file, (err as Error).message);
  }
}

function parseJson(file: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    fail(file, `not JSON: ${(err as Error).message}`);
  }
  const record = object(file, 'the record', value);
  if (record.version !== 1) fail(file, `unknown version ${JSON.stringify(record.version)}`);
  return record;
}

export function parseOutboxRecord(file: string, text: string): OutboxRecord {
  const r = parseJson(file, text);
  const e = object(file, 'event', r.event);
  const state = str(file, 'event.state', e.state);
  if (!FINAL_STATES.has(state)) fail(file, `event.state must be SUCCESS, FAILURE or KILL, got ${state}`);
  return {
    version: 1,
    masterAddress: address(file, 'masterAddress', r.masterAddress),
    createdAtMs: int(file, 'createdAtMs', r.createdAtMs, 0),
    event: {
      taskInstanceId: int(file, 'event.taskInstanceId', e.taskInstanceId, 1),
      workflowInstanceId: int(file, 'event.workflowInstanceId', e.workflowInstanceId, 1),
      attempt: int(file, 'event.attempt', e.attempt, 1),
      state: state as TaskFinishedEvent['state'],
      exitCode: int(file, 'event.exitCode', e.exitCode, -1),
      startTimeMs: int(file, 'event.startTimeMs', e.startTimeMs, 0),
      endTimeMs: int(file, 'event.endTimeMs', e.endTimeMs, 0),
      workerAddress: str(file, 'event.workerAddress', e.workerAddress),
      epoch: int(file, 'event.epoch', e.epoch, 0),
      message: str(file, 'event.message', e.message),
      outputs: strings(file, 'event.outputs', e.outputs),
    },
  };
}

export function parseRunningMarker(file: string, text: string): RunningMarker {
  const r = parseJson(file, text);
  const startToken = r.startToken === null ? null : str(file, 'startToken', r.startToken);
  return {
    version: 1,
    taskInstanceId: int(file, 'taskInstanceId', r.taskInstanceId, 1),
    workflowInstanceId: int(file, 'workflowInstanceId', r.workflowInstanceId, 1),
    taskName: str(file, 'taskName', r.taskName),
    attempt: int(file, 'attempt', r.attempt, 1),
    masterAddress: address(file, 'masterAddress', r.masterAddress),
    epoch: int(file, 'epoch', r.epoch, 0),
    startTimeMs: int(file, 'startTimeMs', r.startTimeMs, 0),
    // pid 1 is init: never ours, and kill(-1) would signal every process we may signal.
    pid: r.pid === null ? null : int(file, 'pid', r.pid, 2),
    startToken,
  };
}

export function parseSupersededRecord(file: string, text: string): SupersededRecord {
  const r = parseJson(file, text);
  if (!Array.isArray(r.entries)) fail(file, 'entries must be an array');
  return {
    version: 1,
    entries: r.entries.map((v: unknown, i: number) => {
      const e = object(file, `entries[${i}]`, v);
      return {
        taskInstanceId: int(file, `entries[${i}].taskInstanceId`, e.taskInstanceId, 1),
        epoch: int(file, `entries[${i}].epoch`, e.epoch, 0),
        atMs: int(file, `entries[${i}].atMs`, e.atMs, 0),
      };
    }),
  };
}

/** File names are the task instance id: `123.json`. */
export function taskIdOfFile(name: string): number | null {
  const m = /^([1-9]\d{0,14})\.json$/.exec(name);
  return m ? Number(m[1]) : null;
}
