import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { CLOCK, ensurePrivateDir, PORPOISE_CONFIG, type Clock, type WorkerConfig } from '@porpoise/common';
import { SupersededStore } from '../adapters/superseded-store';
import { TaskSandbox } from '../adapters/task-sandbox';
import { TaskLogStore } from '../adapters/task-log-store';
import { DRAIN_GRACE_MS, SHUTDOWN_FLUSH_MS } from '../worker.constants';
import { AdmissionService } from './admission.service';
import { LivenessService } from './liveness.service';
import { LogRetentionService } from './log-retention.service';
import { RegistrationService } from './registration.service';
import { ResultDeliveryService } from './result-delivery.service';
import { TaskExecutorService } from './task-executor.service';
import { WorkerRpcService } from './worker-rpc.service';

const PUBLISH_WAIT_MS = 2_000;

/**
 * The order in which the worker's parts start and stop. Nothing here owns the process: the
 * worker may run inside the standalone app, so errors are thrown to the caller, never exit().
 */
@Injectable()
export class WorkerLifecycleService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Worker');
  private stopping: Promise<void> | undefined;
  private rpcStarted = false;
  private registered = false;

  constructor(
    private readonly logs: TaskLogStore,
    private readonly delivery: ResultDeliveryService,
    private readonly executor: TaskExecutorService,
    private readonly rpc: WorkerRpcService,
    private readonly registration: RegistrationService,
    private readonly admission: AdmissionService,
    private readonly liveness: LivenessService,
    private readonly superseded: SupersededStore,
    private readonly sandbox: TaskSandbox,
    @Inject(PORPOISE_CONFIG) private readonly config: WorkerConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly retention: LogRetentionService,
  ) {}

  /**
   * 0. DATA_DIR made private (mode 700, also when it existed): tasks must not read it;
   * 1. the liveness file the task watchdogs read (touched from now on);
   * 2. local state: log index, held results, orphans of an earlier run (killed, reported KILL),
   *    superseded dispatches;
   * 3. the gRPC server; 4. the registry key (masters see us only once we can answer);
   * 5. delivery of held results.
   */
  async onApplicationBootstrap(): Promise<void> {
    try {
      ensurePrivateDir(this.config.dataDir);
      await this.logs.init();
      this.liveness.start();
      const held = await this.delivery.loadOutbox();
      const orphans = await this.executor.recoverOrphans();
      const superseded = await this.superseded.load();
      // Their process groups are dead now (recoverOrphans): their directories can go.
      this.sandbox.sweep();
      if (held + orphans + superseded > 0) {
        this.logger.log(
          `resuming: ${held} held result(s), ${orphans} task(s) interrupted by a restart, ` +
            `${superseded} superseded task(s) remembered`,
        );
      }
      await this.rpc.start();
      this.rpcStarted = true;
      await this.registration.start();
      this.registered = true;
      this.admission.markRegistered();
      this.delivery.start();
      // Old task logs go in the background (a large data directory must not delay readiness).
      void this.retention.start();
    } catch (err) {
      await this.release();
      throw err;
    }
  }

  /**
   * Graceful stop (before the registry module closes the session): refuse new tasks and say so in
   * the heartbeat, let running tasks finish for DRAIN_GRACE_MS, kill the rest, deliver what can be
   * delivered, then remove the registry key and stop the server. Results not acknowledged stay in
   * the outbox for the next start.
   */
  beforeApplicationShutdown(): Promise<void> {
    this.stopping ??= this.drainAndStop();
    return this.stopping;
  }

  private async drainAndStop(): Promise<void> {
    this.admission.startDraining();
    this.rpc.setServing(false);
    // Tell the masters at once (bounded: the registry may be the thing that is down).
    if (this.registered) await Promise.race([this.registration.publish(), this.clock.sleep(PUBLISH_WAIT_MS)]);
    await this.executor.drain(DRAIN_GRACE_MS);
    await this.delivery.flush(SHUTDOWN_FLUSH_MS);
    await this.release();
    this.logger.log('worker stopped');
  }

  private async release(): Promise<void> {
    this.admission.startDraining();
    await this.retention.stop();
    await this.registration.stop();
    if (this.rpcStarted) await this.rpc.stop();
    this.delivery.close();
    // Last: every task has ended by now (a straggler's watchdog kills it at the deadline).
    this.liveness.stop();
  }
}
