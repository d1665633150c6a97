import { Inject, Injectable, Logger } from '@nestjs/common';
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
  WorkerAddressee,
} from '@porpoise/rpc';
import { ProcessRunner } from '../adapters/process-runner';
import { SupersededStore } from '../adapters/superseded-store';
import { TaskWatchdog } from '../adapters/task-watchdog';
import { TaskLogStore, type TaskLogFile } from '../adapters/task-log-store';
import { RunningMarkerStore } from '../adapters/worker-stores';
import { isSuperseded } from '../domain/admission';
import { limitOutputs } from '../domain/output-limits';
import type { RunningMarker } from '../domain/records';
import { applyStop, type StopReason } from '../domain/task-result';
import type { PreparedTask, TaskProcess, TaskRunContext, TaskRunResult } from '../task-types/task-type';
import {
  KILL_GRACE_MS,
  KILL_REAP_WAIT_MS,
  RESULT_MESSAGES,
  STARTED_EVENT_DELAY_MS,
} from '../worker.constants';
import { workerAddress } from '../worker.config';
import { WorkerError } from '../worker.errors';
import { AdmissionService } from './admission.service';
import { ResultDeliveryService } from './result-delivery.service';
import { aboutTask } from '../domain/task-log-ids';

/** One task run on this worker, from Dispatch until its result is held in the outbox. */
interface RunningTask {
  readonly spec: TaskSpec;
  readonly prepared: PreparedTask;
  /** Where events go; a TakeOver (or a Dispatch from a newer epoch) changes them. */
  masterAddress: string;
  epoch: number;
  readonly startTimeMs: number;
  /** The run has begun: TaskStarted sent, timeout armed, running marker written. */
  begun: boolean;
  /** Resolves once the run has begun and its marker is written, or the run has ended. */
  readonly launched: Promise<void>;
  readonly markLaunched: () => void;
  /** A SHELL task's shell pid = its process group id; undefined without a process (yet). */
  pid: number | undefined;
  startToken: string | null;
  /**
   * Someone besides the Dispatch that brought it was told it runs here (a TakeOver, the same
   * Dispatch again): from then on it can no longer be withdrawn, only ended with a result.
   */
  shared: boolean;
  /** Set when the worker ends the run itself; the first reason wins. */
  stop: StopReason | undefined;
  /** Aborted at the first stop (TaskRunContext.signal). */
  readonly abort: AbortController;
  /** The run's stop listeners (TaskRunContext.onStop). */
  readonly stopListeners: ((graceMs: number) => void)[];
  /** The work is over and only its result is being collected: stops no longer apply. */
  settled: boolean;
  cancelTimeout: (() => void) | undefined;
  /** The pending TaskStarted (sent only if the run lasts STARTED_EVENT_DELAY_MS). */
  startedTimer: TimerHandle | undefined;
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
 * Runs tasks of every worker type (task-types/): the part common to all of them. Dispatch is
 * idempotent per task instance id and admitted only while the registry session allows it; each
 * run gets its task log, a timeout, Kill, TaskStarted, and a result held in the outbox until a
 * master acknowledges it. A running marker on disk names each run (with a SHELL task's process
 * group), so that a worker restarted after a crash reports the run KILL and ends any group its
 * predecessor left behind instead of letting it run on unseen.
 *
 * A stop (Kill, timeout, session loss, stall, stop) aborts the run's signal and tells its stop
 * listeners (a SHELL task signals its group); the stop reason is the reported result, whatever
 * the run returns, so a task killed because the session was lost is never reported SUCCESS.
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
    private readonly superseded: SupersededStore,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.address = workerAddress(config);
    // The watchdogs end SHELL tasks when the worker stalls; a run inside the worker has none, so it
    // ends here, as soon as the stall is seen: its session may have expired meanwhile.
    admission.onStall(() => void this.stopInProcessRuns());
  }

  get runningCount(): number {
    return this.running.size;
  }

  /**
   * Starts a task, idempotently per task instance id: a task this worker runs, holds a result of,
   * or has run before (its log exists) is answered accepted and not started again.
   */
  async dispatch(prepared: PreparedTask, to?: WorkerAddressee): Promise<DispatchResponse> {
    const { spec } = prepared;
    const id = spec.taskInstanceId;
    // Everything up to running.set() is synchronous, so two concurrent Dispatches cannot both start it.
    // An owner asked for this task and heard UNKNOWN: it runs the task again as a new attempt, so a
    // Dispatch sent before that (a frozen master, a call cut mid-way) must not start a stale run.
    // The same epoch too: that master re-runs it under a new task id, never this one (see isSuperseded).
    const unknownAt = this.superseded.epochOf(id);
    if (isSuperseded(spec.epoch, unknownAt)) {
      this.logger.warn(
        aboutTask(
          spec,
          `task ${id}: Dispatch from ${spec.masterAddress} with epoch ${spec.epoch} refused: ` +
            `a TakeOver with epoch ${unknownAt} was answered UNKNOWN`,
        ),
      );
      return { accepted: false, reason: 'superseded' };
    }
    const current = this.running.get(id);
    if (current) {
      current.shared = true;
      this.redirect(current, spec.masterAddress, spec.epoch);
      return { accepted: true, reason: 'already running' };
    }
    if (this.delivery.holds(id)) {
      this.delivery.redirect(id, spec.masterAddress, spec.epoch);
      return { accepted: true, reason: 'already finished' };
    }
    if (this.logs.has(id)) return { accepted: true, reason: 'already ran' };
    // Synchronous, on the clock: after a stall the queued Dispatches run before any registry event.
    const refusal = this.admission.refusal(performance.now(), to);
    if (refusal) return { accepted: false, reason: refusal };
    if (this.running.size >= this.config.workerCapacity) return { accepted: false, reason: 'over capacity' };

    let markDone!: () => void;
    let markLaunched!: () => void;
    const task: RunningTask = {
      spec,
      prepared,
      masterAddress: spec.masterAddress,
      epoch: spec.epoch,
      startTimeMs: this.clock.now(),
      begun: false,
      shared: false,
      launched: new Promise<void>((r) => (markLaunched = r)),
      markLaunched: () => markLaunched(),
      pid: undefined,
      startToken: null,
      stop: undefined,
      abort: new AbortController(),
      stopListeners: [],
      settled: false,
      cancelTimeout: undefined,
      startedTimer: undefined,
      startedDelivery: Promise.resolve(),
      done: new Promise<void>((r) => (markDone = r)),
      markDone: () => markDone(),
    };
    this.running.set(id, task);
    const withdrawn = await this.launch(task);
    if (withdrawn !== undefined) return { accepted: false, reason: withdrawn };
    return { accepted: true, reason: '' };
  }

  /** Ends the task (a SHELL task's whole group: SIGTERM, SIGKILL after a short grace). Result state KILL. */
  async kill(taskInstanceId: number): Promise<KillResponse> {
    const task = this.running.get(taskInstanceId);
    // A settled run has ended already; only its result is being collected.
    if (!task || task.settled) return { killed: false };
    this.logger.log(aboutTask(task.spec, `task ${taskInstanceId}: kill requested`));
    await this.stopTask(task, { state: 'KILL', message: RESULT_MESSAGES.killed }, KILL_GRACE_MS);
    return { killed: true };
  }

  /**
   * A new owner re-attaches a task: its future events (or its held result, outputs included) go
   * there. UNKNOWN makes the new owner run the task again, so its epoch is remembered first
   * (memory at once, then disk) and a later Dispatch of the task from that epoch or an older one
   * is refused.
   */
  async takeOver(req: TakeOverRequest): Promise<TakeOverResponse> {
    const task = this.running.get(req.taskInstanceId);
    if (task) {
      task.shared = true;
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
   * result never reached the outbox (the worker died first). Its group, if it has one, is killed
   * if it still runs, and a KILL result is held for its master, so the task is neither lost nor
   * run twice.
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
      if (fired) {
        this.logger.warn(
          aboutTask(marker, `task ${id}: its watchdog killed process group ${marker.pid}: ${fired}`),
        );
      }
      if (marker.pid !== null && this.ownsGroup(marker.pid, marker.startToken)) {
        this.logger.warn(
          aboutTask(
            marker,
            `task ${id}: killing process group ${marker.pid} left by an earlier run of this worker`,
          ),
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
          outputs: {},
        });
      }
      await this.markers.remove(id);
    }
    this.watchdog.clearMarks();
    return markers.size;
  }

  /**
   * Resolves once the run has begun (its marker written) or has already ended; or with the reason
   * when the session no longer allows starting it and nothing was started (withdraw()).
   */
  private async launch(task: RunningTask): Promise<string | undefined> {
    const { spec } = task;
    const id = spec.taskInstanceId;
    let log: TaskLogFile | undefined;
    try {
      log = await this.logs.openForAppend(spec.workflowInstanceId, id);
      // A process's output is drained through the worker (the log cap): its channel is made here,
      // before the session check below, so that starting the process awaits nothing.
      if (task.prepared.startsProcess) await log.openChildOutput(id);
      // The worker may have stalled, or its session been suspended or lost, during those awaits:
      // do not start the task then.
      const refusal = this.admission.sessionRefusal();
      if (refusal) {
        if (!task.shared && task.stop === undefined) {
          await this.withdraw(task, log, refusal);
          return refusal;
        }
        // Someone was told it runs (a TakeOver, a Dispatch again) or it was stopped meanwhile: it
        // is reported KILL (registry session lost) and the master runs it again.
        task.stop ??= { state: 'KILL', message: RESULT_MESSAGES.sessionLost };
        throw new WorkerError(refusal);
      }
    } catch (err) {
      const message = `cannot start the task: ${(err as Error).message}`;
      this.logger.error(aboutTask(spec, `task ${id}: ${message}`));
      await log?.close().catch(() => undefined);
      void this.finish(task, { state: 'FAILURE', exitCode: -1, message, outputs: {} });
      return undefined;
    }
    const file = log;
    // No await from here until run() has been called: the session was checked just now.
    if (!task.prepared.startsProcess) this.begin(task);
    let run: Promise<TaskRunResult>;
    try {
      run = task.prepared.run(this.context(task, file));
    } catch (err) {
      run = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    void run
      .catch((err: unknown): TaskRunResult => {
        const message = `${spec.taskType} task failed: ${err instanceof Error ? err.message : String(err)}`;
        this.logger.error(aboutTask(spec, `task ${id}: ${message}`));
        return { state: 'FAILURE', exitCode: -1, message, outputs: {} };
      })
      .then(async (result) => {
        const { outputs, leftOut } = limitOutputs(result.outputs);
        if (leftOut.length > 0) {
          await file.write(
            leftOut
              .map((o) => `[porpoise] output ${JSON.stringify(o.name)} left out: ${o.reason}\n`)
              .join(''),
          );
        }
        await file.close().catch((err: Error) => {
          this.logger.error(aboutTask(spec, `task ${id}: closing its log failed: ${err.message}`));
        });
        await this.finish(task, { ...result, outputs });
      });
    await Promise.race([task.launched, run.then(ignore, ignore)]);
    return undefined;
  }

  /**
   * A task not started because the session changed while it was being launched, and nobody but
   * its Dispatch knows of it: it leaves no trace (no result, no marker, no log, so that the same
   * attempt sent again is not taken for one that already ran) and the Dispatch is answered
   * refused, as if refused at once. The master then sends the same attempt again once a worker
   * takes it; a KILL result would have cost the task a new attempt (a re-run after a registry
   * outage its sessions survived) for a run that never began.
   */
  private async withdraw(task: RunningTask, log: TaskLogFile, why: string): Promise<void> {
    const { spec } = task;
    const id = spec.taskInstanceId;
    this.running.delete(id);
    this.logger.warn(aboutTask(spec, `task ${id}: not started (${why}); the Dispatch is refused`));
    await log.close().catch(() => undefined);
    await this.logs.discard(spec.workflowInstanceId, id).catch((err: Error) => {
      this.logger.error(aboutTask(spec, `task ${id}: its unused log not removed: ${err.message}`));
    });
    task.markLaunched();
    task.markDone();
  }

  /** What a task type sees of its run. */
  private context(task: RunningTask, log: TaskLogFile): TaskRunContext {
    return {
      spec: task.spec,
      log,
      signal: task.abort.signal,
      clock: this.clock,
      onStop: (listener) => {
        task.stopListeners.push(listener);
        // Stopped while it was being started.
        if (task.stop && !task.settled) listener(0);
      },
      processStarted: (process) => this.begin(task, process),
      settled: () => {
        task.settled = true;
        task.cancelTimeout?.();
        this.clock.clearTimeout(task.startedTimer);
      },
      stop: (reason) => void this.stopTask(task, reason, 0),
    };
  }

  /** The run has begun: timeout, TaskStarted, running marker. */
  private begin(task: RunningTask, process?: TaskProcess): void {
    if (task.begun) return;
    const { spec } = task;
    const id = spec.taskInstanceId;
    task.begun = true;
    task.pid = process?.pid;
    task.startToken = process?.startToken ?? null;
    if (spec.timeoutMs > 0) {
      task.cancelTimeout = longTimeout(
        this.clock,
        () => {
          this.logger.warn(
            aboutTask(
              spec,
              `task ${id}: timed out after ${spec.timeoutMs} ms; ${process ? 'killing its process group' : 'aborting it'}`,
            ),
          );
          void this.stopTask(task, { state: 'FAILURE', message: RESULT_MESSAGES.timeout, exitCode: -1 }, 0);
        },
        spec.timeoutMs,
      );
    }
    // An instant run (EMPTY) ends within this Dispatch: its result, which carries the start time,
    // is the only event (a TaskStarted would cost the master a call and a write for nothing). So
    // does any run that ends within STARTED_EVENT_DELAY_MS.
    if (!task.prepared.instant) {
      task.startedTimer = unrefTimer(
        this.clock.setTimeout(() => {
          task.startedTimer = undefined;
          if (!task.settled && this.running.get(id) === task) this.sendStarted(task);
        }, STARTED_EVENT_DELAY_MS),
      );
    }
    this.logger.log(
      aboutTask(
        spec,
        `task ${id} (${spec.taskName}, attempt ${spec.attempt}) started as ` +
          (process ? `process group ${process.pid}` : `a ${spec.taskType} run inside the worker`),
      ),
    );
    if (task.prepared.instant) task.markLaunched();
    else void this.writeMarker(task).finally(() => task.markLaunched());
  }

  private sendStarted(task: RunningTask): void {
    const { spec } = task;
    const id = spec.taskInstanceId;
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
  }

  private async finish(task: RunningTask, result: TaskRunResult): Promise<void> {
    const { spec } = task;
    const id = spec.taskInstanceId;
    task.cancelTimeout?.();
    this.clock.clearTimeout(task.startedTimer);
    const outcome = applyStop(result, task.stop);
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
      outputs: result.outputs,
    };
    const outputCount = Object.keys(result.outputs).length;
    this.logger.log(
      aboutTask(
        spec,
        `task ${id} finished: ${outcome.state} (exit ${outcome.exitCode}${outcome.message ? `, ${outcome.message}` : ''}` +
          `${outputCount > 0 ? `, ${outputCount} output(s)` : ''})`,
      ),
    );
    // Held (visible to TakeOver/Dispatch) before it leaves the running map: no moment where the
    // worker does not know the task.
    const persisted = this.delivery.hold(task.masterAddress, event, task.startedDelivery);
    this.running.delete(id);
    task.markLaunched();
    await persisted;
    // Only now: a crash before this point leaves the marker, and the restart reports the task.
    await this.markers.remove(id).catch((err: Error) => {
      this.logger.error(aboutTask(spec, `task ${id}: running marker not removed: ${err.message}`));
    });
    task.markDone();
  }

  /**
   * Stops the run: its signal aborts and its stop listeners hear graceMs (a SHELL task's group:
   * SIGTERM, then SIGKILL after graceMs; at once when 0). Waits for the result.
   */
  private async stopTask(task: RunningTask, reason: StopReason, graceMs: number): Promise<void> {
    // Already finished: its group is gone and its id may belong to someone else by now.
    if (this.running.get(task.spec.taskInstanceId) !== task) return;
    if (!task.settled) {
      task.stop ??= reason;
      this.requestStop(task, graceMs);
      if (graceMs > 0 && task.stopListeners.length > 0 && !(await within(this.clock, task.done, graceMs))) {
        this.requestStop(task, 0);
      }
    }
    if (!(await within(this.clock, task.done, KILL_REAP_WAIT_MS))) {
      this.logger.warn(
        aboutTask(
          task.spec,
          `task ${task.spec.taskInstanceId}: still not ended after ${task.pid !== undefined ? 'SIGKILL' : 'being stopped'}`,
        ),
      );
    }
  }

  private requestStop(task: RunningTask, graceMs: number): void {
    if (task.settled) return;
    if (!task.abort.signal.aborted) task.abort.abort(task.stop);
    for (const listener of task.stopListeners) listener(graceMs);
  }

  /** After a stall: every run without a process (no watchdog could end it) ends now. */
  private async stopInProcessRuns(): Promise<void> {
    const tasks = [...this.running.values()].filter((t) => t.begun && t.pid === undefined && !t.settled);
    if (tasks.length === 0) return;
    this.logger.warn(`the worker stalled: ending ${tasks.length} task(s) running inside it`);
    await Promise.all(
      tasks.map((t) => this.stopTask(t, { state: 'KILL', message: RESULT_MESSAGES.sessionLost }, 0)),
    );
  }

  private redirect(task: RunningTask, masterAddress: string, epoch: number): void {
    if (epoch < task.epoch) {
      this.logger.warn(
        aboutTask(
          task.spec,
          `task ${task.spec.taskInstanceId}: ignoring redirect to ${masterAddress} with epoch ${epoch} < ${task.epoch}`,
        ),
      );
      return;
    }
    if (task.masterAddress === masterAddress && task.epoch === epoch) return;
    task.masterAddress = masterAddress;
    task.epoch = epoch;
    this.logger.log(
      aboutTask(
        task.spec,
        `task ${task.spec.taskInstanceId}: events redirected to ${masterAddress} (epoch ${epoch})`,
      ),
    );
    void this.writeMarker(task);
  }

  private async writeMarker(task: RunningTask): Promise<void> {
    // Checked when the write is queued: a finished task's marker removal is queued after this point,
    // so a marker can never be written back after it was removed.
    if (!task.begun || task.prepared.instant || this.running.get(task.spec.taskInstanceId) !== task) return;
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
      pid: task.pid ?? null,
      startToken: task.startToken,
    };
    await this.markers.write(spec.taskInstanceId, marker).catch((err: Error) => {
      this.logger.error(
        aboutTask(spec, `task ${spec.taskInstanceId}: running marker not written: ${err.message}`),
      );
    });
  }

  /**
   * Whether the group a marker names is still the task's. A live leader must have the recorded
   * start time (a different one means the pid was reused); with the leader gone, a group of that
   * id can only be ours, since Linux does not reuse a pid while a group of that id exists.
   */
  private ownsGroup(pid: number, startToken: string | null): boolean {
    const token = this.runner.startToken(pid);
    if (token !== null) return startToken !== null && token === startToken;
    try {
      return this.runner.signalGroup(pid, 0);
    } catch {
      return false;
    }
  }

  private signal(pgid: number, signal: NodeJS.Signals): void {
    try {
      this.runner.signalGroup(pgid, signal);
    } catch (err) {
      this.logger.error(`cannot send ${signal} to process group ${pgid}: ${(err as Error).message}`);
    }
  }
}

function ignore(): undefined {
  return undefined;
}
