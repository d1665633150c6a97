import type { Socket } from 'node:net';
import type { Clock } from '@porpoise/common';
import type { TaskFinalState, TaskSpec, WorkerTaskType } from '@porpoise/rpc';
import type { StopReason } from '../domain/task-result';

/**
 * The plugin interface of the worker's task types: one file per type in this folder
 * (`shell.task-type.ts`, `empty.task-type.ts`, ...), listed in task-type.registry.ts. The executor
 * (services/task-executor.service.ts) owns everything around a run: admission, idempotency, the
 * task log, the timeout, Kill, TaskStarted, the running marker, the result outbox. A type only
 * checks its payload and runs.
 */

/**
 * Where a child process's stdout and stderr go: the child's end of a socket pair the worker
 * drains into the task's log (capped at TASK_LOG_MAX_BYTES; past the cap the output is read and
 * dropped, so the child never blocks).
 */
export interface ChildOutput {
  /** Give it to the child as stdout and stderr. */
  readonly stream: Socket;
  /** Closes the worker's copy of the child's end: once spawned (or when the spawn failed). */
  release(): void;
  /**
   * Resolves true when every process holding the child's end has closed it and what it sent is
   * written; false when something still held it after graceMs (a process that left the task's
   * group): the rest is then not read.
   */
  ended(clock: Clock, graceMs: number): Promise<boolean>;
}

/** The task's log, DATA_DIR/logs/{workflowInstanceId}/{taskInstanceId}.log (what ReadLog serves). */
export interface TaskLogSink {
  /**
   * The channel for a child process's output; opened by the executor before run() for types with
   * `startsProcess`.
   */
  childOutput(): ChildOutput;
  /**
   * Appends, in call order, until the log reaches TASK_LOG_MAX_BYTES; then one marker line says
   * the log was cut and everything after it is dropped. Never rejects: a write that fails is
   * reported in the worker's own log.
   */
  write(text: string | Uint8Array): Promise<void>;
  /**
   * The lines of the log written since the run began, as they are on disk now (what a child
   * printed included), without their line breaks. A line longer than `maxLineBytes` is skipped.
   */
  lines(maxLineBytes: number): AsyncIterable<string>;
}

/** A process group that runs the task (its leader's pid is the group id). */
export interface TaskProcess {
  readonly pid: number;
  /** The kernel's start time of the leader, to recognise it after a worker restart. */
  readonly startToken: string | null;
}

export interface TaskRunContext {
  /** Validated; `taskType` is this type. */
  readonly spec: TaskSpec;
  readonly log: TaskLogSink;
  /**
   * Aborted when the worker ends the run (Kill, timeout, lost session, stall, stop); its reason is
   * the StopReason. A run must end soon after: the worker reports the stop reason, whatever the
   * run returns then.
   */
  readonly signal: AbortSignal;
  /** For timers and times: the worker's clock, never Date.now() or setTimeout. */
  readonly clock: Clock;
  /**
   * Every request to end the run (a request made before this call is replayed at once, as 0):
   * graceMs > 0 asks for an end within that long (a process group: SIGTERM), 0 means now
   * (SIGKILL). `signal` aborts on the first; types that only need the signal ignore this.
   */
  onStop(listener: (graceMs: number) => void): void;
  /**
   * For a type with `startsProcess`: the task's process group runs now. The worker then arms the
   * timeout, sends TaskStarted and writes the running marker that lets a restarted worker kill
   * the group.
   */
  processStarted(process: TaskProcess): void;
  /**
   * The work itself is over; only its result is being collected (e.g. outputs read from the
   * log). A Kill, timeout or lost session from now on no longer changes the result.
   */
  settled(): void;
  /** Ends the run with this reason, as a Kill does (e.g. the run cannot be supervised). */
  stop(reason: StopReason): void;
}

export interface TaskRunResult {
  state: TaskFinalState;
  /** 0 for success; a process's exit code; -1 when there is none (killed, never started, no process). */
  exitCode: number;
  /** Why, when the state and exit code do not tell ("" on success). */
  message: string;
  /**
   * For the tasks downstream. The worker leaves out (and notes in the task log) what breaks
   * TASK_OUTPUT_LIMITS (libs/rpc): a name that is not an identifier, too many, too long.
   */
  outputs: Record<string, string>;
}

export interface TaskType<P = unknown> {
  readonly type: WorkerTaskType;
  /**
   * true: run() starts a process and calls ctx.processStarted() once it runs; a run that ends
   * before that was never started (no TaskStarted is sent). false: the run counts as started
   * when run() is called.
   */
  readonly startsProcess: boolean;
  /**
   * true: the run ends within the Dispatch that started it (EMPTY), so no running marker is
   * written for it: a crash cannot leave it running.
   */
  readonly instant?: boolean;
  /**
   * Checks spec.payloadJson (and any other field of the spec the type relies on) and returns what
   * run() needs. Throws RpcInvalidArgument naming the field (answered INVALID_ARGUMENT): a bad
   * payload is refused before anything starts. Never echoes a secret (a URL's password).
   */
  parsePayload(spec: TaskSpec): P;
  /**
   * Runs the task and resolves with its result; a rejection is reported as FAILURE with its
   * message. Must end soon after ctx.signal aborts.
   */
  run(ctx: TaskRunContext, payload: P): Promise<TaskRunResult>;
}

/** A validated spec bound to its type and its parsed payload: what the executor starts. */
export interface PreparedTask {
  readonly spec: TaskSpec;
  readonly startsProcess: boolean;
  readonly instant: boolean;
  run(ctx: TaskRunContext): Promise<TaskRunResult>;
}

/** The result of a run that failed without a process or exit code to tell why. */
export function failed(message: string, outputs: Record<string, string> = {}): TaskRunResult {
  return { state: 'FAILURE', exitCode: -1, message, outputs };
}

export function succeeded(outputs: Record<string, string> = {}): TaskRunResult {
  return { state: 'SUCCESS', exitCode: 0, message: '', outputs };
}
