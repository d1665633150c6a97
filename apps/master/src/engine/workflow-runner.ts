import type { LoggerService } from '@nestjs/common';
import {
  dependencyWindow,
  priorityRank,
  renderParamMap,
  withIds,
  resolveParams,
  WorkflowLanguageError,
  type Clock,
  type CommandType,
  type Priority,
  type SubWorkflowTaskDefinition,
  type TaskDefinition,
  type TimerHandle,
  type WorkflowState,
} from '@porpoise/common';
import type {
  DependencyRepository,
  FencedInsert,
  FencedWrite,
  InstanceFence,
  InstanceStateRepository,
  SubWorkflowRepository,
  TaskGroupRepository,
  TaskInstanceRepository,
  TaskRow,
} from '@porpoise/dao';
import type { EventAck, TaskFinishedEvent, TaskSpec, TaskStartedEvent, WorkerAddressee } from '@porpoise/rpc';
import { WorkerCalls } from '../dispatch/worker-calls';
import type { WorkerGateway } from '../dispatch/worker-gateway';
import type { MasterOptions } from '../master.constants';
import { OwnershipLostError } from '../master.errors';
import type { RunnerMetrics } from '../metrics/master-metrics';
import { adoptRun } from './domain/adoption';
import { isWrite, missed, type Effect, type WriteEffect } from './domain/run-effects';
import type { RunEnv, RunEvent, TimerKey, WorkerEvent } from './domain/run-events';
import {
  isOpen,
  slotOf,
  snapshotOf,
  type FailurePolicy,
  type RunnerSnapshot,
  type RunState,
  upstreamOutputs,
} from './domain/run-state';
import { transition } from './domain/transition';
import { SerialQueue } from './serial-queue';
import { resolveTaskSpec, type DatasourceOpener } from './task-spec';

export type { RunnerSnapshot } from './domain/run-state';

/** What a runner needs from the rest of the master (wired by the WorkflowEngine). */
export interface RunnerDeps {
  readonly me: string;
  readonly tasks: TaskInstanceRepository;
  readonly instances: InstanceStateRepository;
  readonly workers: {
    pick(group: string, exclude: ReadonlySet<string>): string | undefined;
    isLive(address: string): boolean;
    /** The registration a Dispatch to a live worker is addressed to (undefined: not live). */
    addressee(address: string): WorkerAddressee | undefined;
    noteAssigned(address: string): void;
    /** Whether the worker answered a Dispatch (it did not: others are chosen first a while). */
    noteReachability(address: string, answered: boolean): void;
  };
  readonly gateway: WorkerGateway;
  readonly clock: Clock;
  readonly session: { canStartWork(): boolean };
  readonly options: MasterOptions;
  readonly logger: LoggerService;
  /** Opens the data sources of an SQL task for its dispatch (sealed URLs; nothing is cached). */
  readonly openDatasources: DatasourceOpener;
  /** SUB_WORKFLOW children: started once per task attempt, read back, halted with the parent. */
  readonly children: Pick<
    SubWorkflowRepository,
    'startChild' | 'resumeChild' | 'childStates' | 'haltChildren'
  >;
  /** DEPENDENT tasks: the check of the awaited workflow's runs (one read). */
  readonly dependencies: Pick<DependencyRepository, 'check'>;
  /** Task group slots (DESIGN.md section 10): queue rows, grant passes, grants read back. */
  readonly taskGroups: Pick<TaskGroupRepository, 'enqueue' | 'grantPass' | 'granted'>;
  /** Called once when the runner ends (instance final, ownership lost, dropped). */
  readonly onClosed: (runner: WorkflowRunner, reason: string) => void;
  /** The per-stage histograms (DESIGN.md section 12); none in tests that do not look. */
  readonly metrics?: RunnerMetrics;
}

/** The DAG a runner drives (the shared model's WorkflowGraph). */
export interface RunnerDag {
  readonly tasks: ReadonlyMap<string, TaskDefinition>;
  readonly upstream: ReadonlyMap<string, readonly string[]>;
  readonly downstream: ReadonlyMap<string, readonly string[]>;
  readonly order: readonly string[];
}

/** An instance this master just took (consume transaction), with what it needs to drive it. */
export interface Adoption {
  readonly instanceId: number;
  readonly epoch: number;
  readonly commandType: CommandType;
  readonly state: WorkflowState;
  readonly params: Record<string, string>;
  /** The workflow's declared params and their defaults (settings.params); run params override them. */
  readonly defaults?: Readonly<Record<string, string>>;
  /** The OS user the workflow's SHELL tasks run as (settings.tenant); absent: the worker's TASK_USER. */
  readonly tenant?: string;
  /** The run's schedule time (a manual run: its start time), epoch ms, for the built-ins. */
  readonly scheduleTimeMs?: number;
  /** The IANA time zone of the date built-ins (the schedule's); UTC when absent. */
  readonly timezone?: string;
  /** The definition, or why it is unusable (the instance then fails at once). */
  readonly dag: RunnerDag | Error;
  /** Latest attempt of each task (empty for a fresh run). */
  readonly latest: readonly TaskRow[];
  /** The workflow's failureStrategy (DESIGN.md section 9); END when absent. */
  readonly failureStrategy?: FailurePolicy;
  /** What is left of the workflow's timeoutMs (database clock); none when absent. */
  readonly timeoutInMs?: number;
  /** The workflow's priority: runs waiting for workers are woken highest first. MEDIUM when absent. */
  readonly priority?: Priority;
}

/** Backoff of the TakeOver calls that settle an ambiguous Dispatch (doubling, capped). */
const RESOLVE_BACKOFF_MIN_MS = 250;
const RESOLVE_BACKOFF_MAX_MS = 5000;
/** After an unexpected error (database unreachable...), the rows are read again this much later. */
const RECOVERY_DELAY_MS = 2000;

const ack = (status: EventAck['status'], reason = ''): EventAck => ({ status, reason });

/** A step that stopped early: its writes missed, or the run closed under it. */
type Outcome = 'done' | 'aborted';

/**
 * Drives one workflow instance this master owns: a shell around the pure transition function
 * (domain/transition.ts). Every input (worker events, Dispatch / TakeOver answers, timers,
 * registry and session changes, control requests) becomes a RunEvent; the resulting effects run
 * here, through the repositories, the worker gateway and the clock, and their results come back
 * as events. One SerialQueue orders it all, and every write is fenced on (host, epoch): a write
 * that finds the fence gone closes the runner at once.
 */
export class WorkflowRunner {
  readonly instanceId: number;
  readonly epoch: number;
  private state: RunState;
  private readonly fence: InstanceFence;
  private readonly queue = new SerialQueue();
  private readonly calls: WorkerCalls;
  private readonly timers = new Map<TimerKey, TimerHandle>();
  private readonly defs: ReadonlyMap<string, TaskDefinition>;
  private closed = false;
  /** An unexpected error left the view unsure: the rows are read again before anything else. */
  private stale = false;
  private recoveryTimer: TimerHandle | undefined;
  /** The answer to the worker event being handled. */
  private answer: EventAck | undefined;
  /** A read-back is being applied: a miss now is not answered by yet another one. */
  private reloading = false;
  /**
   * Stage timings, taken here in the interpreter (the domain stays free of clocks), by task
   * instance id: when its row was written (ready) and when its Dispatch was sent. Entries go at
   * the next stage or when the runner closes; attempts adopted from rows have none.
   */
  private readonly readyAt = new Map<number, number>();
  private readonly sentAt = new Map<number, number>();
  /** The workflows DEPENDENT tasks of this run wait for. */
  private readonly awaited: ReadonlySet<string>;

  constructor(
    private readonly adoption: Adoption,
    private readonly deps: RunnerDeps,
  ) {
    this.instanceId = adoption.instanceId;
    this.epoch = adoption.epoch;
    this.fence = { instanceId: adoption.instanceId, host: deps.me, epoch: adoption.epoch };
    this.defs = adoption.dag instanceof Error ? new Map() : adoption.dag.tasks;
    this.awaited = new Set(
      [...this.defs.values()].flatMap((t) => (t.type === 'DEPENDENT' ? [t.dependent.workflowCode] : [])),
    );
    this.state = adoptRun({
      instanceId: adoption.instanceId,
      epoch: adoption.epoch,
      commandType: adoption.commandType,
      state: adoption.state,
      graph: adoption.dag,
      latest: adoption.latest,
      failurePolicy: adoption.failureStrategy ?? 'END',
      maxFaultReruns: deps.options.maxFaultReruns,
      params: {
        defaults: adoption.defaults ?? {},
        run: adoption.params,
        scheduleTimeMs: adoption.scheduleTimeMs ?? 0,
        timezone: adoption.timezone ?? 'UTC',
      },
      timings: {
        parkedRetryMs: deps.options.parkedRetryMs,
        resolveBackoffMinMs: RESOLVE_BACKOFF_MIN_MS,
        resolveBackoffMaxMs: RESOLVE_BACKOFF_MAX_MS,
      },
    });
    this.calls = new WorkerCalls(
      deps.gateway,
      deps.options.workerCallDeadlineMs,
      deps.me,
      adoption.epoch,
      (m) => this.log('warn', m),
    );
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** What the runner believes right now (diagnostics and tests; the rows are the truth). */
  snapshot(): RunnerSnapshot {
    return snapshotOf(this.state);
  }

  /** Settles once every queued change has been applied (used at shutdown). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /**
   * Settles once every queued change has been applied and every Dispatch / TakeOver call has been
   * answered (or failed), waiting at most boundMs for the calls. Before an instance is handed
   * over: a Dispatch landing on a worker after the successor's TakeOver asked that worker about
   * the task would run it beside the successor's re-run.
   */
  async settled(boundMs: number): Promise<void> {
    await this.queue.idle();
    await this.calls.settled(this.deps.clock, boundMs);
  }

  // ---------------------------------------------------------------- inputs

  /** Asks workers about attempts the rows show on them, sets timers, and starts the ready tasks. */
  start(): Promise<void> {
    return this.run('start', async () => {
      // Taken while a stop or pause was asked (the previous owner died before passing it on, or
      // a child was inserted after the API's halt statement): it reaches the children from here.
      const { state } = this.adoption;
      if ((state === 'READY_STOP' || state === 'READY_PAUSE') && this.hasChildren()) {
        await this.deps.children.haltChildren(this.fence, state === 'READY_STOP' ? 'stop' : 'pause');
      }
      await this.feed({ type: 'start', timeoutInMs: this.adoption.timeoutInMs });
    });
  }

  taskStarted(ev: TaskStartedEvent): Promise<EventAck> {
    return this.handle({ type: 'taskStarted', ev });
  }

  taskFinished(ev: TaskFinishedEvent): Promise<EventAck> {
    return this.handle({ type: 'taskFinished', ev });
  }

  /** The instance's state changed in the database (NOTIFY porpoise_instance_control). */
  control(): Promise<void> {
    return this.run('control', async () => {
      const state = await this.deps.instances.readOwnedState(this.fence);
      if (state === undefined) throw new OwnershipLostError(this.instanceId, this.epoch);
      // A stop or pause reaches the children (one started after the API's halt statement too),
      // before this run may end and give up its fence.
      if ((state === 'READY_STOP' || state === 'READY_PAUSE') && this.hasChildren()) {
        await this.deps.children.haltChildren(this.fence, state === 'READY_STOP' ? 'stop' : 'pause');
      }
      await this.feed({ type: 'control', state });
      // NOTIFY on this instance also says a child reached a final state, or a task group gave
      // one of its queued attempts a slot.
      await this.checkChildren();
      await this.readGrants();
    });
  }

  /**
   * The listener reconnected: a child's end NOTIFYed while it was down is lost, so SUB_WORKFLOW
   * tasks waiting here ask their children now.
   */
  childrenWake(): Promise<void> {
    if (this.closed || !this.hasChildren()) return Promise.resolve();
    return this.run('children', () => this.checkChildren());
  }

  /** The task groups this run has attempts waiting for (the engine runs their grant passes). */
  queuedGroups(): Set<string> {
    const groups = new Set<string>();
    for (const s of this.state.slots) if (s.status.kind === 'queued') groups.add(s.status.group);
    return groups;
  }

  /** A grant pass gave slots to attempts of this instance: send them out. */
  grantsChanged(): Promise<void> {
    return this.run('grants', () => this.readGrants());
  }

  /**
   * A worker process is gone (its registry key went away, or a new process on the address
   * replaced it): the tasks of this instance it had must run again elsewhere. startTimeMs names
   * the process (undefined: unknown, every task on the address counts as its).
   */
  workerLost(address: string, startTimeMs?: number, registration?: number): Promise<void> {
    return this.op({ type: 'workerLost', address, incarnation: startTimeMs, registration });
  }

  /** The workflow's priority, 0 (HIGHEST) to 4 (LOWEST). */
  get priority(): number {
    return priorityRank(this.adoption.priority);
  }

  /** A worker of group became available: retry the tasks waiting for one. */
  workersAvailable(group: string): void {
    if (this.closed) return;
    // Heartbeats come often: queue nothing unless a task of that group waits.
    const waiting = this.state.slots.some(
      (s) => s.status.kind === 'submitted' && s.status.parked && s.def.workerGroup === group,
    );
    if (waiting) void this.op({ type: 'workersAvailable', group });
  }

  /** The session is usable again after SUSPENDED: carry on with what was held back. */
  resume(): void {
    if (this.closed) return;
    void this.op({ type: 'sessionResumed' });
  }

  /**
   * The workflows this run's DEPENDENT tasks wait for (from its DAG, whether or not one waits
   * right now): the engine routes porpoise_instance_end to the runners that may care.
   */
  get dependentCodes(): ReadonlySet<string> {
    return this.awaited;
  }

  /** A run of workflow `code` ended: a DEPENDENT task waiting for it is checked now. */
  dependencyWake(code: string): void {
    if (this.closed || !this.awaited.has(code)) return;
    const waiting = this.state.slots.some(
      (s) =>
        s.status.kind === 'onMaster' && s.def.type === 'DEPENDENT' && s.def.dependent?.workflowCode === code,
    );
    if (waiting) void this.op({ type: 'dependencyWake', code });
  }

  /** Stops driving the instance without writing anything (session LOST, shutdown). */
  drop(reason: string): void {
    this.close(reason);
  }

  // ---------------------------------------------------------------- the loop

  /** A worker event: answered after its writes committed; NOT_OWNER once we lost the instance. */
  private handle(event: WorkerEvent): Promise<EventAck> {
    return this.queue.run(async () => {
      if (this.closed) return this.closedAck();
      this.answer = undefined;
      try {
        if (this.stale) await this.reload();
        await this.feed(event, event);
      } catch (err) {
        if (err instanceof OwnershipLostError) {
          this.close(err.message);
          return ack('NOT_OWNER', err.message);
        }
        this.failed();
        throw err; // INTERNAL: the worker keeps the event and retries it
      }
      return this.answer ?? this.closedAck();
    });
  }

  /** An internal event. */
  private op(event: RunEvent): Promise<void> {
    return this.run(event.type, () => this.feed(event));
  }

  /** An internal change; failures are logged and followed by a delayed re-read. */
  private run(what: string, fn: () => Promise<unknown>): Promise<void> {
    return this.queue.run(async () => {
      if (this.closed) return;
      try {
        if (this.stale) await this.reload();
        await fn();
      } catch (err) {
        if (err instanceof OwnershipLostError) {
          this.close(err.message);
          return;
        }
        this.log('error', `${what} failed: ${err instanceof Error ? err.message : String(err)}`);
        this.failed();
      }
    });
  }

  private later(event: RunEvent): void {
    void this.op(event);
  }

  /** Applies one event: the transition, then its effects. */
  private async feed(event: RunEvent, answering?: WorkerEvent): Promise<Outcome> {
    const step = transition(this.state, event, this.env());
    this.state = step.state;
    const outcome = await this.runEffects(step.effects, answering);
    if (!isOpen(this.state.mode)) {
      this.close(this.state.mode.kind === 'finished' ? `finished ${this.state.mode.state}` : 'closed');
    }
    return outcome;
  }

  private env(): RunEnv {
    const { workers, session } = this.deps;
    return {
      canStartWork: session.canStartWork(),
      isLive: (address) => workers.isLive(address),
      pick: (group, exclude) => workers.pick(group, exclude),
    };
  }

  /**
   * Runs a step's effects in order. A write that changed fewer rows than it names drops the rest
   * of the step (computed from a view the database disagrees with) and reads the rows back.
   */
  private async runEffects(effects: readonly Effect[], answering: WorkerEvent | undefined): Promise<Outcome> {
    // Specs first: a task whose spec cannot be built is neither marked DISPATCH nor sent. The
    // specs (an SQL task's carries its data source's URL) live only for this step.
    const specs = await this.specsFor(effects);
    const refusals: Array<{ rowId: number; message: string }> = [];
    for (const [rowId, spec] of specs) if ('refused' in spec) refusals.push({ rowId, message: spec.refused });
    const outcome = await this.runEffectList(coalesceSlotRequests(effects), answering, specs);
    if (outcome === 'aborted') return outcome;
    for (const r of refusals) {
      if (this.closed || !isOpen(this.state.mode)) return 'aborted';
      if ((await this.feed({ type: 'payloadRefused', ...r }, answering)) === 'aborted') return 'aborted';
    }
    return 'done';
  }

  /** The spec of every attempt a step dispatches, or why it cannot be built. */
  private async specsFor(
    effects: readonly Effect[],
  ): Promise<Map<number, TaskSpec | { readonly refused: string }>> {
    const specs = new Map<number, TaskSpec | { readonly refused: string }>();
    for (const e of effects) {
      if (e.kind !== 'dispatch') continue;
      const def = this.defs.get(e.name);
      if (def === undefined) continue;
      specs.set(
        e.rowId,
        await resolveTaskSpec(
          def,
          { id: e.rowId, attempt: e.attempt },
          {
            instanceId: this.instanceId,
            epoch: this.epoch,
            masterAddress: this.deps.me,
            defaults: this.adoption.defaults ?? {},
            ...(this.adoption.tenant === undefined ? {} : { tenant: this.adoption.tenant }),
            runParams: this.adoption.params,
            scheduleTimeMs: this.adoption.scheduleTimeMs ?? 0,
            timezone: this.adoption.timezone ?? 'UTC',
          },
          upstreamOutputs(this.state, e.name),
          this.deps.openDatasources,
        ),
      );
    }
    return specs;
  }

  private async runEffectList(
    effects: readonly Effect[],
    answering: WorkerEvent | undefined,
    specs: ReadonlyMap<number, TaskSpec | { readonly refused: string }>,
  ): Promise<Outcome> {
    const refused = (rowId: number) => {
      const spec = specs.get(rowId);
      return spec !== undefined && 'refused' in spec;
    };
    for (const e of effects) {
      if (this.closed || !isOpen(this.state.mode)) return 'aborted';
      if (e.kind === 'markDispatch' && refused(e.rowId)) continue;
      if (isWrite(e)) {
        const w = await this.fenced(this.write(e));
        if (missed(e, w.ids)) return this.afterMiss(answering);
        // The result is stored: from the task's end on its worker (the worker's clock) to now.
        if (e.kind === 'markFinished' && e.endMs > 0) {
          this.deps.metrics?.finishToPersist((this.deps.clock.now() - e.endMs) / 1000);
        }
        continue;
      }
      switch (e.kind) {
        case 'createAttempts': {
          const created = await this.fenced(
            this.deps.tasks.createAttempts(
              this.fence,
              e.items.map((i) => ({ ...i, taskGroup: this.defs.get(i.name)?.taskGroup })),
            ),
          );
          if (created.rows.length < e.items.length) return this.afterMiss(answering);
          this.noteReady(created.rows);
          if ((await this.feed({ type: 'created', rows: created.rows }, answering)) === 'aborted') {
            return 'aborted';
          }
          break;
        }
        case 'retry': {
          const created = await this.fenced(this.deps.tasks.retry(this.fence, e.rowId, e.name, e.attempt));
          if (created.rows.length === 0) return this.afterMiss(answering);
          this.noteReady(created.rows);
          if ((await this.feed({ type: 'created', rows: created.rows }, answering)) === 'aborted') {
            return 'aborted';
          }
          break;
        }
        case 'finish': {
          const ok = await this.deps.instances.finish(this.fence, e.state, e.message);
          if (!ok) throw new OwnershipLostError(this.instanceId, this.epoch);
          await this.feed({ type: 'finished', state: e.state });
          return 'done';
        }
        case 'dispatch': {
          const spec = specs.get(e.rowId);
          if (spec === undefined || 'refused' in spec) break;
          // Addressed to the worker's registration as seen now, at send time: if this master froze
          // since choosing it, a worker that was lost meanwhile (its tasks already run elsewhere)
          // and registered again refuses it.
          const to = this.deps.workers.addressee(e.worker);
          if (to === undefined) {
            this.later({
              type: 'dispatchFailed',
              rowId: e.rowId,
              worker: e.worker,
              ambiguous: false,
              reason: 'the worker left the registry before the Dispatch was sent',
            });
            break;
          }
          this.noteSent(e.rowId);
          void this.calls.dispatch(e.worker, spec, to).then((ev) => {
            // A refusal by the worker's own checks (rejected) is an answer too.
            if (ev.type === 'dispatchAnswered') this.deps.workers.noteReachability(e.worker, true);
            else if (ev.type === 'dispatchFailed') {
              this.deps.workers.noteReachability(e.worker, ev.rejected === true);
            }
            this.noteAnswered(ev);
            this.later(ev);
          });
          break;
        }
        case 'takeOver':
          void this.calls.takeOver(e.worker, e.rowId).then((ev) => this.later(ev));
          break;
        case 'kill':
          if (e.wait) await this.calls.kill(e.targets);
          else void this.calls.kill(e.targets);
          break;
        case 'noteAssigned':
          this.deps.workers.noteAssigned(e.worker);
          break;
        case 'runOnMaster': {
          // Never dispatched: no stage timings.
          this.readyAt.delete(e.rowId);
          const def = this.defs.get(e.name);
          if (def?.type === 'SUB_WORKFLOW') {
            if (e.resume === true) await this.resumeChild(e.rowId);
            await this.startChild(def, e.rowId);
            break;
          }
          this.later({
            type: 'masterTaskEnded',
            rowId: e.rowId,
            state: 'FAILURE',
            message: `task type ${def?.type ?? 'unknown'} is not run by this master`,
            outputs: {},
          });
          break;
        }
        case 'checkDependency':
          // Not awaited: a read whose answer comes back as an event (a wake and a timer may
          // both ask; the first decisive answer ends the task, the other is then ignored).
          void this.checkDependency(e.rowId, e.name).then((ev) => this.later(ev));
          break;
        case 'setTimer':
          this.setTimer(e.key, e.ms);
          break;
        case 'clearTimer':
          this.deps.clock.clearTimeout(this.timers.get(e.key));
          this.timers.delete(e.key);
          break;
        case 'requestSlot':
          await this.requestSlot(e.group, e.rowIds);
          break;
        case 'advanceLater':
          this.later({ type: 'advance' });
          break;
        case 'reply':
          this.answer = e.ack;
          break;
        case 'log':
          this.log(e.level, e.message);
          break;
      }
    }
    return 'done';
  }

  /**
   * A DEPENDENT attempt's check: the window from this run's schedule time and time zone, then one
   * read. An error is answered `waiting` (the next check is due in checkIntervalMs); a window
   * that cannot be computed (a bad time zone) fails the task.
   */
  private async checkDependency(
    rowId: number,
    name: string,
  ): Promise<Extract<RunEvent, { type: 'dependencyChecked' }>> {
    const answer = (outcome: 'met' | 'failed' | 'waiting', message: string) =>
      ({ type: 'dependencyChecked', rowId, outcome, message }) as const;
    const def = this.defs.get(name);
    if (def?.type !== 'DEPENDENT') return answer('failed', `task ${name} is not a DEPENDENT task`);
    const spec = def.dependent;
    let window: { fromMs: number; toMs: number };
    try {
      window = dependencyWindow(
        this.adoption.scheduleTimeMs ?? 0,
        this.adoption.timezone ?? 'UTC',
        spec.interval,
        spec.offset,
      );
    } catch (err) {
      return answer('failed', `cannot compute the dependency window: ${(err as Error).message}`);
    }
    try {
      const r = await this.deps.dependencies.check({
        workflowCode: spec.workflowCode,
        taskName: spec.taskName,
        ...window,
      });
      return answer(r.outcome, r.message);
    } catch (err) {
      this.log(
        'warn',
        `task ${name}: dependency check failed (${(err as Error).message}); checking again later`,
      );
      return answer('waiting', `dependency check failed: ${(err as Error).message}`);
    }
  }

  /**
   * A SUB_WORKFLOW attempt: its child instance, started once (startChild answers an existing
   * child, after a failover too), then its state checked (it may have ended already).
   */
  private async startChild(def: SubWorkflowTaskDefinition, rowId: number): Promise<void> {
    const slot = slotOf(this.state, def.name);
    if (slot?.status.kind !== 'onMaster' || slot.status.at.id !== rowId) return;
    const { at } = slot.status;
    const fail = (message: string) =>
      this.later({ type: 'masterTaskEnded', rowId, state: 'FAILURE', message, outputs: {} });
    const scheduleTime = new Date(this.adoption.scheduleTimeMs ?? 0);
    let params: Record<string, string>;
    try {
      params = renderParamMap(def.subWorkflow.params ?? {}, {
        params: resolveParams(
          this.adoption.defaults ?? {},
          this.adoption.params,
          upstreamOutputs(this.state, def.name),
        ),
        builtins: {
          workflowInstanceId: this.instanceId,
          taskInstanceId: rowId,
          taskName: def.name,
          attempt: at.attempt,
          scheduleTime,
          timezone: this.adoption.timezone ?? 'UTC',
        },
      });
    } catch (err) {
      if (err instanceof WorkflowLanguageError) return fail(err.message);
      throw err;
    }
    const outcome = await this.deps.children.startChild(this.fence, {
      parentTaskInstanceId: rowId,
      workflowCode: def.subWorkflow.workflowCode,
      params,
      scheduleTime,
    });
    if (!outcome.owned) throw new OwnershipLostError(this.instanceId, this.epoch);
    if (outcome.childInstanceId === undefined) return fail(outcome.reason ?? 'no child instance');
    this.log(
      'log',
      `task ${def.name}: child workflow instance ${outcome.childInstanceId} ${outcome.created ? 'started' : 'found again'}`,
    );
    await this.checkChildren();
  }

  /**
   * A resume of a run paused with its SUB_WORKFLOW task: the task's row and its paused child go
   * back to running in one fenced write (the child gets RECOVER_SUSPENDED_PROCESS), so the same
   * child carries on; startChild then finds it. A failover between the two finds the row
   * RUNNING_EXECUTION and the child resumed.
   */
  private async resumeChild(rowId: number): Promise<void> {
    const outcome = await this.deps.children.resumeChild(this.fence, rowId);
    if (!outcome.owned) throw new OwnershipLostError(this.instanceId, this.epoch);
    if (outcome.childInstanceId !== undefined) {
      this.log('log', `task instance ${rowId}: child workflow instance ${outcome.childInstanceId} resumed`);
    }
  }

  /**
   * Queued attempts of a task group: their queue rows (fenced, idempotent), a grant pass for the
   * group (any master may run one; they queue on the group's row lock), then the grants of this
   * run read back. A group deleted since the workflow was saved fails the attempts.
   */
  private async requestSlot(group: string, rowIds: readonly number[]): Promise<void> {
    const queued = await this.deps.taskGroups.enqueue(this.fence, group, rowIds);
    if (!queued.owned) throw new OwnershipLostError(this.instanceId, this.epoch);
    if (!queued.groupExists) {
      for (const rowId of rowIds) {
        this.later({
          type: 'payloadRefused',
          rowId,
          message: `task group ${JSON.stringify(group)} does not exist (deleted after the workflow was saved)`,
        });
      }
      return;
    }
    await this.deps.taskGroups.grantPass(group);
    await this.readGrants();
  }

  /** Which queued attempts of this run hold a slot now: a slotGranted event for them. */
  private async readGrants(): Promise<void> {
    if (this.closed) return;
    const queued: number[] = [];
    for (const s of this.state.slots) if (s.status.kind === 'queued') queued.push(s.status.at.id);
    if (queued.length === 0) return;
    const granted = await this.deps.taskGroups.granted(this.instanceId, queued);
    if (granted.length > 0) this.later({ type: 'slotGranted', rowIds: granted });
  }

  private hasChildren(): boolean {
    return this.state.slots.some((s) => s.status.kind === 'onMaster' && s.def.type === 'SUB_WORKFLOW');
  }

  /** SUB_WORKFLOW tasks whose child reached a final state end with it. */
  private async checkChildren(): Promise<void> {
    if (this.closed || !this.hasChildren()) return;
    const waiting = new Map<number, string>();
    for (const s of this.state.slots) if (s.status.kind === 'onMaster') waiting.set(s.status.at.id, s.name);
    for (const c of await this.deps.children.childStates(this.instanceId)) {
      if (!waiting.has(c.parentTaskInstanceId)) continue;
      const state = c.state;
      if (state !== 'SUCCESS' && state !== 'FAILURE' && state !== 'STOP' && state !== 'PAUSE') continue;
      this.later({
        type: 'childEnded',
        rowId: c.parentTaskInstanceId,
        childInstanceId: c.childInstanceId,
        state,
        message: c.message,
      });
    }
  }

  private write(e: WriteEffect): Promise<FencedWrite> {
    const { tasks } = this.deps;
    switch (e.kind) {
      case 'markDispatch':
        return tasks.markDispatch(this.fence, e.rowId, e.worker);
      case 'markUndispatched':
        return tasks.markUndispatched(this.fence, e.rowId, e.worker);
      case 'markStarted':
        return tasks.markStarted(this.fence, e.rowId, e.worker, e.startMs);
      case 'markFinished':
        return tasks.markFinished(this.fence, e.rowId, e.worker, {
          state: e.state,
          exitCode: e.exitCode,
          startMs: e.startMs,
          endMs: e.endMs,
          message: e.message,
          outputs: e.outputs,
          retryDelayMs: e.retryDelayMs,
        });
      case 'markState':
        return tasks.markState(this.fence, [...e.rowIds], e.from, e.state, e.message);
    }
  }

  /** Throws OwnershipLostError when the fence did not hold. */
  private async fenced<T extends FencedWrite | FencedInsert>(p: Promise<T>): Promise<T> {
    const result = await p;
    if (!result.owned) throw new OwnershipLostError(this.instanceId, this.epoch);
    return result;
  }

  /**
   * A guarded write matched fewer rows than it should although we own the instance: our view is
   * behind (a write whose answer was lost). Read the rows back and carry on from what is stored.
   */
  private async afterMiss(answering: WorkerEvent | undefined): Promise<Outcome> {
    if (this.reloading) {
      // Read back and still disagreeing: leave it to the recovery pass.
      this.stale = true;
      this.scheduleRecovery();
      return 'aborted';
    }
    await this.reload(answering);
    return 'aborted';
  }

  /** Reads the rows and the instance state back and applies them (a `reloaded` event). */
  private async reload(answering?: WorkerEvent): Promise<void> {
    const rows = await this.deps.tasks.latestAttempts([this.instanceId]);
    const instanceState = await this.deps.instances.readOwnedState(this.fence);
    if (instanceState === undefined) throw new OwnershipLostError(this.instanceId, this.epoch);
    this.stale = false;
    this.reloading = true;
    try {
      await this.feed({ type: 'reloaded', rows, instanceState, answering }, answering);
    } finally {
      this.reloading = false;
    }
  }

  /** An unexpected error (database unreachable...): read the rows back before anything else. */
  private failed(): void {
    this.stale = true;
    this.scheduleRecovery();
  }

  /** A read-back in a while, so the instance never stays stuck on a lost write. */
  private scheduleRecovery(): void {
    if (this.closed || this.recoveryTimer) return;
    this.recoveryTimer = this.deps.clock.setTimeout(() => {
      this.recoveryTimer = undefined;
      // The queued op reads the rows back first (stale); the children are asked again too, in
      // case what failed was that question (a child's end is only ever NOTIFYed once).
      void this.run('recovery', () => this.checkChildren());
    }, RECOVERY_DELAY_MS);
  }

  /** New attempt rows (a task became ready, or its retry is due): the ready-to-dispatch clock starts. */
  private noteReady(rows: ReadonlyArray<{ readonly id: number; readonly state: string }>): void {
    if (this.deps.metrics === undefined) return;
    const now = this.deps.clock.now();
    for (const r of rows) if (r.state === 'SUBMITTED_SUCCESS') this.readyAt.set(r.id, now);
  }

  /**
   * A worker answers a Dispatch once the run has begun (a SHELL task's process started): timed on
   * arrival, the attempt's first accepted answer only. (Not TaskStarted: a short run sends none.)
   */
  private noteAnswered(ev: RunEvent): void {
    if (ev.type !== 'dispatchAnswered' && ev.type !== 'dispatchFailed') return;
    const sent = this.sentAt.get(ev.rowId);
    if (sent === undefined) return;
    this.sentAt.delete(ev.rowId);
    if (ev.type === 'dispatchAnswered' && ev.accepted) {
      this.deps.metrics?.dispatchToStart((this.deps.clock.now() - sent) / 1000);
    }
  }

  /** A Dispatch leaves: ready-to-dispatch ends (first send only), dispatch-to-start begins. */
  private noteSent(rowId: number): void {
    if (this.deps.metrics === undefined) return;
    const now = this.deps.clock.now();
    const ready = this.readyAt.get(rowId);
    if (ready !== undefined) {
      this.readyAt.delete(rowId);
      this.deps.metrics.readyToDispatch((now - ready) / 1000);
    }
    this.sentAt.set(rowId, now);
  }

  private setTimer(key: TimerKey, ms: number): void {
    this.deps.clock.clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      this.deps.clock.setTimeout(() => {
        this.timers.delete(key);
        this.later({ type: 'timer', key });
      }, ms),
    );
  }

  /** Why a closed runner refuses an event: finished → drop it; otherwise a new owner wants it. */
  private closedAck(): EventAck {
    const { mode } = this.state;
    return mode.kind === 'finished'
      ? ack('OBSOLETE', `workflow instance ${this.instanceId} finished ${mode.state}`)
      : ack('NOT_OWNER', 'this master no longer drives the instance');
  }

  private close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const handle of this.timers.values()) this.deps.clock.clearTimeout(handle);
    this.timers.clear();
    this.deps.clock.clearTimeout(this.recoveryTimer);
    this.recoveryTimer = undefined;
    this.readyAt.clear();
    this.sentAt.clear();
    if (isOpen(this.state.mode)) {
      this.state = transition(this.state, { type: 'closed', reason }, this.env()).state;
      this.log('warn', `no longer driven here: ${reason}`);
    }
    this.deps.onClosed(this, reason);
  }

  /** Every line about this run carries its id (a JSON field with LOG_FORMAT=json). */
  private log(level: 'log' | 'warn' | 'error', message: string): void {
    this.deps.logger[level](
      withIds({ instanceId: this.instanceId }, `instance ${this.instanceId}: ${message}`),
    );
  }
}

/**
 * The slot requests of one step for the same task group as one (at the first one's place): the
 * tasks of a fan-out queue in one statement and one grant pass instead of one each. Nothing
 * between them depends on a queue row.
 */
export function coalesceSlotRequests(effects: readonly Effect[]): readonly Effect[] {
  if (effects.filter((e) => e.kind === 'requestSlot').length < 2) return effects;
  const first = new Map<string, number>();
  const out: Effect[] = [];
  for (const e of effects) {
    if (e.kind !== 'requestSlot') {
      out.push(e);
      continue;
    }
    const at = first.get(e.group);
    if (at !== undefined) {
      const earlier = out[at];
      if (earlier?.kind === 'requestSlot') {
        out[at] = { ...earlier, rowIds: [...earlier.rowIds, ...e.rowIds] };
        continue;
      }
    }
    first.set(e.group, out.length);
    out.push(e);
  }
  return out;
}
