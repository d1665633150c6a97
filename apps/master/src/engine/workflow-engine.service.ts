import { Inject, Injectable, Logger } from '@nestjs/common';
import { FINAL_WORKFLOW_STATES, type CommandType } from '@porpoise/common';
import {
  InstanceStateRepository,
  type InstanceFence,
} from '@porpoise/dao/repositories/instance-state.repository';
import { TaskInstanceRepository } from '@porpoise/dao/repositories/task-instance.repository';
import type { EventAck, TaskFinishedEvent, TaskStartedEvent } from '@porpoise/rpc';
import type { Clock } from '../clock';
import {
  CLOCK,
  MASTER_IDENTITY,
  MASTER_OPTIONS,
  WORKER_GATEWAY,
  type MasterIdentity,
  type MasterOptions,
} from '../master.constants';
import type { WorkerGateway } from '../dispatch/worker-gateway';
import { SessionStateService } from '../registry/session-state.service';
import { WorkerDirectoryService } from '../registry/worker-directory.service';
import { WorkflowRunner, type Adoption, type RunnerDeps, type RunnerSnapshot } from './workflow-runner';

/**
 * Holds one WorkflowRunner per instance this master drives and routes everything to it: worker
 * events (from the gRPC service), worker membership, instance control, session changes.
 */
@Injectable()
export class WorkflowEngineService {
  private readonly logger = new Logger('WorkflowEngine');
  private readonly runners = new Map<number, WorkflowRunner>();
  private readonly deps: RunnerDeps;
  /** Instances dropped on a LOST session, handed back (recovery command) once a session exists again. */
  private readonly droppedOnLoss = new Map<number, InstanceFence>();
  private readonly unsubscribe: Array<() => void> = [];
  private stopped = false;

  constructor(
    @Inject(MASTER_IDENTITY) private readonly identity: MasterIdentity,
    @Inject(MASTER_OPTIONS) options: MasterOptions,
    @Inject(CLOCK) clock: Clock,
    @Inject(WORKER_GATEWAY) gateway: WorkerGateway,
    @Inject(TaskInstanceRepository) tasks: TaskInstanceRepository,
    @Inject(InstanceStateRepository) private readonly instances: InstanceStateRepository,
    @Inject(WorkerDirectoryService) private readonly workers: WorkerDirectoryService,
    @Inject(SessionStateService) private readonly session: SessionStateService,
  ) {
    this.deps = {
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
        if (this.runners.get(runner.instanceId) === runner) this.runners.delete(runner.instanceId);
      },
    };
  }

  start(): void {
    this.unsubscribe.push(
      this.workers.addListener({
        available: (group) => {
          for (const r of this.runners.values()) r.workersAvailable(group);
        },
        removed: (address) => {
          for (const r of this.runners.values()) void r.workerLost(address);
        },
      }),
      this.session.onChange((phase, previous) => {
        if (phase === 'LOST') this.dropAllOnLoss();
        else if (phase === 'CONNECTED') {
          for (const r of this.runners.values()) r.resume();
          if (previous === 'LOST') void this.handBackDropped();
        }
      }),
    );
  }

  /** The runner's view of an instance this master drives (diagnostics, tests). */
  inspect(instanceId: number): RunnerSnapshot | undefined {
    return this.runners.get(instanceId)?.snapshot();
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
    void runner.start();
  }

  taskStarted(ev: TaskStartedEvent): Promise<EventAck> {
    const runner = this.runners.get(ev.workflowInstanceId);
    return runner ? runner.taskStarted(ev) : this.notDrivenHere(ev.workflowInstanceId);
  }

  taskFinished(ev: TaskFinishedEvent): Promise<EventAck> {
    const runner = this.runners.get(ev.workflowInstanceId);
    return runner ? runner.taskFinished(ev) : this.notDrivenHere(ev.workflowInstanceId);
  }

  /** NOTIFY porpoise_instance_control: the API asked to stop or pause an instance. */
  control(instanceId: number): void {
    const runner = this.runners.get(instanceId);
    if (runner) void runner.control();
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

  /** Shutdown: stop driving everything and wait until no runner is mid-write. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const u of this.unsubscribe.splice(0)) u();
    const runners = [...this.runners.values()];
    for (const r of runners) r.drop('master shutting down');
    await Promise.all(runners.map((r) => r.idle()));
  }

  /**
   * An event about an instance without a runner here: OBSOLETE when it is finished (or gone),
   * else NOT_OWNER so the worker keeps it for the master that will take the instance over.
   */
  private async notDrivenHere(instanceId: number): Promise<EventAck> {
    const owner = await this.instances.lookup(instanceId);
    if (!owner) return { status: 'OBSOLETE', reason: `workflow instance ${instanceId} does not exist` };
    if (FINAL_WORKFLOW_STATES.includes(owner.state))
      return { status: 'OBSOLETE', reason: `workflow instance ${instanceId} finished ${owner.state}` };
    return {
      status: 'NOT_OWNER',
      reason: `workflow instance ${instanceId} is driven by ${owner.host ?? 'no master yet'}, not ${this.identity.address}`,
    };
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
    }
    this.runners.clear();
  }

  /**
   * A new session after a LOST: the instances we dropped still name us as host unless a failover
   * took them meanwhile. Hand each back (host NULL, epoch + 1, RECOVER_TOLERANCE_FAULT_PROCESS
   * command), conditional on the epoch we held, the same transaction a failover runs, so
   * whichever commits first wins and nothing stays stuck with a host that no longer drives it.
   */
  private async handBackDropped(): Promise<void> {
    for (const [id, fence] of [...this.droppedOnLoss]) {
      try {
        const command = await this.instances.handBack(fence);
        this.droppedOnLoss.delete(id);
        if (command !== undefined)
          this.logger.log(`handed instance ${id} back for recovery (command ${command})`);
      } catch (err) {
        this.logger.warn(`could not hand instance ${id} back: ${(err as Error).message}`);
      }
    }
  }
}
