import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FileHandle } from 'node:fs/promises';
import {
  CLOCK,
  PORPOISE_CONFIG,
  type Clock,
  type TimerHandle,
  type WorkerConfig,
  unrefTimer,
} from '@porpoise/common';
import type {
  DispatchResponse,
  KillResponse,
  TakeOverRequest,
  TakeOverResponse,
  TaskFinishedEvent,
  TaskSpec,
} from '@porpoise/rpc';
import { ProcessRunner, type StartedProcess } from '../adapters/process-runner';
import { SupersededStore } from '../adapters/superseded-store';
import { TaskWatchdog, type WatchdogHandle } from '../adapters/task-watchdog';
import { TaskLogStore } from '../adapters/task-log-store';
import { RunningMarkerStore } from '../adapters/worker-stores';
import { isSuperseded } from '../domain/admission';
import type { RunningMarker } from '../domain/records';
import { buildTaskEnv } from '../domain/task-env';
import { decideOutcome, type ProcessExit, type StopReason } from '../domain/task-result';
import { KILL_GRACE_MS, KILL_REAP_WAIT_MS, RESULT_MESSAGES, WATCHDOG_RESTARTS } from '../worker.constants';
import { workerAddress } from '../worker.config';
import { SpawnFailedError, WorkerError } from '../worker.errors';
import { AdmissionService } from './admission.service';
import { LivenessService } from './liveness.service';
import { ResultDeliveryService } from './result-delivery.service';

/** One task run on this worker, from Dispatch until its result is held in the outbox. */
interface RunningTask {
  readonly spec: TaskSpec;
  /** Where events go; a TakeOver (or a Dispatch from a newer epoch) changes them. */
  masterAddress: string;
  epoch: number;
  readonly startTimeMs: number;
  /** The shell's pid = the process group id; undefined until spawned (or if spawning failed). */
  pid: number | undefined;
  startToken: string | null;
  /** The process outside the worker that kills the group if the worker stalls or dies. */
  watchdog: WatchdogHandle | undefined;
  watchdogRestarts: number;
  /** Set when the worker ends the run itself; the first reason wins. */
  stop: StopReason | undefined;
  cancelTimeout: (() => void) | undefined;
  startedDelivery: Promise<void>;
  /** Resolves once the run's result is held (on disk when possible). */
  readonly done: Promise<void>;
  readonly markDone: () => void;
}

const MAX_TIMER_MS = 2_147_483_647;

/** setTimeout for any length: Node fires at once for delays above 2^31-1 ms, so re-arm in steps. */
function longTimeout(clock: Clock, fn: () => void, ms: number): () => void {
  let timer: TimerHandle | undefined;
  const arm = (left: number) => {
    timer = unrefTimer(
      clock.setTimeout(
        () => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()),
        Math.min(left, MAX_TIMER_MS),
      ),
    );
  };
  arm(ms);
  return () => clock.clearTimeout(timer);
}

/** Resolves true when p settles within ms, false otherwise. */
function within(clock: Clock, p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = unrefTimer(clock.setTimeout(() => resolve(false), ms));
    void p.then(() => {
      clock.clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Runs SHELL tasks (DESIGN.md section 5): `/bin/sh -c command` in its own process group, output
 * appended to the task's log, the whole group killed on Kill, timeout, session loss or stop.
 * A running marker on disk names each live group, so that a worker restarted after a crash ends
 * the groups its predecessor left behind instead of letting them run on unseen.
 *
 * Each group also has a watchdog (adapters/task-watchdog.ts): a process of its own that kills the
 * group when this worker's liveness file goes stale (the worker is frozen) or the worker dies, so
 * that the task is dead before the worker's registry session can expire and the masters run it
 * again elsewhere. A run its watchdog killed is reported KILL (session lost), never SUCCESS.
 */
@Injectable()
export class TaskExecutorService {
  private readonly logger = new Logger('WorkerExecutor');
  private readonly running = new Map<number, RunningTask>();
  private readonly address: string;

  constructor(
    @Inject(PORPOISE_CONFIG) private readonly config: WorkerConfig,
    private readonly runner: ProcessRunner,
    private readonly logs: TaskLogStore,
    private readonly markers: RunningMarkerStore,
    private readonly delivery: ResultDeliveryService,
    private readonly admission: AdmissionService,
    private readonly watchdog: TaskWatchdog,
    private readonly liveness: LivenessService,
    private readonly superseded: SupersededStore,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.address = workerAddress(config);
  }

  get runningCount(): number {
    return this.running.size;
  }

  /**
   * Starts a task, idempotently per task instance id: a task this worker runs, holds a result of,
   * or has run before (its log exists) is answered accepted and not started again.
   */
  async dispatch(spec: TaskSpec): Promise<DispatchResponse> {
    const id = spec.taskInstanceId;
    // Everything up to running.set() is synchronous, so two concurrent Dispatches cannot both start it.
    // An owner asked for this task and heard UNKNOWN: it runs the task again as a new attempt, so a
    // Dispatch sent before that (a frozen master, a call cut mid-way) must not start a stale run.
    // The same epoch too: that master re-runs it under a new task id, never this one (see isSuperseded).
    const unknownAt = this.superseded.epochOf(id);
    if (isSuperseded(spec.epoch, unknownAt)) {
      this.logger.warn(
        `task ${id}: Dispatch from ${spec.masterAddress} with epoch ${spec.epoch} refused: ` +
          `a TakeOver with epoch ${unknownAt} was answered UNKNOWN`,
      );
      return { accepted: false, reason: 'superseded' };
    }
    const current = this.running.get(id);
    if (current) {
      this.redirect(current, spec.masterAddress, spec.epoch);
      return { accepted: true, reason: 'already running' };
    }
    if (this.delivery.holds(id)) {
      this.delivery.redirect(id, spec.masterAddress, spec.epoch);
      return { accepted: true, reason: 'already finished' };
    }
    if (this.logs.has(id)) return { accepted: true, reason: 'already ran' };
    // Synchronous, on the clock: after a stall the queued Dispatches run before any registry event.
    const refusal = this.admission.refusal();
    if (refusal) return { accepted: false, reason: refusal };
    if (this.running.size >= this.config.workerCapacity) return { accepted: false, reason: 'over capacity' };

    let markDone!: () => void;
    const task: RunningTask = {
      spec,
      masterAddress: spec.masterAddress,
      epoch: spec.epoch,
      startTimeMs: this.clock.now(),
      pid: undefined,
      startToken: null,
      watchdog: undefined,
      watchdogRestarts: 0,
      stop: undefined,
      cancelTimeout: undefined,
      startedDelivery: Promise.resolve(),
      done: new Promise<void>((r) => (markDone = r)),
      markDone: () => markDone(),
    };
    this.running.set(id, task);
    await this.launch(task);
    return { accepted: true, reason: '' };
  }

  /** Kills the task's whole group: SIGTERM, SIGKILL after a short grace. Result state KILL. */
  async kill(taskInstanceId: number): Promise<KillResponse> {
    const task = this.running.get(taskInstanceId);
    if (!task) return { killed: false };
    this.logger.log(`task ${taskInstanceId}: kill requested`);
    await this.stopTask(task, { state: 'KILL', message: RESULT_MESSAGES.killed }, KILL_GRACE_MS);
    return { killed: true };
  }

  /**
   * A new owner re-attaches a task: its future events (or its held result) go there. UNKNOWN makes
   * the new owner run the task again, so its epoch is remembered first (memory at once, then disk)
   * and a later Dispatch of the task from that epoch or an older one is refused.
   */
  async takeOver(req: TakeOverRequest): Promise<TakeOverResponse> {
    const task = this.running.get(req.taskInstanceId);
    if (task) {
      this.redirect(task, req.newMasterAddress, req.epoch);
      return { status: 'RUNNING', result: null, startTimeMs: task.startTimeMs };
    }
    const result = this.delivery.redirect(req.taskInstanceId, req.newMasterAddress, req.epoch);
    if (result) return { status: 'FINISHED', result, startTimeMs: result.startTimeMs };
    await this.superseded.record(req.taskInstanceId, req.epoch);
    return { status: 'UNKNOWN', result: null, startTimeMs: 0 };
  }

  /**
   * Ends every running task (session lost, or the stop grace is over). graceMs 0 sends SIGKILL at
   * once: after a lost session another worker may already run the same task.
   */
  async stopAll(reason: StopReason, graceMs: number): Promise<void> {
    const tasks = [...this.running.values()];
    if (tasks.length > 0) this.logger.warn(`ending ${tasks.length} running task(s): ${reason.message}`);
    await Promise.all(tasks.map((t) => this.stopTask(t, reason, graceMs)));
  }

  /** Graceful stop: waits up to graceMs for running tasks to finish, then kills the rest. */
  async drain(graceMs: number): Promise<void> {
    const tasks = [...this.running.values()];
    if (tasks.length === 0) return;
    this.logger.log(`waiting up to ${graceMs} ms for ${tasks.length} running task(s)`);
    await within(this.clock, Promise.all(tasks.map((t) => t.done)), graceMs);
    await this.stopAll({ state: 'KILL', message: RESULT_MESSAGES.stopping }, KILL_GRACE_MS);
  }

  /**
   * At start: every running marker left by an earlier run of this worker names a task whose
   * result never reached the outbox (the worker died first). Its group is killed if it still
   * runs, and a KILL result is held for its master, so the task is neither lost nor run twice.
   */
  async recoverOrphans(): Promise<number> {
    await this.markers.init();
    const markers = await this.markers.loadAll();
    for (const [id, marker] of markers) {
      if (id !== marker.taskInstanceId) {
        this.logger.error(`running marker ${id}.json names task ${marker.taskInstanceId}; ignoring it`);
        continue;
      }
      const fired = this.watchdog.takeFiring(id);
      if (fired) this.logger.warn(`task ${id}: its watchdog killed process group ${marker.pid}: ${fired}`);
      if (this.ownsGroup(marker)) {
        this.logger.warn(
          `task ${id}: killing process group ${marker.pid} left by an earlier run of this worker`,
        );
        this.signal(marker.pid, 'SIGKILL');
      }
      if (!this.delivery.holds(id)) {
        await this.delivery.hold(marker.masterAddress, {
          taskInstanceId: id,
          workflowInstanceId: marker.workflowInstanceId,
          attempt: marker.attempt,
          state: 'KILL',
          exitCode: -1,
          startTimeMs: marker.startTimeMs,
          endTimeMs: this.clock.now(),
          workerAddress: this.address,
          epoch: marker.epoch,
          message: RESULT_MESSAGES.restarted,
        });
      }
      await this.markers.remove(id);
    }
    this.watchdog.clearMarks();
    return markers.size;
  }

  private async launch(task: RunningTask): Promise<void> {
    const { spec } = task;
    const id = spec.taskInstanceId;
    let log: FileHandle | undefined;
    let proc: StartedProcess;
    try {
      log = await this.logs.openForAppend(spec.workflowInstanceId, id);
      // The worker may have stalled (or lost its session) during that await: do not start the
      // task then; it is reported KILL (registry session lost) and the master runs it again.
      const refusal = this.admission.sessionRefusal();
      if (refusal) {
        task.stop ??= { state: 'KILL', message: RESULT_MESSAGES.sessionLost };
        throw new WorkerError(refusal);
      }
      const env = buildTaskEnv(this.runner.baseEnvironment(), spec);
      proc = await this.runner.spawn({ command: spec.command, env, outputFd: log.fd });
    } catch (err) {
      const message =
        err instanceof SpawnFailedError ? err.message : `cannot start the task: ${(err as Error).message}`;
      this.logger.error(`task ${id}: ${message}`);
      void this.finish(task, { spawnError: message });
      return;
    } finally {
      // The child holds its own copy of the descriptor.
      void log?.close().catch(() => undefined);
    }
    // No await from here until the exit handler is attached: the timeout and the TaskStarted
    // delivery must exist before finish() can run.
    task.pid = proc.pid;
    task.startToken = proc.startToken;
    this.supervise(task);
    if (spec.timeoutMs > 0) {
      task.cancelTimeout = longTimeout(
        this.clock,
        () => {
          this.logger.warn(`task ${id}: timed out after ${spec.timeoutMs} ms; killing its process group`);
          void this.stopTask(task, { state: 'FAILURE', message: RESULT_MESSAGES.timeout, exitCode: -1 }, 0);
        },
        spec.timeoutMs,
      );
    }
    task.startedDelivery = this.delivery.sendStarted(
      () => ({
        address: task.masterAddress,
        event: {
          taskInstanceId: id,
          workflowInstanceId: spec.workflowInstanceId,
          attempt: spec.attempt,
          startTimeMs: task.startTimeMs,
          workerAddress: this.address,
          epoch: task.epoch,
        },
      }),
      () => void this.stopTask(task, { state: 'KILL', message: RESULT_MESSAGES.obsolete }, 0),
    );
    void proc.exited.then((exit) => this.finish(task, exit));
    // Killed while it was being started.
    if (task.stop) this.signal(task.pid, 'SIGKILL');
    this.logger.log(
      `task ${id} (${spec.taskName}, attempt ${spec.attempt}) started as process group ${task.pid}`,
    );
    await this.writeMarker(task);
  }

  private async finish(task: RunningTask, end: ProcessExit | { spawnError: string }): Promise<void> {
    const { spec } = task;
    const id = spec.taskInstanceId;
    task.cancelTimeout?.();
    // The shell is gone; anything it left running in its group belongs to the finished task.
    if (task.pid !== undefined) this.signal(task.pid, 'SIGKILL');
    task.watchdog?.stop();
    const fired = task.pid !== undefined ? this.watchdog.takeFiring(id) : null;
    if (fired) {
      // The watchdog writes its mark before it kills, so a shell that died of a signal while the
      // mark exists died of that kill. A shell that had exited by itself first keeps its result.
      if ('signal' in end && end.signal !== null) {
        this.logger.warn(`task ${id}: its watchdog killed process group ${task.pid}: ${fired}`);
        task.stop ??= { state: 'KILL', message: RESULT_MESSAGES.sessionLost };
      } else {
        this.logger.warn(`task ${id}: its watchdog fired (${fired}) after the task had exited by itself`);
      }
    }
    const outcome = decideOutcome(end, task.stop);
    const event: TaskFinishedEvent = {
      taskInstanceId: id,
      workflowInstanceId: spec.workflowInstanceId,
      attempt: spec.attempt,
      state: outcome.state,
      exitCode: outcome.exitCode,
      startTimeMs: task.startTimeMs,
      endTimeMs: this.clock.now(),
      workerAddress: this.address,
      epoch: task.epoch,
      message: outcome.message,
    };
    this.logger.log(
      `task ${id} finished: ${outcome.state} (exit ${outcome.exitCode}${outcome.message ? `, ${outcome.message}` : ''})`,
    );
    // Held (visible to TakeOver/Dispatch) before it leaves the running map: no moment where the
    // worker does not know the task.
    const persisted = this.delivery.hold(task.masterAddress, event, task.startedDelivery);
    this.running.delete(id);
    await persisted;
    // Only now: a crash before this point leaves the marker, and the restart reports the task.
    await this.markers.remove(id).catch((err: Error) => {
      this.logger.error(`task ${id}: running marker not removed: ${err.message}`);
    });
    task.markDone();
  }

  /** Sends the signal (graceMs > 0: SIGTERM, then SIGKILL after graceMs) and waits for the result. */
  private async stopTask(task: RunningTask, reason: StopReason, graceMs: number): Promise<void> {
    // Already finished: its group is gone and its id may belong to someone else by now.
    if (this.running.get(task.spec.taskInstanceId) !== task) return;
    task.stop ??= reason;
    if (task.pid !== undefined) {
      this.signal(task.pid, graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
      if (graceMs > 0 && !(await within(this.clock, task.done, graceMs))) this.signal(task.pid, 'SIGKILL');
    }
    if (!(await within(this.clock, task.done, KILL_REAP_WAIT_MS))) {
      this.logger.warn(`task ${task.spec.taskInstanceId}: still not ended after SIGKILL`);
    }
  }

  /**
   * Starts the task's watchdog. One that cannot be started, or cannot run, ends the task (KILL,
   * unsupervised): a task a frozen worker could not end may run twice. One that someone killed is
   * started again (a few times).
   */
  private supervise(task: RunningTask): void {
    const id = task.spec.taskInstanceId;
    if (!this.liveness.watchdogs || task.pid === undefined) return;
    task.watchdog = this.watchdog.supervise(id, task.pid, {
      onFailure: (why, canRestart) => {
        if (this.running.get(id) !== task || task.stop) return;
        if (canRestart && task.watchdogRestarts < WATCHDOG_RESTARTS) {
          task.watchdogRestarts++;
          this.logger.warn(`task ${id}: ${why}; starting it again`);
          this.supervise(task);
          return;
        }
        this.logger.error(`task ${id}: ${why}; killing the task rather than run it unsupervised`);
        void this.stopTask(task, { state: 'KILL', message: RESULT_MESSAGES.unsupervised }, 0);
      },
    });
  }

  private redirect(task: RunningTask, masterAddress: string, epoch: number): void {
    if (epoch < task.epoch) {
      this.logger.warn(
        `task ${task.spec.taskInstanceId}: ignoring redirect to ${masterAddress} with epoch ${epoch} < ${task.epoch}`,
      );
      return;
    }
    if (task.masterAddress === masterAddress && task.epoch === epoch) return;
    task.masterAddress = masterAddress;
    task.epoch = epoch;
    this.logger.log(
      `task ${task.spec.taskInstanceId}: events redirected to ${masterAddress} (epoch ${epoch})`,
    );
    void this.writeMarker(task);
  }

  private async writeMarker(task: RunningTask): Promise<void> {
    // Checked when the write is queued: a finished task's marker removal is queued after this point,
    // so a marker can never be written back after it was removed.
    if (task.pid === undefined || this.running.get(task.spec.taskInstanceId) !== task) return;
    const { spec } = task;
    const marker: RunningMarker = {
      version: 1,
      taskInstanceId: spec.taskInstanceId,
      workflowInstanceId: spec.workflowInstanceId,
      taskName: spec.taskName,
      attempt: spec.attempt,
      masterAddress: task.masterAddress,
      epoch: task.epoch,
      startTimeMs: task.startTimeMs,
      pid: task.pid,
      startToken: task.startToken,
    };
    await this.markers.write(spec.taskInstanceId, marker).catch((err: Error) => {
      this.logger.error(`task ${spec.taskInstanceId}: running marker not written: ${err.message}`);
    });
  }

  /**
   * Whether the group a marker names is still the task's. A live leader must have the recorded
   * start time (a different one means the pid was reused); with the leader gone, a group of that
   * id can only be ours, since Linux does not reuse a pid while a group of that id exists.
   */
  private ownsGroup(marker: RunningMarker): boolean {
    const token = this.runner.startToken(marker.pid);
    if (token !== null) return marker.startToken !== null && token === marker.startToken;
    try {
      return this.runner.signalGroup(marker.pid, 0);
    } catch {
      return false;
    }
  }

  private signal(pgid: number | undefined, signal: NodeJS.Signals): void {
    if (pgid === undefined) return;
    try {
      this.runner.signalGroup(pgid, signal);
    } catch (err) {
      this.logger.error(`cannot send ${signal} to process group ${pgid}: ${(err as Error).message}`);
    }
  }
}
