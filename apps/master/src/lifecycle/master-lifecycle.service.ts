import { CLOCK, type Clock, type TimerHandle } from '@porpoise/common';
import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { CommandConsumerService } from '../command/command-consumer.service';
import { InstanceControlService } from '../control/instance-control.service';
import { PgNotificationListener } from '../db/pg-notification-listener.service';
import {
  WORKER_GATEWAY,
  MASTER_IDENTITY,
  MASTER_OPTIONS,
  type MasterIdentity,
  type MasterOptions,
} from '../master.constants';
import type { WorkerGateway } from '../dispatch/worker-gateway';
import { WorkflowEngineService } from '../engine/workflow-engine.service';
import { MasterFailoverService } from '@porpoise/failover';
import { MasterMembershipService } from '../registry/master-membership.service';
import { MasterRegistrationService } from '../registry/master-registration.service';
import { SessionStateService } from '../registry/session-state.service';
import { WorkerDirectoryService } from '../registry/worker-directory.service';
import { MasterRpcService } from '../rpc/master-rpc.service';
import { RunGateService } from '../gate/run-gate.service';
import { ScheduleService } from '../schedule/schedule.service';
import { BackfillService } from '../backfill/backfill.service';
import { RetentionService } from '../retention/retention.service';
import { DeathWatchService } from '../registry/death-watch.service';

/**
 * Starts and stops the master's parts in an explicit order, instead of relying on the order in
 * which Nest calls hooks across providers.
 *
 * Start (onApplicationBootstrap, after the database and registry modules are ready):
 * session watch → worker directory → engine → gRPC server (workers must reach us before we
 * dispatch) → master membership → registration (others now see us) → LISTEN connection →
 * instance control → master failover (reads what an earlier process on this address left
 * BEFORE anything is consumed, then runs its start-up pass in the background) → death watch
 * (probes the other nodes' ports: a provably dead one is failed over at once) → command
 * consumer → schedules → backfills → run gate → retention (at once, then hourly).
 *
 * Stop (beforeApplicationShutdown, so the DataSource and the registry, closed in their modules'
 * onApplicationShutdown, are still open): stop taking new work (consumer, schedules, instance
 * control, LISTEN, failover passes, death watch), mark the heartbeat draining, hand every instance this
 * master drives over at once (host NULL, epoch + 1 and a RECOVER_TOLERANCE_FAULT_PROCESS command
 * each, the failover transaction: live masters recover them now, not a session timeout later),
 * deregister (the others re-slot and consume those commands), close the gRPC server after
 * in-flight calls (events for handed-over instances are answered NOT_OWNER: the worker keeps
 * them for the successor's TakeOver), stop the engine.
 */
@Injectable()
export class MasterLifecycleService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Master');
  private stopping: Promise<void> | undefined;

  constructor(
    @Inject(MASTER_IDENTITY) private readonly identity: MasterIdentity,
    @Inject(SessionStateService) private readonly session: SessionStateService,
    @Inject(WorkerDirectoryService) private readonly workers: WorkerDirectoryService,
    @Inject(WorkflowEngineService) private readonly engine: WorkflowEngineService,
    @Inject(MasterRpcService) private readonly rpc: MasterRpcService,
    @Inject(MasterMembershipService) private readonly membership: MasterMembershipService,
    @Inject(MasterRegistrationService) private readonly registration: MasterRegistrationService,
    @Inject(PgNotificationListener) private readonly listener: PgNotificationListener,
    @Inject(InstanceControlService) private readonly control: InstanceControlService,
    @Inject(CommandConsumerService) private readonly consumer: CommandConsumerService,
    @Inject(ScheduleService) private readonly schedules: ScheduleService,
    @Inject(MasterFailoverService) private readonly failover: MasterFailoverService,
    @Inject(WORKER_GATEWAY) private readonly gateway: WorkerGateway,
    @Inject(MASTER_OPTIONS) private readonly options: MasterOptions,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(BackfillService) private readonly backfills: BackfillService,
    @Inject(RunGateService) private readonly gate: RunGateService,
    @Inject(RetentionService) private readonly retention: RetentionService,
    @Inject(DeathWatchService) private readonly deathWatch: DeathWatchService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.boot();
    } catch (err) {
      // A half-started master (port taken, registry refused the key, ...) must not leave a
      // listening port, a registry key or timers behind: the host decides what happens next.
      this.stopping ??= this.shutdown();
      await this.stopping;
      throw err;
    }
  }

  private async boot(): Promise<void> {
    this.session.start();
    // A new session after LOST may have missed registry events: re-read both directories.
    this.session.onChange((phase) => {
      if (phase !== 'CONNECTED') return;
      void Promise.all([this.workers.resync(), this.membership.resync()])
        .catch((err: Error) => this.logger.warn(`registry resync failed: ${err.message}`))
        // REMOVEs of masters may have been missed (or skipped while suspended): look now.
        .then(() => this.failover.wake('registry session usable again'));
    });
    await this.workers.start();
    this.engine.start();
    await this.rpc.start();
    await this.membership.start();
    await this.registration.start();
    await this.listener.start();
    this.control.start();
    await this.failover.start();
    // Probing the other nodes once this master takes part in failover (docs/failover.md).
    this.deathWatch.start();
    this.consumer.start();
    this.schedules.start();
    this.backfills.start();
    this.gate.start();
    this.retention.start();
    this.logger.log(`master ${this.identity.address} started`);
  }

  beforeApplicationShutdown(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  /**
   * Every step runs even if an earlier one failed (and each is safe on a part that never
   * started), so a failure half-way through never leaves a port, a key or a timer behind. Each
   * step is bounded (shutdownStepTimeoutMs): one that hangs is logged and the next runs, so the
   * hand-over and the deregistration happen whatever got stuck before them.
   */
  private async shutdown(): Promise<void> {
    this.logger.log(`master ${this.identity.address} stopping`);
    const steps: Array<[string, () => unknown]> = [
      ['consumer', () => this.consumer.stop()],
      ['schedules', () => this.schedules.stop()],
      ['backfills', () => this.backfills.stop()],
      ['run gate', () => this.gate.stop()],
      ['retention', () => this.retention.stop()],
      ['instance control', () => this.control.stop()],
      ['LISTEN connection', () => this.listener.stop()],
      ['failover', () => this.failover.stop()],
      ['death watch', () => this.deathWatch.stop()],
      ['health', () => this.rpc.setServing(false)],
      ['drain heartbeat', () => this.registration.drain()],
      ['hand-over', () => this.engine.handOver()],
      ['registration', () => this.registration.stop()],
      ['gRPC server', () => this.rpc.stop()],
      ['engine', () => this.engine.stop()],
      ['membership', () => this.membership.stop()],
      ['worker directory', () => this.workers.stop()],
      ['session watch', () => this.session.stop()],
      ['worker channels', () => this.gateway.close()],
    ];
    const bound = this.options.shutdownStepTimeoutMs;
    for (const [name, step] of steps) {
      let timer: TimerHandle | undefined;
      try {
        const outcome = await Promise.race([
          Promise.resolve(step()).then(() => 'done' as const),
          new Promise<'timeout'>(
            (resolve) => (timer = this.clock.setTimeout(() => resolve('timeout'), bound)),
          ),
        ]);
        if (outcome === 'timeout') {
          this.logger.error(`stopping ${name} did not finish within ${bound} ms; going on without it`);
        }
      } catch (err) {
        this.logger.warn(`stopping ${name} failed: ${(err as Error).message}`);
      } finally {
        this.clock.clearTimeout(timer);
      }
    }
    this.logger.log(`master ${this.identity.address} stopped`);
  }
}
