import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { PORPOISE_CONFIG, type ApiServerConfig } from '@porpoise/common';
import { InstanceQueryRepository } from '@porpoise/dao';
import { RpcCallError, WorkerClient } from '@porpoise/rpc';
import { BadGatewayError, NotFoundError, ServiceUnavailableError } from '../common/api-errors';

/** The most of one log the API returns; the rest is cut (the response says so in a header). */
export const LOG_CAP_BYTES = 16 * 1024 * 1024;
/** Per ReadLog call: well below gRPC's 4 MiB message limit. */
const CHUNK_BYTES = 1024 * 1024;
const CALL_DEADLINE_MS = 5000;

export interface TaskLog {
  readonly content: Buffer;
  readonly truncated: boolean;
}

/**
 * Reads a task's log from the worker that ran it (the log lives on that worker's disk), in
 * chunks over gRPC with the cluster secret, up to LOG_CAP_BYTES.
 */
@Injectable()
export class TaskLogService implements OnApplicationShutdown {
  private readonly logger = new Logger('TaskLogService');
  private readonly workers: WorkerClient;

  constructor(
    private readonly instances: InstanceQueryRepository,
    @Inject(PORPOISE_CONFIG) config: ApiServerConfig,
  ) {
    this.workers = new WorkerClient(config.clusterSecret, config.tls);
  }

  async read(taskInstanceId: number): Promise<TaskLog> {
    const location = await this.instances.taskLogLocation(taskInstanceId);
    if (!location) throw new NotFoundError(`task instance ${taskInstanceId} not found`);
    const { host, logPath } = location;
    if (!host || !logPath) throw new NotFoundError(`task instance ${taskInstanceId} has no log yet`);
    const chunks: Buffer[] = [];
    let size = 0;
    let offset = 0;
    for (;;) {
      const limit = Math.min(CHUNK_BYTES, LOG_CAP_BYTES - size);
      if (limit <= 0) return { content: Buffer.concat(chunks), truncated: true };
      let res;
      try {
        res = await this.workers.readLog(host, taskInstanceId, offset, limit, CALL_DEADLINE_MS);
      } catch (err) {
        throw this.workerError(err, host, taskInstanceId);
      }
      if (!res.found) {
        if (offset === 0) {
          throw new NotFoundError(`worker ${host} has no log of task instance ${taskInstanceId}`);
        }
        break;
      }
      const content = Buffer.from(res.content ?? []);
      chunks.push(content);
      size += content.length;
      // nextOffset must move forward, or a confused worker would keep us here forever.
      const next = Number(res.nextOffset);
      if (res.eof || content.length === 0 || !(next > offset)) break;
      offset = next;
    }
    return { content: Buffer.concat(chunks), truncated: false };
  }

  onApplicationShutdown(): void {
    this.workers.close();
  }

  private workerError(err: unknown, host: string, taskInstanceId: number): Error {
    if (err instanceof RpcCallError) {
      if (err.unavailable) {
        // A worker that is gone may come back under the same address: drop the channel.
        this.workers.forget(host);
        return new ServiceUnavailableError(
          `worker ${host} is unreachable; the log of task instance ${taskInstanceId} cannot be read now`,
        );
      }
      this.logger.warn(err.message);
      return new BadGatewayError(
        `worker ${host} refused to read the log of task instance ${taskInstanceId}: ${err.message}`,
      );
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}
