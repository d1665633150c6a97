import {
  buildWorkflowGraph,
  CLOCK,
  parseStoredDefinition,
  type Clock,
  type TimerHandle,
  type WorkflowSettings,
  withIds,
} from '@porpoise/common';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { PORPOISE_CONFIG, type MasterConfig } from '@porpoise/common';
import { CommandRepository, type ConsumedCommand, TaskInstanceRepository, type TaskRow } from '@porpoise/dao';
import {
  MASTER_IDENTITY,
  MASTER_OPTIONS,
  type MasterIdentity,
  type MasterOptions,
} from '../master.constants';
import { PgNotificationListener } from '../db/pg-notification-listener.service';
import { WorkflowEngineService } from '../engine/workflow-engine.service';
import { MasterMetrics } from '../metrics/master-metrics';
import type { Adoption, RunnerDag } from '../engine/workflow-runner';
import { MasterMembershipService } from '../registry/master-membership.service';
import { SessionStateService } from '../registry/session-state.service';

/** Commands that start a run from scratch: there are no task rows to load. */
const FRESH = new Set(['START_PROCESS', 'SCHEDULER', 'COMPLEMENT_DATA']);
/**
 * What a master at its MASTER_MAX_RUNNING_INSTANCES cap still takes: recoveries of instances a
 * dead master drove (they ran in the cluster already; leaving them in the queue until this master
 * has room would starve a failover), and, whatever their type, the commands of sub-workflow
 * children (the consume statement adds those): a parent waits for its child, so a child waiting
 * for a place only its parent's end would free is a deadlock. The cap may be exceeded by these,
 * never by new top-level runs.
 */
export const TAKEN_AT_CAP: readonly string[] = ['RECOVER_TOLERANCE_FAULT_PROCESS'];

/**
 * How many commands the next consume may take: new runs only up to the cap (`free` places),
 * recoveries and children always. Pure, so the rule is tested alone.
 */
export function consumeQuota(
  driven: number,
  max: number,
  batchSize: number,
): { batchSize: number; onlyTypes?: readonly string[] } {
  const free = max - driven;
  if (free <= 0) return { batchSize, onlyTypes: TAKEN_AT_CAP };
  return { batchSize: Math.min(batchSize, free) };
}

/**
 * Takes this master's share of the command queue (DESIGN.md section 6) and hands each taken
 * instance to the engine. Woken by NOTIFY porpoise_command, by a (re)connect of the LISTEN
 * connection, by a change of the live masters (the slot moved) or of the session, and by a
 * fallback poll. Never consumes while the session is not CONNECTED or this master is not in the
 * live list. Database round trips per batch: 1 (the consume statement, which also returns the
 * definitions) + 1 when the batch holds re-runs or recoveries (their latest task rows).
 *
 * Backpressure (MASTER_MAX_RUNNING_INSTANCES): a master takes new runs only while it drives fewer
 * than the cap, and never more than the places left. At the cap it keeps its slot (DESIGN.md
 * section 6: a busy master keeps its slot; the slots never move to route around it) and still
 * takes recoveries and sub-workflow children; each of its runs that ends wakes the consumer at once (WorkflowEngineService
 * onRelease), so its slot is served again as soon as there is room. Unlike DolphinScheduler's
 * #18570 (an overloaded master left the slot rebalance and stopped consuming for good, its slot
 * unserved for 100 minutes), nothing here depends on load reports, and no state at the cap outlives it.
 */
@Injectable()
export class CommandConsumerService {
  private readonly logger = new Logger('CommandConsumer');
  private running = false;
  private wanted = false;
  private loop: Promise<void> | undefined;
  private pollTimer: TimerHandle | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  private failing = false;
  private atCap = false;

  constructor(
    @Inject(MASTER_IDENTITY) private readonly identity: MasterIdentity,
    @Inject(MASTER_OPTIONS) private readonly options: MasterOptions,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(CommandRepository) private readonly commands: CommandRepository,
    @Inject(TaskInstanceRepository) private readonly tasks: TaskInstanceRepository,
    @Inject(WorkflowEngineService) private readonly engine: WorkflowEngineService,
    @Inject(MasterMembershipService) private readonly membership: MasterMembershipService,
    @Inject(SessionStateService) private readonly session: SessionStateService,
    @Inject(PgNotificationListener) private readonly listener: PgNotificationListener,
    @Inject(MasterMetrics) private readonly metrics: MasterMetrics,
    @Inject(PORPOISE_CONFIG) private readonly config: MasterConfig,
  ) {}

  start(): void {
    this.running = true;
    this.unsubscribe.push(
      this.listener.on('porpoise_command', () => this.wake()),
      this.listener.onConnected(() => this.wake()),
      this.membership.onMembershipChange(() => this.wake()),
      this.session.onChange(() => this.wake()),
      // A run of ours ended: a place under MASTER_MAX_RUNNING_INSTANCES may be free.
      this.engine.onRelease(() => this.wake()),
    );
    this.schedulePoll();
    this.wake();
  }

  /** Stops taking commands; resolves once a consume in progress has finished. */
  async stop(): Promise<void> {
    this.running = false;
    for (const u of this.unsubscribe.splice(0)) u();
    this.clock.clearTimeout(this.pollTimer);
    await this.loop;
  }

  /** Asks for a consume pass soon; coalesces while one is running. */
  wake(): void {
    this.wanted = true;
    if (this.loop || !this.running) return;
    this.loop = this.drain().finally(() => {
      this.loop = undefined;
      if (this.wanted && this.running) this.wake();
    });
  }

  private schedulePoll(): void {
    if (!this.running) return;
    this.pollTimer = this.clock.setTimeout(() => {
      this.wake();
      this.schedulePoll();
    }, this.options.commandPollIntervalMs);
  }

  private async drain(): Promise<void> {
    while (this.wanted && this.running) {
      this.wanted = false;
      // Fencing: a suspended session may already be expired on the server; take nothing.
      if (!this.session.canStartWork()) return;
      const slot = this.membership.slot();
      if (!slot) return;
      const quota = consumeQuota(
        this.engine.drivenCount,
        this.config.maxRunningInstances,
        this.options.commandBatchSize,
      );
      this.noteCap(quota.onlyTypes !== undefined);
      let batch: ConsumedCommand[];
      try {
        batch = await this.commands.consume({
          slot: slot.slot,
          count: slot.count,
          host: this.identity.address,
          ...quota,
        });
        if (this.failing) this.logger.log('consuming commands works again');
        this.failing = false;
      } catch (err) {
        // The poll retries; log once per outage.
        if (!this.failing) this.logger.error(`consume failed: ${(err as Error).message}`);
        this.failing = true;
        return;
      }
      if (batch.length === 0) continue;
      // Written → taken, measured in the consume statement on the database's clock.
      for (const c of batch) this.metrics.commandTaken(c.type, c.waitMs / 1000);
      await this.adopt(batch);
      // A full batch means there may be more: go again at once (the quota is computed again).
      if (batch.length >= quota.batchSize) this.wanted = true;
    }
  }

  private noteCap(atCap: boolean): void {
    if (atCap === this.atCap) return;
    this.atCap = atCap;
    this.logger.log(
      atCap
        ? `driving ${this.engine.drivenCount} instances (MASTER_MAX_RUNNING_INSTANCES ${this.config.maxRunningInstances}): new runs wait in the queue until one ends`
        : 'below MASTER_MAX_RUNNING_INSTANCES again: taking new runs',
    );
  }

  private async adopt(batch: ConsumedCommand[]): Promise<void> {
    for (const c of batch) {
      if (!c.taken) {
        this.logger.warn(
          `command ${c.commandId} (${c.type}) dropped: workflow instance ${c.workflowInstanceId} is already owned or finished`,
        );
      }
    }
    const taken = batch.filter((c) => c.taken);
    const rerun = taken.filter((c) => !FRESH.has(c.type)).map((c) => c.workflowInstanceId);
    let latest: TaskRow[] = [];
    if (rerun.length > 0) {
      try {
        latest = await this.tasks.latestAttempts(rerun);
      } catch (err) {
        // The instances are ours now (the consume committed); hand them back rather than run
        // them without knowing their tasks. Failing that, the failover sweep finds them.
        this.logger.error(`could not load the tasks of ${rerun.join(', ')}: ${(err as Error).message}`);
        for (const c of taken.filter((t) => !FRESH.has(t.type))) await this.handBack(c);
        return this.adoptAll(
          taken.filter((t) => FRESH.has(t.type)),
          [],
        );
      }
    }
    this.adoptAll(taken, latest);
  }

  private adoptAll(taken: ConsumedCommand[], latest: TaskRow[]): void {
    for (const c of taken) {
      this.logger.log(
        withIds(
          { instanceId: c.workflowInstanceId },
          `took command ${c.commandId} (${c.type}) for instance ${c.workflowInstanceId}, epoch ${c.epoch}`,
        ),
      );
      this.engine.adopt({
        instanceId: c.workflowInstanceId,
        epoch: c.epoch,
        commandType: c.type,
        state: c.state,
        params: stringParams(c.params),
        scheduleTimeMs: c.scheduleTimeMs,
        timezone: c.timezone,
        ...runDefinition(c),
        latest: latest.filter((r) => r.workflowInstanceId === c.workflowInstanceId),
      });
    }
  }

  private async handBack(c: ConsumedCommand): Promise<void> {
    await this.engine
      .handBack({ instanceId: c.workflowInstanceId, host: this.identity.address, epoch: c.epoch }, c.type)
      .catch((err: Error) =>
        this.logger.error(`could not hand instance ${c.workflowInstanceId} back: ${err.message}`),
      );
  }
}

/** Run params become environment variables: keep them strings (the API stores strings). */
export function stringParams(params: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params ?? {})) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  return out;
}

/**
 * The run's definition from the stored version (the one model the API validated it with): the
 * DAG and the workflow settings, or why it cannot run (DefinitionError / GraphError: the instance
 * then fails with that message). The timeout left is counted from start_time on the database's
 * clock, so a failover neither restarts nor skews it.
 */
export function runDefinition(
  c: Pick<ConsumedCommand, 'workflowCode' | 'workflowVersion' | 'tasks' | 'edges' | 'settings' | 'elapsedMs'>,
): Pick<Adoption, 'dag' | 'failureStrategy' | 'timeoutInMs' | 'defaults' | 'priority' | 'tenant'> {
  let settings: WorkflowSettings;
  let dag: RunnerDag | Error;
  try {
    if (c.tasks === null) {
      throw new Error(`workflow ${c.workflowCode} version ${c.workflowVersion} does not exist`);
    }
    const def = parseStoredDefinition({ tasks: c.tasks, edges: c.edges, settings: c.settings });
    settings = def;
    dag = buildWorkflowGraph(def.tasks, def.edges);
  } catch (err) {
    return { dag: err instanceof Error ? err : new Error(String(err)) };
  }
  return {
    dag,
    failureStrategy: settings.failureStrategy,
    timeoutInMs: settings.timeoutMs > 0 ? settings.timeoutMs - c.elapsedMs : undefined,
    defaults: settings.params,
    ...(settings.priority === undefined ? {} : { priority: settings.priority }),
    ...(settings.tenant === undefined ? {} : { tenant: settings.tenant }),
  };
}
