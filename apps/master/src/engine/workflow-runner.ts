import type { LoggerService } from '@nestjs/common';
import {
  type CommandType,
  type TaskDefinition,
  type TaskState,
  type WorkflowState,
  type Clock,
  type TimerHandle,
} from '@porpoise/common';
import {
  type InstanceFence,
  type InstanceStateRepository,
  type FencedInsert,
  type FencedWrite,
  type TaskInstanceRepository,
  type TaskRow,
} from '@porpoise/dao';
import {
  RpcCallError,
  TASK_RESULT_MESSAGES,
  type EventAck,
  type TaskFinishedEvent,
  type TaskSpec,
  type TaskStartedEvent,
  type TakeOverResponse,
} from '@porpoise/rpc';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { MasterOptions } from '../master.constants';
import { OwnershipLostError } from '../master.errors';
import type { WorkerGateway } from '../dispatch/worker-gateway';
import { readyTasks, type Dag, type TaskProgress } from './dag';
import { SerialQueue } from './serial-queue';

/** What a runner needs from the rest of the master (wired by the WorkflowEngine). */
export interface RunnerDeps {
  readonly me: string;
  readonly tasks: TaskInstanceRepository;
  readonly instances: InstanceStateRepository;
  readonly workers: {
    pick(group: string, exclude: ReadonlySet<string>): string | undefined;
    isLive(address: string): boolean;
    noteAssigned(address: string): void;
  };
  readonly gateway: WorkerGateway;
  readonly clock: Clock;
  readonly session: { canStartWork(): boolean };
  readonly options: MasterOptions;
  readonly logger: LoggerService;
  /** Called once when the runner ends (instance final, ownership lost, dropped). */
  readonly onClosed: (runner: WorkflowRunner, reason: string) => void;
}

/** An instance this master just took (consume transaction), with what it needs to drive it. */
export interface Adoption {
  readonly instanceId: number;
  readonly epoch: number;
  readonly commandType: CommandType;
  readonly state: WorkflowState;
  readonly params: Record<string, string>;
  /** The definition, or why it is unusable (the instance then fails at once). */
  readonly dag: Dag | Error;
  /** Latest attempt of each task (empty for a fresh run). */
  readonly latest: readonly TaskRow[];
}

type Mode = 'running' | 'stopping' | 'pausing';

export interface RunnerSnapshot {
  instanceId: number;
  epoch: number;
  mode: Mode;
  failed: boolean;
  tasks: Array<{ name: string; state?: TaskState; attempt?: number; host: string | null; parked: boolean }>;
}

/** One task of the DAG and its current attempt. */
interface TaskSlot {
  readonly name: string;
  readonly def: TaskDefinition;
  /** The current attempt; undefined = never ran in this run (pending). */
  row: TaskRow | undefined;
  /** Highest attempt number known, so the next one is unique. */
  lastAttempt: number;
  /** Failed attempts retried so far in this run (a fault-tolerance re-run does not count). */
  retriesUsed: number;
  /** Workers tried (refused / unreachable) for the current dispatch round. */
  readonly tried: Set<string>;
  /** A worker that ended the previous attempt itself (stopping, lost session): prefer another. */
  avoid: string | undefined;
  /** A Dispatch call for the current row is in flight. */
  dispatching: boolean;
  /**
   * The worker process (its heartbeat startTime) that has the current row, from its Dispatch or
   * TakeOver answer; undefined until one answered. A restarted worker on the same address is
   * another process: the loss of the old one does not touch the tasks the new one took.
   */
  workerStartTimeMs: number | undefined;
  /**
   * The row's worker process was reported gone while its Dispatch was in flight (the process's
   * startTime, or null when unknown): the answer tells whether that process took it.
   */
  lostDuringDispatch: number | null | undefined;
  /**
   * Id of the row whose Dispatch failed ambiguously (it may have started on its worker): it is
   * being resolved with TakeOver on that same worker and must never be sent to another one.
   */
  resolving: number | undefined;
  /** Waiting for a worker of its group (no live worker accepted it). */
  parked: boolean;
  parkTimer: TimerHandle | undefined;
  /** The retry interval elapsed; the next advance creates the new attempt. */
  retryDue: boolean;
  retryTimer: TimerHandle | undefined;
}

const ACTIVE: readonly TaskState[] = ['DISPATCH', 'RUNNING_EXECUTION'];
const LIVE: readonly TaskState[] = ['SUBMITTED_SUCCESS', 'DISPATCH', 'RUNNING_EXECUTION', 'DELAY_EXECUTION'];
const ack = (status: EventAck['status'], reason = ''): EventAck => ({ status, reason });
/** Backoff of the TakeOver calls that resolve an ambiguous Dispatch (doubling, capped). */
const RESOLVE_BACKOFF_MIN_MS = 250;
const RESOLVE_BACKOFF_MAX_MS = 5000;

/**
 * Whether a failed Dispatch provably never reached the worker, so the worker cannot have started
 * the task: only a call the channel failed before sending anything (no connection to the worker:
 * refused, unreachable). Anything else (connection dropped, deadline, cancelled, internal, ...)
 * may have started it and is ambiguous.
 */
export function dispatchNeverSent(err: Error): boolean {
  return (
    err instanceof RpcCallError &&
    err.code === GrpcStatus.UNAVAILABLE &&
    /: UNAVAILABLE: No connection established\b/.test(err.message)
  );
}

/**
 * Drives one workflow instance this master owns, from events only (no polling): the adoption,
 * worker events (TaskStarted / TaskFinished), Dispatch answers, retry timers, worker loss,
 * stop / pause requests. Every change runs through a SerialQueue, and every write is fenced on
 * (host, epoch): a write that finds the fence gone closes the runner at once.
 */
export class WorkflowRunner {
  readonly instanceId: number;
  readonly epoch: number;
  private readonly fence: InstanceFence;
  private readonly queue = new SerialQueue();
  private readonly slots = new Map<string, TaskSlot>();
  private readonly byRowId = new Map<number, TaskSlot>();
  private readonly params: Record<string, string>;
  private mode: Mode = 'running';
  /** A task failed for good (or was killed unasked): start nothing new, end FAILURE when idle. */
  private failed = false;
  private closed = false;
  private finishedAs: WorkflowState | undefined;
  private recoveryTimer: TimerHandle | undefined;
  /** Dispatch calls not answered yet (a dropped runner waits for them before a hand-back). */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly adoption: Adoption,
    private readonly deps: RunnerDeps,
  ) {
    this.instanceId = adoption.instanceId;
    this.epoch = adoption.epoch;
    this.fence = { instanceId: adoption.instanceId, host: deps.me, epoch: adoption.epoch };
    this.params = adoption.params;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** What the runner believes right now (diagnostics and tests; the rows are the truth). */
  snapshot(): RunnerSnapshot {
    return {
      instanceId: this.instanceId,
      epoch: this.epoch,
      mode: this.mode,
      failed: this.failed,
      tasks: [...this.slots.values()].map((s) => ({
        name: s.name,
        state: s.row?.state,
        attempt: s.row?.attempt,
        host: s.row?.host ?? null,
        parked: s.parked,
      })),
    };
  }

  /** Settles once every queued change has been applied (used at shutdown). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * Settles once every queued change has been applied and every Dispatch call has been answered
   * (or failed), waiting at most boundMs for the calls. Before an instance is handed over: a
   * Dispatch landing on a worker after the successor's TakeOver asked that worker about the
   * task would run it beside the successor's re-run.
   */
  async settled(boundMs: number): Promise<void> {
    await this.queue.idle();
    if (this.inFlight.size === 0) return;
    let timer: TimerHandle | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise<void>((resolve) => (timer = this.deps.clock.setTimeout(resolve, boundMs))),
    ]);
    this.deps.clock.clearTimeout(timer);
  }

  // ---------------------------------------------------------------- inputs

  /** Loads the adopted state, re-attaches running tasks, and starts the ready ones. */
  start(): Promise<void> {
    return this.op('start', () => this.init());
  }

  taskStarted(ev: TaskStartedEvent): Promise<EventAck> {
    return this.handle(async () => {
      const check = this.checkEvent(ev);
      if ('status' in check) return check;
      const { slot, row } = check;
      if (row.state === 'RUNNING_EXECUTION' || !LIVE.includes(row.state) || row.state === 'DELAY_EXECUTION') {
        return ack('ACCEPTED', `already ${row.state}`);
      }
      if (row.state !== 'DISPATCH') return ack('OBSOLETE', `task instance ${row.id} is ${row.state}`);
      const w = await this.write(this.deps.tasks.markStarted(this.fence, row.id, row.host!, ev.startTimeMs));
      if (w.ids.length === 0) return this.reconcileAfterMiss(slot, 'RUNNING_EXECUTION');
      row.state = 'RUNNING_EXECUTION';
      return ack('ACCEPTED');
    });
  }

  taskFinished(ev: TaskFinishedEvent): Promise<EventAck> {
    return this.handle(async () => {
      const check = this.checkEvent(ev);
      if ('status' in check) return check;
      const { slot, row } = check;
      if (!ACTIVE.includes(row.state)) {
        const same = row.state === ev.state || (ev.state === 'FAILURE' && row.state === 'DELAY_EXECUTION');
        return same
          ? ack('ACCEPTED', 'already recorded')
          : ack('OBSOLETE', `task instance ${row.id} is ${row.state}`);
      }
      const result = await this.applyResult(slot, ev);
      this.later('advance', () => this.advance());
      return result;
    });
  }

  /** The instance's state changed in the database (NOTIFY porpoise_instance_control). */
  control(): Promise<void> {
    return this.op('control', async () => {
      const state = await this.deps.instances.readOwnedState(this.fence);
      if (state === undefined) throw new OwnershipLostError(this.instanceId, this.epoch);
      await this.applyInstanceState(state);
    });
  }

  /**
   * A worker process is gone (its registry key went away, or a new process on the address
   * replaced it): the tasks of this instance it had must run again elsewhere. startTimeMs names
   * the process (undefined: unknown, every task on the address counts as its).
   */
  workerLost(address: string, startTimeMs?: number): Promise<void> {
    return this.op('worker lost', async () => {
      const lost: TaskSlot[] = [];
      for (const slot of this.slots.values()) {
        const row = slot.row;
        if (!row || row.host !== address || !ACTIVE.includes(row.state)) continue;
        // Another process on this address took it: not lost.
        const known = slot.workerStartTimeMs;
        if (startTimeMs !== undefined && known !== undefined && known !== startTimeMs) continue;
        if (slot.dispatching && known === undefined) {
          // Which process takes the Dispatch in flight is not known yet: its answer decides.
          slot.lostDuringDispatch = startTimeMs ?? null;
          continue;
        }
        lost.push(slot);
      }
      if (lost.length === 0) return;
      this.log('warn', `worker ${address} is gone; re-running ${lost.map((s) => s.name).join(', ')}`);
      await this.faultTolerate(lost, `worker ${address} lost`);
      await this.advance();
    });
  }

  /** A worker of group became available: retry the tasks waiting for one. */
  workersAvailable(group: string): void {
    if (this.closed) return;
    const waiting = [...this.slots.values()].some((s) => s.parked && s.def.workerGroup === group);
    if (waiting) void this.op('unpark', () => this.unpark(group));
  }

  /** The session is usable again after SUSPENDED: carry on with what was held back. */
  resume(): void {
    if (this.closed) return;
    void this.op('resume', async () => {
      await this.unpark(undefined);
      await this.advance();
    });
  }

  /** Stops driving the instance without writing anything (session LOST, shutdown). */
  drop(reason: string): void {
    this.close(reason);
  }

  // ---------------------------------------------------------------- adoption

  private async init(): Promise<void> {
    const { dag } = this.adoption;
    if (dag instanceof Error) {
      this.log('error', `cannot run: ${dag.message}; the instance fails`);
      await this.finish('FAILURE');
      return;
    }
    const latest = new Map(this.adoption.latest.map((r) => [r.name, r]));
    const type = this.adoption.commandType;
    const toTakeOver: TaskSlot[] = [];
    for (const name of dag.order) {
      const def = dag.tasks.get(name)!;
      const prev = latest.get(name);
      const slot: TaskSlot = {
        name,
        def,
        row: undefined,
        lastAttempt: prev?.attempt ?? 0,
        retriesUsed: 0,
        tried: new Set(),
        avoid: undefined,
        dispatching: false,
        workerStartTimeMs: undefined,
        lostDuringDispatch: undefined,
        resolving: undefined,
        parked: false,
        parkTimer: undefined,
        retryDue: false,
        retryTimer: undefined,
      };
      this.slots.set(name, slot);
      if (!prev) continue;
      const keep = (row: TaskRow) => {
        slot.row = { ...row };
        this.byRowId.set(row.id, slot);
      };
      if (ACTIVE.includes(prev.state)) {
        // Still on a worker as far as the rows know: whatever the command, find out (TakeOver).
        keep(prev);
        toTakeOver.push(slot);
      } else if (type === 'RECOVER_TOLERANCE_FAULT_PROCESS') {
        // Failover: keep finished tasks, continue unfinished ones where they stood.
        if (prev.state === 'SUCCESS' || prev.state === 'FAILURE' || prev.state === 'KILL') keep(prev);
        else if (prev.state === 'SUBMITTED_SUCCESS') keep(prev);
        else if (prev.state === 'DELAY_EXECUTION') {
          keep(prev);
          slot.retryDue = true;
        }
        // PAUSE, NEED_FAULT_TOLERANCE: a new attempt.
        if (prev.state === 'FAILURE' || prev.state === 'KILL') this.failed = true;
      } else if (type === 'START_FAILURE_TASK_PROCESS' || type === 'RECOVER_SUSPENDED_PROCESS') {
        if (prev.state === 'SUCCESS') keep(prev);
      }
      // START_PROCESS, SCHEDULER, REPEAT_RUNNING (and anything else): every task runs again.
    }
    this.log(
      'log',
      `adopted (${type}, epoch ${this.epoch}, ${this.adoption.state}); ` +
        `${dag.tasks.size} task(s), ${[...this.slots.values()].filter((s) => s.row).length} carried over`,
    );

    if (this.adoption.state === 'READY_STOP') return this.beginStop();
    if (toTakeOver.length > 0) await this.takeOver(toTakeOver);
    if (this.closed) return;
    if (this.adoption.state === 'READY_PAUSE') return this.beginPause();
    await this.advance();
  }

  /**
   * Re-attaches tasks a previous owner (or a previous epoch of ours) left on workers: the worker
   * sends their events to us from now on (RUNNING), hands over a result it still holds
   * (FINISHED), or never heard of them / is gone (UNKNOWN, not live): run again. A live worker
   * that does not answer is asked again until it does or its key is gone (resolve()).
   */
  private async takeOver(slots: TaskSlot[]): Promise<void> {
    const answers = await Promise.all(
      slots.map(async (slot) => {
        const row = slot.row!;
        if (!row.host || !this.deps.workers.isLive(row.host)) {
          return { slot, answer: undefined, failed: false };
        }
        try {
          const answer = await this.deps.gateway.takeOver(
            row.host,
            row.id,
            this.deps.me,
            this.epoch,
            this.deps.options.workerCallDeadlineMs,
          );
          return { slot, answer, failed: false };
        } catch (err) {
          this.log('warn', `TakeOver of task ${row.id} on ${row.host} failed: ${(err as Error).message}`);
          return { slot, answer: undefined, failed: true };
        }
      }),
    );
    const rerun: TaskSlot[] = [];
    for (const { slot, answer, failed } of answers) {
      const row = slot.row!;
      // A live worker that did not answer may still run the task: never run it a second time
      // beside itself; keep asking until it answers or its registry key is gone.
      if (failed && row.host) this.resolve(slot, row.id, row.host, ['DISPATCH', 'RUNNING_EXECUTION']);
      else if (!(await this.applyTakeOver(slot, answer))) rerun.push(slot);
    }
    if (rerun.length > 0) await this.faultTolerate(rerun, 'not found on its worker after failover');
  }

  /**
   * Applies what a worker answered to TakeOver of the slot's current row: RUNNING re-attaches it
   * (its events come to us), FINISHED applies the result it held. False when the worker does not
   * have it (UNKNOWN, no answer): the caller runs it again as a new attempt.
   */
  private async applyTakeOver(slot: TaskSlot, answer: TakeOverResponse | undefined): Promise<boolean> {
    const row = slot.row!;
    if (answer?.status === 'RUNNING') {
      slot.workerStartTimeMs = answer.workerStartTimeMs || undefined;
      if (row.state === 'DISPATCH') {
        const w = await this.write(
          this.deps.tasks.markStarted(this.fence, row.id, row.host!, answer.startTimeMs),
        );
        if (w.ids.length > 0) row.state = 'RUNNING_EXECUTION';
      }
      this.log('log', `re-attached task ${slot.name} (${row.id}) running on ${row.host}`);
      return true;
    }
    if (answer?.status === 'FINISHED' && answer.result && answer.result.taskInstanceId === row.id) {
      await this.applyResult(slot, answer.result);
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- the DAG

  /** Applies whatever follows from the current state: finish, retry, start ready tasks. */
  private async advance(): Promise<void> {
    if (this.closed || this.mode === 'stopping') return;
    if (this.mode === 'pausing' || this.failed) {
      await this.cancelUnstarted();
      if (this.hasActive()) return;
      const end: WorkflowState = this.allSucceeded() ? 'SUCCESS' : this.failed ? 'FAILURE' : 'PAUSE';
      await this.finish(end);
      return;
    }
    if (this.allSucceeded()) {
      await this.finish('SUCCESS');
      return;
    }
    // Fencing: while the registry session is suspended, start nothing new.
    if (!this.deps.session.canStartWork()) return;

    for (const slot of this.slots.values()) if (slot.retryDue) await this.retry(slot);
    if (this.closed) return;

    const ready = readyTasks(this.dag(), (name) => this.progress(this.slots.get(name)!));
    if (ready.length > 0) {
      const created = await this.write(
        this.deps.tasks.createAttempts(
          this.fence,
          ready.map((name) => ({ name, attempt: this.slots.get(name)!.lastAttempt + 1 })),
        ),
      );
      for (const row of created.rows) this.setRow(this.slots.get(row.name)!, row);
    }
    for (const slot of this.slots.values()) {
      if (slot.row?.state === 'SUBMITTED_SUCCESS' && !slot.dispatching && !slot.parked) {
        await this.dispatch(slot);
      }
    }

    if (!this.closed && !this.hasActive() && !this.allSucceeded() && !this.failed) {
      // Cannot happen for a valid DAG; never leave an instance stuck silently.
      this.log('error', 'nothing runs and nothing can start; the instance fails');
      await this.finish('FAILURE');
    }
  }

  private progress(slot: TaskSlot): TaskProgress {
    const state = slot.row?.state;
    if (state === undefined || state === 'PAUSE' || state === 'NEED_FAULT_TOLERANCE') return 'pending';
    if (state === 'SUCCESS') return 'success';
    if (state === 'FAILURE' || state === 'KILL') return 'failed';
    return 'active';
  }

  private hasActive(): boolean {
    for (const s of this.slots.values()) if (s.row && LIVE.includes(s.row.state)) return true;
    return false;
  }

  private allSucceeded(): boolean {
    for (const s of this.slots.values()) if (s.row?.state !== 'SUCCESS') return false;
    return true;
  }

  /** Records a run's result: SUCCESS, KILL, FAILURE, or DELAY_EXECUTION when a retry is left. */
  private async applyResult(slot: TaskSlot, ev: TaskFinishedEvent): Promise<EventAck> {
    // Only `killed` answers a Kill of ours; any other KILL is the worker's own doing (its session
    // was lost, it is stopping, it restarted under the task, ...): a fault, not a failure.
    if (ev.state === 'KILL' && ev.message !== TASK_RESULT_MESSAGES.killed) {
      return this.applyWorkerKill(slot, ev);
    }
    const row = slot.row!;
    const retryLeft = slot.retriesUsed < slot.def.retries;
    const willRetry = ev.state === 'FAILURE' && this.mode === 'running' && !this.failed && retryLeft;
    const state: TaskState = willRetry ? 'DELAY_EXECUTION' : ev.state;
    const w = await this.write(
      this.deps.tasks.markFinished(this.fence, row.id, row.host!, {
        state,
        exitCode: ev.exitCode,
        startMs: ev.startTimeMs,
        endMs: ev.endTimeMs,
        message: ev.message,
      }),
    );
    if (w.ids.length === 0) return this.reconcileAfterMiss(slot, state);
    row.state = state;
    this.log('log', `task ${slot.name} attempt ${row.attempt} ${state} (exit ${ev.exitCode})`);
    if (willRetry) {
      slot.retriesUsed++;
      slot.retryTimer = this.deps.clock.setTimeout(() => {
        slot.retryTimer = undefined;
        slot.retryDue = true;
        this.later('retry', () => this.advance());
      }, slot.def.retryIntervalMs);
    } else if (state === 'FAILURE' || state === 'KILL') {
      // While pausing, a failure with retries left is not final: resume runs the task again.
      const pausedRetry = this.mode === 'pausing' && state === 'FAILURE' && retryLeft;
      if (this.mode !== 'stopping' && !pausedRetry) this.failed = true;
    }
    return ack('ACCEPTED');
  }

  /**
   * A run its worker ended itself: like a lost worker, the attempt becomes NEED_FAULT_TOLERANCE
   * and the task runs again as a new attempt, preferably on another worker, without using up a
   * retry and without failing the instance. While stopping / pausing / failing nothing new
   * starts, so it ends KILL / PAUSE / KILL instead.
   */
  private async applyWorkerKill(slot: TaskSlot, ev: TaskFinishedEvent): Promise<EventAck> {
    const row = slot.row!;
    const state: TaskState =
      this.mode === 'stopping'
        ? 'KILL'
        : this.mode === 'pausing'
          ? 'PAUSE'
          : this.failed
            ? 'KILL'
            : 'NEED_FAULT_TOLERANCE';
    const why = ev.message || 'ended by its worker';
    const w = await this.write(
      this.deps.tasks.markFinished(this.fence, row.id, row.host!, {
        state,
        exitCode: ev.exitCode,
        startMs: ev.startTimeMs,
        endMs: ev.endTimeMs,
        message: why,
      }),
    );
    if (w.ids.length === 0) return this.reconcileAfterMiss(slot, state);
    row.state = state;
    if (state === 'NEED_FAULT_TOLERANCE') {
      slot.avoid = row.host ?? undefined;
      this.log(
        'warn',
        `task ${slot.name} attempt ${row.attempt} was killed by worker ${row.host} (${why}); it runs again as a new attempt`,
      );
    } else this.log('log', `task ${slot.name} attempt ${row.attempt} ${state} (${why})`);
    return ack('ACCEPTED');
  }

  /** The retry interval elapsed: the DELAY_EXECUTION row becomes FAILURE and attempt + 1 exists. */
  private async retry(slot: TaskSlot): Promise<void> {
    slot.retryDue = false;
    const row = slot.row;
    if (!row || row.state !== 'DELAY_EXECUTION') return;
    const created = await this.write(
      this.deps.tasks.retry(this.fence, row.id, slot.name, slot.lastAttempt + 1),
    );
    row.state = 'FAILURE';
    if (created.rows[0]) this.setRow(slot, created.rows[0]);
  }

  private setRow(slot: TaskSlot, row: TaskRow): void {
    slot.row = { ...row };
    slot.workerStartTimeMs = undefined;
    slot.lostDuringDispatch = undefined;
    slot.lastAttempt = Math.max(slot.lastAttempt, row.attempt);
    slot.tried.clear();
    this.byRowId.set(row.id, slot);
  }

  // ---------------------------------------------------------------- dispatch

  /** Sends the current (SUBMITTED_SUCCESS or refused DISPATCH) attempt to a worker of its group. */
  private async dispatch(slot: TaskSlot): Promise<void> {
    const row = slot.row!;
    // It may be running on the worker that got it: only TakeOver on that worker settles it.
    if (slot.resolving === row.id) return;
    if (!this.deps.session.canStartWork()) return this.park(slot);
    const worker =
      (slot.avoid !== undefined
        ? this.deps.workers.pick(slot.def.workerGroup, new Set([...slot.tried, slot.avoid]))
        : undefined) ?? this.deps.workers.pick(slot.def.workerGroup, slot.tried);
    if (!worker) {
      if (row.state === 'DISPATCH' && row.host) {
        const w = await this.write(this.deps.tasks.markUndispatched(this.fence, row.id, row.host));
        if (w.ids.length > 0) {
          row.state = 'SUBMITTED_SUCCESS';
          row.host = null;
        }
      }
      return this.park(slot);
    }
    // DISPATCH with the worker is written before the call: if we die in between, failover finds
    // the task on that worker and asks it (TakeOver) instead of running it twice.
    const w = await this.write(this.deps.tasks.markDispatch(this.fence, row.id, worker));
    if (w.ids.length === 0) {
      return void this.log('warn', `task ${slot.name} (${row.id}) could not be marked DISPATCH`);
    }
    row.state = 'DISPATCH';
    row.host = worker;
    slot.workerStartTimeMs = undefined;
    slot.lostDuringDispatch = undefined;
    slot.tried.add(worker);
    this.send(slot, worker);
  }

  /** The Dispatch call itself, outside the queue; its answer comes back as a queued change. */
  private send(slot: TaskSlot, worker: string): void {
    const row = slot.row!;
    slot.dispatching = true;
    const spec: TaskSpec = {
      taskInstanceId: row.id,
      workflowInstanceId: this.instanceId,
      taskName: slot.name,
      command: slot.def.command,
      attempt: row.attempt,
      timeoutMs: slot.def.timeoutMs,
      params: this.params,
      masterAddress: this.deps.me,
      epoch: this.epoch,
    };
    const rowId = row.id;
    const call = this.deps.gateway.dispatch(worker, spec, this.deps.options.workerCallDeadlineMs).then(
      (res) =>
        this.later('dispatch answer', () =>
          this.dispatched(slot, rowId, worker, res.accepted, res.reason, undefined, res.workerStartTimeMs),
        ),
      (err: Error) =>
        this.later('dispatch error', () => this.dispatched(slot, rowId, worker, false, err.message, err)),
    );
    this.inFlight.add(call);
    void call.finally(() => this.inFlight.delete(call));
  }

  private async dispatched(
    slot: TaskSlot,
    rowId: number,
    worker: string,
    accepted: boolean,
    reason: string,
    err?: Error,
    workerStartTimeMs?: number,
  ): Promise<void> {
    const row = slot.row;
    let lostDuringDispatch: number | null | undefined;
    if (row?.id === rowId) {
      slot.dispatching = false;
      lostDuringDispatch = slot.lostDuringDispatch;
      slot.lostDuringDispatch = undefined;
    }
    // An error other than "never sent" leaves it open whether the worker started the task.
    const ambiguous = err !== undefined && !dispatchNeverSent(err);
    if (accepted && row?.id === rowId && row.host === worker && ACTIVE.includes(row.state)) {
      // Also when its TaskStarted came first (the row is RUNNING_EXECUTION already).
      slot.workerStartTimeMs = workerStartTimeMs || undefined;
      if (
        lostDuringDispatch !== undefined &&
        (lostDuringDispatch === null ||
          slot.workerStartTimeMs === undefined ||
          slot.workerStartTimeMs === lostDuringDispatch)
      ) {
        // The process that took it was reported gone meanwhile.
        this.log('warn', `worker ${worker} is gone; re-running ${slot.name}`);
        await this.faultTolerate([slot], `worker ${worker} lost`);
        await this.advance();
        return;
      }
    }
    if (!row || row.id !== rowId || row.host !== worker || row.state !== 'DISPATCH') {
      // Moved on meanwhile (finished fast, killed, re-run after worker loss). A dispatch that
      // (may have) landed after a stop must not keep running.
      if ((accepted || ambiguous) && row?.id === rowId && (row.state === 'KILL' || row.state === 'PAUSE')) {
        this.killQuietly(worker, rowId);
      }
      return;
    }
    if (accepted) {
      this.deps.workers.noteAssigned(worker);
      slot.tried.clear();
      slot.avoid = undefined;
      return;
    }
    if (ambiguous) {
      // The task may run there: never send this task instance anywhere else. The row stays
      // DISPATCH on that worker (a successor would ask it too) and the worker is asked.
      this.log(
        'warn',
        `Dispatch of task ${slot.name} (${rowId}) to ${worker} failed, it may have started there (${reason}); asking the worker (TakeOver)`,
      );
      this.resolve(slot, rowId, worker);
      return;
    }
    this.log('warn', `worker ${worker} did not take task ${slot.name} (${rowId}): ${reason}`);
    if (this.mode !== 'running' || this.failed) {
      await this.cancel([slot], this.mode === 'pausing' ? 'PAUSE' : 'KILL', 'not started');
      await this.advance();
      return;
    }
    await this.dispatch(slot);
  }

  /**
   * Settles an ambiguous Dispatch with the same worker: TakeOver (this master, this epoch) until
   * it answers, with a capped backoff, while the row is still active on that worker, the worker
   * is live and the runner runs. Outside the queue; the answer comes back as a queued change.
   * A worker answering UNKNOWN has recorded the task instance as superseded up to our epoch, so
   * the late Dispatch can no longer start it there.
   */
  private resolve(
    slot: TaskSlot,
    rowId: number,
    worker: string,
    states: readonly TaskState[] = ['DISPATCH'],
  ): void {
    if (slot.resolving === rowId) return;
    slot.resolving = rowId;
    const current = () => {
      const row = slot.row;
      // After an ambiguous Dispatch: once RUNNING_EXECUTION (its TaskStarted came) or beyond,
      // nothing is left to settle. After a failover, a running task still needs its TakeOver.
      return !this.closed && row?.id === rowId && row.host === worker && states.includes(row.state);
    };
    const loop = async (): Promise<void> => {
      let delay = RESOLVE_BACKOFF_MIN_MS;
      for (let tries = 1; ; tries++) {
        if (!current()) {
          if (slot.resolving === rowId) slot.resolving = undefined;
          return;
        }
        if (!this.deps.workers.isLive(worker)) {
          // Its registry key is gone: worker-loss handling (a new attempt), here too in case the
          // removal was seen before this runner was told.
          return this.later('resolve: worker gone', async () => {
            if (slot.resolving === rowId) slot.resolving = undefined;
            if (!current()) return;
            await this.faultTolerate([slot], `worker ${worker} lost`);
            await this.advance();
          });
        }
        try {
          const answer = await this.deps.gateway.takeOver(
            worker,
            rowId,
            this.deps.me,
            this.epoch,
            this.deps.options.workerCallDeadlineMs,
          );
          return this.later('resolve: TakeOver answer', () => this.resolved(slot, rowId, worker, answer));
        } catch (err) {
          this.log(
            'warn',
            `TakeOver of task ${slot.name} (${rowId}) on ${worker} failed (try ${tries}): ${(err as Error).message}`,
          );
        }
        await new Promise<void>((r) => this.deps.clock.setTimeout(r, delay));
        delay = Math.min(delay * 2, RESOLVE_BACKOFF_MAX_MS);
      }
    };
    const run = loop();
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  /** The worker answered TakeOver for an ambiguous Dispatch. */
  private async resolved(
    slot: TaskSlot,
    rowId: number,
    worker: string,
    answer: TakeOverResponse,
  ): Promise<void> {
    if (slot.resolving === rowId) slot.resolving = undefined;
    const row = slot.row;
    if (!row || row.id !== rowId || row.host !== worker || !ACTIVE.includes(row.state)) return;
    if (await this.applyTakeOver(slot, answer)) {
      if (answer.status === 'RUNNING') {
        this.deps.workers.noteAssigned(worker);
        slot.tried.clear();
        slot.avoid = undefined;
      }
    } else {
      this.log('warn', `task ${slot.name} (${rowId}) never started on ${worker}; it runs as a new attempt`);
      slot.avoid = worker;
      await this.faultTolerate([slot], `Dispatch to ${worker} failed; the worker never started it`);
    }
    await this.advance();
  }

  /** No worker took the task: wait for a worker event of its group (or the fallback timer). */
  private park(slot: TaskSlot): void {
    if (slot.parked) return;
    slot.parked = true;
    slot.parkTimer = this.deps.clock.setTimeout(() => {
      slot.parkTimer = undefined;
      this.later('park timeout', () => this.unpark(slot.def.workerGroup));
    }, this.deps.options.parkedRetryMs);
  }

  private async unpark(group: string | undefined): Promise<void> {
    for (const slot of this.slots.values()) {
      if (!slot.parked || (group !== undefined && slot.def.workerGroup !== group)) continue;
      slot.parked = false;
      this.deps.clock.clearTimeout(slot.parkTimer);
      slot.parkTimer = undefined;
      slot.tried.clear();
      if (this.closed) return;
      if (
        slot.row &&
        (slot.row.state === 'SUBMITTED_SUCCESS' || slot.row.state === 'DISPATCH') &&
        !slot.dispatching &&
        slot.resolving !== slot.row.id
      ) {
        if (this.mode === 'running' && !this.failed) await this.dispatch(slot);
      }
    }
  }

  private killQuietly(worker: string, taskId: number): void {
    this.deps.gateway.kill(worker, taskId, this.deps.options.workerCallDeadlineMs).catch((err: Error) => {
      this.log('warn', `Kill of task ${taskId} on ${worker} failed: ${err.message}`);
    });
  }

  // ---------------------------------------------------------------- faults, stop, pause

  /**
   * Tasks whose worker is gone (or lost them): NEED_FAULT_TOLERANCE, then a new attempt on
   * another worker. This is a fault, not a failure of the task: no retry is used up. When nothing
   * new may start (stopping, pausing, failed) they end KILL / PAUSE / FAILURE instead.
   */
  private async faultTolerate(slots: TaskSlot[], reason: string): Promise<void> {
    const state: TaskState =
      this.mode === 'stopping'
        ? 'KILL'
        : this.mode === 'pausing'
          ? 'PAUSE'
          : this.failed
            ? 'FAILURE'
            : 'NEED_FAULT_TOLERANCE';
    await this.cancel(slots, state, reason, ACTIVE);
  }

  /** Moves the current rows of slots (still in fromStates) to state in one statement. */
  private async cancel(
    slots: TaskSlot[],
    state: TaskState,
    reason: string,
    fromStates: readonly TaskState[] = LIVE,
  ): Promise<void> {
    const rows = slots.map((s) => s.row).filter((r): r is TaskRow => !!r && fromStates.includes(r.state));
    if (rows.length === 0) return;
    const w = await this.write(
      this.deps.tasks.markState(
        this.fence,
        rows.map((r) => r.id),
        [...fromStates],
        state,
        reason,
      ),
    );
    const changed = new Set(w.ids);
    for (const slot of slots) {
      if (!slot.row || !changed.has(slot.row.id)) continue;
      slot.row.state = state;
      slot.dispatching = false;
      this.clearTimers(slot);
    }
  }

  /** Ends the attempts that have not reached a worker yet (waiting for one, or for a retry). */
  private async cancelUnstarted(): Promise<void> {
    const waiting = [...this.slots.values()].filter(
      (s) => s.row?.state === 'SUBMITTED_SUCCESS' && !s.dispatching,
    );
    const delayed = [...this.slots.values()].filter((s) => s.row?.state === 'DELAY_EXECUTION');
    const [notStarted, retryState]: [TaskState, TaskState] =
      this.mode === 'stopping'
        ? ['KILL', 'KILL']
        : this.mode === 'pausing'
          ? ['PAUSE', 'PAUSE']
          : ['KILL', 'FAILURE'];
    const why = this.mode === 'running' ? 'the workflow failed' : `the workflow is ${this.mode}`;
    await this.cancel(waiting, notStarted, `not started: ${why}`, ['SUBMITTED_SUCCESS']);
    await this.cancel(delayed, retryState, `not retried: ${why}`, ['DELAY_EXECUTION']);
  }

  private async applyInstanceState(state: WorkflowState): Promise<void> {
    if (state === 'READY_STOP') await this.beginStop();
    else if (state === 'READY_PAUSE') await this.beginPause();
  }

  /** READY_STOP: kill what runs, mark it KILL, end STOP. */
  private async beginStop(): Promise<void> {
    if (this.mode === 'stopping' || this.closed) return;
    this.mode = 'stopping';
    this.log('log', 'stopping');
    for (const slot of this.slots.values()) {
      this.clearTimers(slot);
      slot.retryDue = false;
    }
    await this.cancelUnstarted();
    const running = [...this.slots.values()].filter((s) => s.row && ACTIVE.includes(s.row.state));
    await Promise.all(
      running.map(async (s) => {
        const { host, id } = s.row!;
        if (!host || !this.deps.workers.isLive(host)) return;
        try {
          await this.deps.gateway.kill(host, id, this.deps.options.workerCallDeadlineMs);
        } catch (err) {
          this.log('warn', `Kill of task ${s.name} (${id}) on ${host} failed: ${(err as Error).message}`);
        }
      }),
    );
    await this.cancel(running, 'KILL', 'stopped by request', ACTIVE);
    await this.finish('STOP');
  }

  /** READY_PAUSE: start nothing new; running tasks finish; then PAUSE. */
  private async beginPause(): Promise<void> {
    if (this.mode !== 'running' || this.closed) return;
    this.mode = 'pausing';
    this.log('log', 'pausing');
    for (const slot of this.slots.values()) {
      this.clearTimers(slot);
      slot.retryDue = false;
    }
    await this.advance();
  }

  private async finish(state: WorkflowState): Promise<void> {
    if (this.closed) return;
    const ok = await this.deps.instances.finish(this.fence, state);
    if (!ok) throw new OwnershipLostError(this.instanceId, this.epoch);
    this.finishedAs = state;
    this.log('log', `finished ${state}`);
    this.close(`finished ${state}`);
  }

  // ---------------------------------------------------------------- plumbing

  private dag(): Dag {
    return this.adoption.dag as Dag;
  }

  /** Common checks of a worker event against the current attempt. */
  private checkEvent(ev: {
    taskInstanceId: number;
    attempt: number;
    workerAddress: string;
    epoch: number;
  }): EventAck | { slot: TaskSlot; row: TaskRow } {
    // A newer epoch means someone took the instance after us: we are the stale one.
    if (ev.epoch > this.epoch) {
      return ack('NOT_OWNER', `epoch ${ev.epoch} is newer than ours (${this.epoch})`);
    }
    const slot = this.byRowId.get(ev.taskInstanceId);
    if (!slot || !slot.row) {
      return ack('OBSOLETE', `task instance ${ev.taskInstanceId} is not part of this run`);
    }
    const row = slot.row;
    if (row.id !== ev.taskInstanceId) {
      return ack('OBSOLETE', `task instance ${ev.taskInstanceId} was superseded by attempt ${row.attempt}`);
    }
    if (row.attempt !== ev.attempt) return ack('OBSOLETE', `attempt ${ev.attempt} is not the current one`);
    if (row.host !== ev.workerAddress) {
      return ack('OBSOLETE', `task instance ${row.id} is assigned to ${row.host ?? 'no worker'}`);
    }
    return { slot, row };
  }

  /**
   * A guarded row update matched nothing although we own the instance: our in-memory view is
   * behind (a write whose answer was lost). Re-read the row and answer from what is stored.
   */
  private async reconcileAfterMiss(slot: TaskSlot, wanted: TaskState): Promise<EventAck> {
    const rows = await this.deps.tasks.latestAttempts([this.instanceId]);
    const stored = rows.find((r) => r.name === slot.name);
    if (stored && slot.row && stored.id === slot.row.id) {
      slot.row.state = stored.state;
      slot.row.host = stored.host;
      if (stored.state === wanted) return ack('ACCEPTED', 'already recorded');
    }
    this.later('advance', () => this.advance());
    return ack('OBSOLETE', `task instance is ${stored?.state ?? 'unknown'}`);
  }

  /** Throws OwnershipLostError when the fence did not hold. */
  private async write<T extends FencedWrite | FencedInsert>(p: Promise<T>): Promise<T> {
    const result = await p;
    if (!result.owned) throw new OwnershipLostError(this.instanceId, this.epoch);
    return result;
  }

  /** A worker event: answered after its write committed; NOT_OWNER once we lost the instance. */
  private handle(fn: () => Promise<EventAck>): Promise<EventAck> {
    return this.queue.run(async () => {
      if (this.closed) return this.closedAck();
      try {
        return await fn();
      } catch (err) {
        if (err instanceof OwnershipLostError) {
          this.close(err.message);
          return ack('NOT_OWNER', err.message);
        }
        this.scheduleRecovery();
        throw err; // INTERNAL: the worker keeps the event and retries it
      }
    });
  }

  /** An internal change; failures are logged and followed by a delayed re-evaluation. */
  private op(what: string, fn: () => Promise<void>): Promise<void> {
    return this.queue.run(async () => {
      if (this.closed) return;
      try {
        await fn();
      } catch (err) {
        if (err instanceof OwnershipLostError) {
          this.close(err.message);
          return;
        }
        this.log('error', `${what} failed: ${(err as Error).message}`);
        this.scheduleRecovery();
      }
    });
  }

  private later(what: string, fn: () => Promise<void>): void {
    void this.op(what, fn);
  }

  /**
   * After an unexpected error (database unreachable, ...): re-read the rows in a while and carry
   * on from what is stored, so the instance never stays stuck on a lost write.
   */
  private scheduleRecovery(): void {
    if (this.closed || this.recoveryTimer) return;
    this.recoveryTimer = this.deps.clock.setTimeout(() => {
      this.recoveryTimer = undefined;
      this.later('recovery', async () => {
        const rows = await this.deps.tasks.latestAttempts([this.instanceId]);
        for (const stored of rows) {
          const slot = this.slots.get(stored.name);
          if (!slot) continue;
          if (slot.row?.id === stored.id) {
            slot.row.state = stored.state;
            slot.row.host = stored.host;
          } else if (stored.attempt > slot.lastAttempt || !slot.row) {
            this.setRow(slot, stored);
          }
          slot.dispatching = false;
        }
        const state = await this.deps.instances.readOwnedState(this.fence);
        if (state === undefined) throw new OwnershipLostError(this.instanceId, this.epoch);
        await this.applyInstanceState(state);
        // Fencing: sending (even again) may start a task; not while the session is suspended.
        if (!this.deps.session.canStartWork()) return this.scheduleRecovery();
        // An attempt stored as DISPATCH may never have been sent (the write's answer was lost):
        // send it again to the same worker (Dispatch is idempotent per task instance id), or
        // re-run it if that worker is gone. Never to another worker: it may be running there.
        // One being resolved (TakeOver after an ambiguous Dispatch) is left to that.
        const unsent = [...this.slots.values()].filter(
          (s) => s.row?.state === 'DISPATCH' && s.row.host && !s.dispatching && s.resolving !== s.row.id,
        );
        const gone = unsent.filter((s) => !this.deps.workers.isLive(s.row!.host!));
        for (const slot of unsent) if (!gone.includes(slot)) this.send(slot, slot.row!.host!);
        if (gone.length > 0) await this.faultTolerate(gone, 'its worker is gone');
        await this.advance();
      });
    }, 2000);
  }

  private clearTimers(slot: TaskSlot): void {
    this.deps.clock.clearTimeout(slot.retryTimer);
    this.deps.clock.clearTimeout(slot.parkTimer);
    slot.retryTimer = undefined;
    slot.parkTimer = undefined;
    slot.parked = false;
  }

  /** Why a closed runner refuses an event: finished → drop it; otherwise a new owner wants it. */
  private closedAck(): EventAck {
    return this.finishedAs
      ? ack('OBSOLETE', `workflow instance ${this.instanceId} finished ${this.finishedAs}`)
      : ack('NOT_OWNER', 'this master no longer drives the instance');
  }

  private close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const slot of this.slots.values()) this.clearTimers(slot);
    this.deps.clock.clearTimeout(this.recoveryTimer);
    this.recoveryTimer = undefined;
    if (!reason.startsWith('finished')) this.log('warn', `no longer driven here: ${reason}`);
    this.deps.onClosed(this, reason);
  }

  private log(level: 'log' | 'warn' | 'error', message: string): void {
    this.deps.logger[level](`instance ${this.instanceId}: ${message}`);
  }
}
