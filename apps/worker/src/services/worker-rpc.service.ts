import { Inject, Injectable, Logger } from '@nestjs/common';
import { PORPOISE_CONFIG, type WorkerConfig } from '@porpoise/common';
import {
  GrpcServer,
  RpcNotFound,
  type DispatchResponse,
  type LogChunk,
  type KillResponse,
  type ReadLogResponse,
  type TakeOverResponse,
  type WorkerTaskHandlers,
} from '@porpoise/rpc';
import { TaskLogStore } from '../adapters/task-log-store';
import {
  validateDispatchRequest,
  validateKillRequest,
  validateReadLogRequest,
  validateStreamLogRequest,
  validateTakeOverRequest,
} from '../domain/message-validation';
import { TaskTypeRegistry } from '../task-types/task-type.registry';
import { READ_LOG_LIMIT_BYTES, STREAM_LOG_CHUNK_BYTES } from '../worker.constants';
import { AdmissionService } from './admission.service';
import { TaskExecutorService } from './task-executor.service';
import { aboutTask } from '../domain/task-log-ids';

/**
 * The worker's gRPC service (proto/porpoise/v1/worker.proto) on BIND_HOST:WORKER_PORT. GrpcServer
 * refuses calls without the cluster secret; every message is validated here before it reaches
 * the executor, a Dispatch's payload by its task type (RpcInvalidArgument → INVALID_ARGUMENT
 * naming the field).
 */
@Injectable()
export class WorkerRpcService implements WorkerTaskHandlers {
  private readonly logger = new Logger('WorkerRpc');
  private server: GrpcServer | undefined;

  constructor(
    @Inject(PORPOISE_CONFIG) private readonly config: WorkerConfig,
    private readonly executor: TaskExecutorService,
    private readonly logs: TaskLogStore,
    private readonly admission: AdmissionService,
    private readonly taskTypes: TaskTypeRegistry,
  ) {}

  async start(): Promise<void> {
    const server = new GrpcServer({
      bindHost: this.config.bindHost,
      port: this.config.workerPort,
      clusterSecret: this.config.clusterSecret,
      tls: this.config.tls,
      logger: this.logger,
      worker: this,
    });
    const port = await server.start();
    this.server = server;
    this.logger.log(`gRPC listening on ${this.config.bindHost}:${port}`);
  }

  /** Health answers NOT_SERVING while the worker drains. */
  setServing(serving: boolean): void {
    this.server?.setServing(serving);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop(2_000);
  }

  async dispatch(req: unknown): Promise<DispatchResponse> {
    const { task, workerStartTimeMs, workerRegistration } = validateDispatchRequest(req);
    // The type checks its payload before anything starts (INVALID_ARGUMENT naming the field).
    const res = await this.executor.dispatch(this.taskTypes.prepare(task), {
      startTimeMs: workerStartTimeMs,
      registration: workerRegistration,
    });
    if (!res.accepted) {
      this.logger.warn(aboutTask(task, `refused task ${task.taskInstanceId}: ${res.reason}`));
    }
    return {
      ...res,
      workerStartTimeMs: this.admission.startTimeMs,
      workerRegistration: this.admission.registration,
    };
  }

  async kill(req: unknown): Promise<KillResponse> {
    return this.executor.kill(validateKillRequest(req).taskInstanceId);
  }

  async takeOver(req: unknown): Promise<TakeOverResponse> {
    const res = await this.executor.takeOver(validateTakeOverRequest(req));
    return {
      ...res,
      workerStartTimeMs: this.admission.startTimeMs,
      workerRegistration: this.admission.registration,
    };
  }

  async readLog(req: unknown): Promise<ReadLogResponse> {
    const { taskInstanceId, offset, limit } = validateReadLogRequest(req);
    const bytes = limit === 0 ? READ_LOG_LIMIT_BYTES : Math.min(limit, READ_LOG_LIMIT_BYTES);
    return this.logs.read(taskInstanceId, offset, bytes);
  }

  async streamLog(req: unknown): Promise<AsyncIterable<LogChunk>> {
    const { taskInstanceId, offset } = validateStreamLogRequest(req);
    const stream = await this.logs.stream(taskInstanceId, offset, STREAM_LOG_CHUNK_BYTES);
    if (!stream) throw new RpcNotFound(`no log of task instance ${taskInstanceId} on this worker`);
    return stream;
  }
}
