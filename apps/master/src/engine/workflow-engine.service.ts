import {
  ACTIVE_TASK_STATES,
  CLOCK,
  FINAL_WORKFLOW_STATES,
  type CommandType,
  type Clock,
  type TimerHandle,
} from '@porpoise/common';
import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  DependencyRepository,
  InstanceStateRepository,
  SubWorkflowRepository,
  TaskGroupRepository,
  type InstanceFence,
  TaskInstanceRepository,
} from '@porpoise/dao';
import type { EventAck, TaskFinishedEvent, TaskStartedEvent } from '@porpoise/rpc';
import {
  DATASOURCE_OPENER,
  MASTER_IDENTITY,
  MASTER_OPTIONS,
  WORKER_GATEWAY,
  type MasterIdentity,
  type MasterOptions,
} from '../master.constants';
import type { WorkerGateway } from '../dispatch/worker-gateway';
import { MasterMetrics } from '../metrics/master-metrics';
import { SessionStateService } from '../registry/session-state.service';
import { WorkerDirectoryService } from '../registry/worker-directory.service';
import type { DatasourceOpener } from './task-spec';
import { WorkflowRunner, type Adoption, type RunnerDeps, type RunnerSnapshot } from './workflow-runner';

/**
 * Holds one WorkflowRunner per instance this master drives and routes everything to it: worker
 * events (from the gRPC service), worker membership, instance control, session changes.
 */
@Injectable()
export class WorkflowEngineService {
  private readonly logger = new Logger('WorkflowEngine');
  private readonly runners = new Map<number, WorkflowRunner>();
  private readonly releaseListeners = new Set<() => void>();
  /** byPriority()'s cache: cleared whenever a runner is added or removed. */
  private sorted: WorkflowRunner[] | undefined;
  private readonly deps: RunnerDeps;
  /** Instances dropped on a LOST session, handed back (recovery command) once a session exists again. */
  private readonly droppedOnLoss = new Map<number, InstanceFence>();
  private readonly unsubscribe: Array<() => void> = [];
  private stopped = false;
  private handBackTimer: TimerHandle | undefined;
  /** Runners dropped on a LOST session whose Dispatch calls may still be in flight. */
  private readonly unsettled = new Set<WorkflowRunner>();
  private handingBack: Promise<void> | undefined;
  /** Workflow code → the runners with a DEPENDENT task on it (from their DAGs). */
  private readonly awaiting = new Map<string, Set<WorkflowRunner>>();
  /** Task group grant passes in flight (one per group), and groups to pass again after them. */
  private readonly grantPasses = new Map<string, Promise<void>>();
  private readonly passAgain = new Set<string>();

  constructor(
    @Inject(MASTER_IDENTITY) private readonly identity: MasterIdentity,
    @Inject(MASTER_OPTIONS) options: MasterOptions,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(WORKER_GATEWAY) gateway: WorkerGateway,
    @Inject(TaskInstanceRepository) private readonly tasks: TaskInstanceRepository,
    @Inject(InstanceStateRepository) private readonly instances: InstanceStateRepository,
    @Inject(WorkerDirectoryService) private readonly workers: WorkerDirectoryService,
    @Inject(SessionStateService) private readonly session: SessionStateService,
    @Inject(DATASOURCE_OPENER) openDatasources: DatasourceOpener,
    @Inject(SubWorkflowRepository) children: SubWorkflowRepository,
    @Inject(MasterMetrics) metrics: MasterMetrics,
    @Inject(DependencyRepository) dependencies: DependencyRepository,
    @Inject(TaskGroupRepository) private readonly taskGroups: TaskGroupRepository,
  ) {
    this.deps = {
      taskGroups,
      metrics,
      children,
      dependencies,
      openDatasources,
      me: identity.address,
      tasks,
      instances,
      workers,
      gateway,
      clock,
      session,
      options,
      logger: new Logger('Workflow'),
      onClosed: (runner) => {
        if (this.runners.get(runner.instanceId) === runner) {
          this.runners.delete(runner.instanceId);
          this.sorted = undefined;
          for (const listener of this.releaseListeners) listener();
        }
        for (const code of runner.dependentCodes) {
          const set = this.awaiting.get(code);
          set?.delete(runner);
          if (set?.size === 0) this.awaiting.delete(code);
        }
      },
    };
  }

  start(): void {
    this.unsubscribe.push(
      this.workers.addListener({
        available: (group) => {
          for (const r of this.byPriority()) r.workersAvailable(group);
        },
        removed: (address, _group, startTimeMs, registration) => {
          for (const r of this.runners.values()) void r.workerLost(address, startTimeMs, registration);
        },
      }),
      this.session.onChange((phase, previous) => {
        if (phase === 'LOST') this.dropAllOnLoss();
        else if (phase === 'CONNECTED') {
          for (const r of this.runners.values()) r.resume();
          if (previous === 'LOST' || this.droppedOnLoss.size > 0) void this.handBackDropped();
        }
      }),
    );
  }

  /**
   * The runners, highest workflow priority first, then oldest instance (DESIGN.md section 10):
   * when workers free up, the runs that ask first get them. The sorted list is kept until the set
   * of runners changes.
   */
  private byPriority(): readonly WorkflowRunner[] {
    if (this.sorted === undefined) {
      this.sorted = [...this.runners.values()].sort(
        (a, b) => a.priority - b.priority || a.instanceId - b.instanceId,
      );
    }
    return this.sorted;
  }

  /** The runner's view of an instance this master drives (diagnostics, tests). */
  inspect(instanceId: number): RunnerSnapshot | undefined {
    return this.runners.get(instanceId)?.snapshot();
  }

  /** How many instances this master drives right now (MASTER_MAX_RUNNING_INSTANCES caps it). */
  get drivenCount(): number {
    return this.runners.size;
  }

  /**
   * Called whenever this master stops driving an instance (it ended, was handed over or
   * dropped): a place under the cap is free. Returns the unsubscribe.
   */
  onRelease(listener: () => void): () => void {
    this.releaseListeners.add(listener);
    return () => this.releaseListeners.delete(listener);
  }

  /** Ids of the instances this master drives right now. */
  get ownedInstanceIds(): number[] {
    return [...this.runners.keys()];
  }

  /** Starts driving an instance the consume transaction just gave this master. */
  adopt(adoption: Adoption): void {
    if (this.stopped) return;
    const existing = this.runners.get(adoption.instanceId);
    if (existing) existing.drop(`superseded by epoch ${adoption.epoch}`);
    const runner = new WorkflowRunner(adoption, this.deps);
    this.runners.set(adoption.instanceId, runner);
    this.sorted = undefined;
    for (const code of runner.dependentCodes) {
      let set = this.awaiting.get(code);
      if (!set) this.awaiting.set(code, (set = new Set()));
      set.add(runner);
    }
    void runner.start();
  }

  /**
   * NOTIFY porpoise_instance_end: a run of workflow `code` ended; the DEPENDENT tasks waiting for
   * that workflow here are checked now rather than at their next checkIntervalMs.
   */
  dependencyWake(code: string): void {
    for (const r of this.awaiting.get(code) ?? []) r.dependencyWake(code);
  }

  /** After a missed NOTIFY (listener reconnected): every waiting SUB_WORKFLOW task asks its children. */
  wakeAllChildren(): void {
    for (const r of this.runners.values()) void r.childrenWake();
  }

  /** After a missed NOTIFY (listener reconnected): every waiting DEPENDENT task is checked now. */
  wakeAllDependents(): void {
    for (const [code, runners] of this.awaiting) for (const r of runners) r.dependencyWake(code);
  }

  taskStarted(ev: TaskStartedEvent): Promise<EventAck> {
    const runner = this.runners.get(ev.workflowInstanceId);
    return runner ? runner.taskStarted(ev) : this.notDrivenHere(ev.workflowInstanceId, ev);
  }

  taskFinished(ev: TaskFinishedEvent): Promise<EventAck> {
    // The worker has a free slot now: runs waiting for one need not wait for its heartbeat.
    this.workers.noteFinished(ev.workerAddress);
    const runner = this.runners.get(ev.workflowInstanceId);
    return runner ? runner.taskFinished(ev) : this.notDrivenHere(ev.workflowInstanceId, ev);
  }

  /** NOTIFY porpoise_instance_control: the API asked to stop or pause an instance. */
  control(instanceId: number): void {
    const runner = this.runners.get(instanceId);
    if (runner) void runner.control();
  }

  /**
   * NOTIFY porpoise_task_group: a slot of the group was freed (or its capacity changed). When
   * attempts this master drives wait for the group, one grant pass runs for it (coalesced); each
   * slot it gives NOTIFYs the owner of the attempt, and runners here are told at once.
   */
  groupFreed(group: string): void {
    if (this.stopped) return;
    for (const r of this.runners.values()) {
      if (r.queuedGroups().has(group)) {
        this.grantPass(group);
        return;
      }
    }
  }

  /** After a missed NOTIFY (listener reconnected): a grant pass for every group waited for here. */
  sweepGroups(): void {
    const groups = new Set<string>();
    for (const r of this.runners.values()) for (const g of r.queuedGroups()) groups.add(g);
    for (const g of groups) this.grantPass(g);
  }

  private grantPass(group: string): void {
    if (this.grantPasses.has(group)) {
      this.passAgain.add(group);
      return;
    }
    const pass = this.taskGroups
      .grantPass(group)
      .then((grants) => {
        for (const g of grants) void this.runners.get(g.workflowInstanceId)?.grantsChanged();
      })
      .catch((err: Error) => this.logger.warn(`grant pass of task group ${group} failed: ${err.message}`))
      .finally(() => {
        this.grantPasses.delete(group);
        if (this.passAgain.delete(group) && !this.stopped) this.grantPass(group);
      });
    this.grantPasses.set(group, pass);
  }

  /** After a missed NOTIFY (listener reconnected): re-check the states of every owned instance. */
  async sweepControl(): Promise<void> {
    const states = await this.instances.ownedStates(this.identity.address, this.ownedInstanceIds);
    for (const s of states) if (s.state === 'READY_STOP' || s.state === 'READY_PAUSE') this.control(s.id);
  }

  /**
   * Gives an instance this master took but cannot drive back to the queue (host NULL, epoch + 1,
   * a new command of the given type), conditional on the fence.
   */
  async handBack(fence: InstanceFence, type: CommandType): Promise<number | undefined> {
    this.runners.get(fence.instanceId)?.drop('handed back');
    return this.instances.handBack(fence, type);
  }

  /**
   * Graceful stop (SIGTERM): hands every instance this master drives back at once, so a live
   * master recovers it now instead of after the session timeout. Per instance: the runner is
   * dropped and allowed to settle (no write of ours in flight, no Dispatch call unanswered, so a
   * task cannot land on a worker after the successor asked that worker about it), then ONE
   * statement sets host NULL, epoch + 1 compared on our (host, epoch) and inserts the
   * RECOVER_TOLERANCE_FAULT_PROCESS command (the failover transaction). Tasks running on workers
   * keep running; the successor re-attaches them with TakeOver. An instance whose hand-back
   * fails stays ours until we deregister; then the other masters' failover takes it.
   * Call after the consumer stopped and before deregistering.
   */
  async handOver(): Promise<{ handedBack: number; notHandedBack: number }> {
    this.stopped = true;
    this.clock.clearTimeout(this.handBackTimer);
    const runners = [...this.runners.values()];
    for (const r of runners) {
      this.droppedOnLoss.set(r.instanceId, {
        instanceId: r.instanceId,
        host: this.identity.address,
        epoch: r.epoch,
      });
      r.drop('master stopping: handing the instance over');
    }
    const unsettled = [...runners, ...this.unsettled];
    this.unsettled.clear();
    await Promise.all(unsettled.map((r) => r.settled(this.settleBoundMs)));
    await this.handingBack;
    let handedBack = 0;
    let notHandedBack = 0;
    for (const [id, fence] of [...this.droppedOnLoss]) {
      try {
        const command = await this.instances.handBack(fence);
        this.droppedOnLoss.delete(id);
        if (command !== undefined) handedBack++;
      } catch (err) {
        notHandedBack++;
        this.logger.warn(`could not hand instance ${id} over: ${(err as Error).message}`);
      }
    }
    if (handedBack + notHandedBack > 0) {
      this.logger.log(
        `handed ${handedBack} instance(s) over for recovery by the other masters` +
          (notHandedBack > 0 ? `; ${notHandedBack} left to failover` : ''),
      );
    }
    return { handedBack, notHandedBack };
  }

  /** Shutdown: stop driving everything and wait until no runner is mid-write. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.handBackTimer);
    for (const u of this.unsubscribe.splice(0)) u();
    const runners = [...this.runners.values()];
    for (const r of runners) r.drop('master shutting down');
    await Promise.all(runners.map((r) => r.idle()));
    await Promise.all(this.grantPasses.values());
    await this.handingBack;
  }

  /** How long a dropped runner may take to settle: a Dispatch call ends by its deadline. */
  private get settleBoundMs(): number {
    return this.deps.options.workerCallDeadlineMs + 1000;
  }

  /**
   * An event about an instance without a runner here: OBSOLETE when it is finished (or gone),
   * or when the event's attempt is not active on that worker in the rows (re-run as a new
   * attempt after a failover, killed, assigned elsewhere, or its result already stored): a
   * TaskStarted answered OBSOLETE makes the worker kill the run, so a Dispatch that reached a
   * worker late, after its instance was failed over, does not run on beside its successor.
   * Else NOT_OWNER: the worker keeps the event for the master that takes the instance over.
   */
  private async notDrivenHere(
    instanceId: number,
    ev: { taskInstanceId: number; workerAddress: string; attempt: number },
  ): Promise<EventAck> {
    const owner = await this.instances.lookup(instanceId);
    if (!owner) return { status: 'OBSOLETE', reason: `workflow instance ${instanceId} does not exist` };
    if (FINAL_WORKFLOW_STATES.includes(owner.state)) {
      return { status: 'OBSOLETE', reason: `workflow instance ${instanceId} finished ${owner.state}` };
    }
    const row = await this.tasks.find(ev.taskInstanceId);
    if (!row || row.workflowInstanceId !== instanceId || row.attempt !== ev.attempt) {
      return {
        status: 'OBSOLETE',
        reason: `task instance ${ev.taskInstanceId} is not part of instance ${instanceId}`,
      };
    }
    // A result already stored (the row is final) needs no keeping either: OBSOLETE drops it.
    if (row.host !== ev.workerAddress || !ACTIVE_TASK_STATES.includes(row.state)) {
      return {
        status: 'OBSOLETE',
        reason: `task instance ${row.id} is ${row.state} on ${row.host ?? 'no worker'}`,
      };
    }
    // The row may name this master while no runner of it drives the instance: adopted but not
    // started yet, dropped on a session loss, or being handed back. Either way: keep the event.
    const who =
      owner.host === this.identity.address
        ? 'recorded as this master, which does not drive it right now (being adopted or handed back)'
        : `driven by ${owner.host ?? 'no master yet'}, not ${this.identity.address}`;
    return { status: 'NOT_OWNER', reason: `workflow instance ${instanceId} is ${who}` };
  }

  /**
   * Session LOST: our registry key is gone and another master may take our instances at any
   * moment; stop driving all of them now (their writes would be fenced off anyway).
   */
  private dropAllOnLoss(): void {
    for (const r of [...this.runners.values()]) {
      this.droppedOnLoss.set(r.instanceId, {
        instanceId: r.instanceId,
        host: this.identity.address,
        epoch: r.epoch,
      });
      r.drop('registry session lost');
      this.unsettled.add(r);
    }
    this.runners.clear();
    this.sorted = undefined;
  }

  /**
   * A new session after a LOST: the instances we dropped still name us as host unless a failover
   * took them meanwhile. Hand each back (host NULL, epoch + 1, RECOVER_TOLERANCE_FAULT_PROCESS
   * command), conditional on the epoch we held, the same transaction a failover runs, so
   * whichever commits first wins and nothing stays stuck with a host that no longer drives it.
   * Our address is live again, so no other master's failover would take what is left: a failed
   * hand-back is retried until it is done.
   */
  private handBackDropped(): Promise<void> {
    this.handingBack ??= this.runHandBack().finally(() => {
      this.handingBack = undefined;
      if (this.droppedOnLoss.size > 0 && !this.stopped) {
        this.clock.clearTimeout(this.handBackTimer);
        this.handBackTimer = this.clock.setTimeout(() => {
          this.handBackTimer = undefined;
          if (this.session.canStartWork()) void this.handBackDropped();
        }, HAND_BACK_RETRY_MS);
      }
    });
    return this.handingBack;
  }

  private async runHandBack(): Promise<void> {
    // A Dispatch still in flight could reach its worker after the successor asked that worker
    // about the task (TakeOver) and run it beside the re-run: let the calls end first.
    const unsettled = [...this.unsettled];
    this.unsettled.clear();
    await Promise.all(unsettled.map((r) => r.settled(this.settleBoundMs)));
    let handedBack = 0;
    let taken = 0;
    for (const [id, fence] of [...this.droppedOnLoss]) {
      if (this.stopped || !this.session.canStartWork()) return;
      try {
        const command = await this.instances.handBack(fence);
        this.droppedOnLoss.delete(id);
        if (command !== undefined) {
          handedBack++;
          this.logger.log(`handed instance ${id} back for recovery (command ${command})`);
        } else taken++;
      } catch (err) {
        this.logger.warn(`could not hand instance ${id} back: ${(err as Error).message}`);
      }
    }
    if (taken > 0) {
      this.logger.log(
        `${taken} instance(s) dropped on the lost session were already taken over (or finished) meanwhile; left to their new owner`,
      );
    }
    if (handedBack + taken > 0 && this.droppedOnLoss.size > 0) {
      this.logger.warn(`${this.droppedOnLoss.size} dropped instance(s) not handed back yet; retrying`);
    }
  }
}

/** Retry of hand-backs that failed (database unreachable). */
const HAND_BACK_RETRY_MS = 2000;
