import { Inject, Injectable, Logger } from '@nestjs/common';
import { PORPOISE_CONFIG, type MasterConfig } from '@porpoise/common';
import { GrpcServer, type EventAck, type TaskFinishedEvent, type TaskStartedEvent } from '@porpoise/rpc';
import { MASTER_OPTIONS, type MasterOptions } from '../master.constants';
import { WorkflowEngineService } from '../engine/workflow-engine.service';
import { validateTaskFinished, validateTaskStarted } from './event-validation';

/**
 * The master's gRPC endpoint (MasterTaskEventService + health) on bindHost:masterPort, behind
 * the cluster secret. Workers report TaskStarted / TaskFinished here; the answer (ACCEPTED /
 * NOT_OWNER / OBSOLETE) is given only after the runner persisted the event.
 */
@Injectable()
export class MasterRpcService {
  private readonly logger = new Logger('MasterRpc');
  private server: GrpcServer | undefined;

  constructor(
    @Inject(PORPOISE_CONFIG) private readonly config: MasterConfig,
    @Inject(MASTER_OPTIONS) private readonly options: MasterOptions,
    @Inject(WorkflowEngineService) private readonly engine: WorkflowEngineService,
  ) {}

  async start(): Promise<number> {
    this.server = new GrpcServer({
      bindHost: this.config.bindHost,
      port: this.config.masterPort,
      clusterSecret: this.config.clusterSecret,
      tls: this.config.tls,
      logger: { warn: (m) => this.logger.warn(m), error: (m) => this.logger.error(m) },
      master: {
        // async: a validation error must become a rejected promise (INVALID_ARGUMENT), never a throw
        // inside grpc-js's callback.
        taskStarted: async (ev: TaskStartedEvent): Promise<EventAck> =>
          this.engine.taskStarted(validateTaskStarted(ev)),
        taskFinished: async (ev: TaskFinishedEvent): Promise<EventAck> =>
          this.engine.taskFinished(validateTaskFinished(ev)),
      },
    });
    const port = await this.server.start();
    this.logger.log(`gRPC listening on ${this.config.bindHost}:${port}`);
    return port;
  }

  /** Health answers NOT_SERVING while the master drains. */
  setServing(serving: boolean): void {
    this.server?.setServing(serving);
  }

  /** Lets in-flight calls finish (up to the grace period), then closes the port. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop(this.options.shutdownGraceMs);
  }
}
