import { Readable } from 'node:stream';
import { status } from '@grpc/grpc-js';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { PORPOISE_CONFIG, type ApiServerConfig } from '@porpoise/common';
import { InstanceQueryRepository } from '@porpoise/dao';
import { RpcCallError, WorkerClient, type LogChunk } from '@porpoise/rpc';
import { BadGatewayError, NotFoundError, ServiceUnavailableError } from '../common/api-errors';

/** Per ReadLog call of the fallback (a worker without StreamLog): well below gRPC's 4 MiB limit. */
const CHUNK_BYTES = 1024 * 1024;
/** How long a worker may take to answer before the request fails (503); the stream itself has no deadline. */
const CALL_DEADLINE_MS = 5000;

export interface TaskLog {
  /** Bytes the body carries, when the worker said (StreamLog); undefined from the fallback. */
  readonly size: number | undefined;
  /** The log, pulled from the worker as the reader reads (destroy it to stop). */
  readonly body: Readable;
}

/**
 * Reads a task's log from the worker that ran it (the log lives on that worker's disk), streamed:
 * StreamLog over gRPC with the cluster secret, each chunk pulled only when the HTTP response can
 * take it, so one request holds a few chunks whatever the log's size. A worker from before
 * StreamLog (UNIMPLEMENTED) is read with ReadLog, one chunk per pull.
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

  /**
   * Resolves once the worker answered (so a missing log or an unreachable worker is an error
   * status, not a cut body), with the log from `offset` on.
   */
  async open(taskInstanceId: number, offset = 0): Promise<TaskLog> {
    const location = await this.instances.taskLogLocation(taskInstanceId);
    if (!location) throw new NotFoundError(`task instance ${taskInstanceId} not found`);
    const { host, logPath } = location;
    if (!host || !logPath) throw new NotFoundError(`task instance ${taskInstanceId} has no log yet`);
    try {
      try {
        return await this.stream(host, taskInstanceId, offset);
      } catch (err) {
        if (!(err instanceof RpcCallError && err.code === status.UNIMPLEMENTED)) throw err;
        return await this.chunked(host, taskInstanceId, offset);
      }
    } catch (err) {
      throw this.workerError(err, host, taskInstanceId);
    }
  }

  onApplicationShutdown(): void {
    this.workers.close();
  }

  private async stream(host: string, taskInstanceId: number, offset: number): Promise<TaskLog> {
    const messages = this.workers.streamLog(host, taskInstanceId, offset);
    const it = messages[Symbol.asyncIterator]() as AsyncIterator<LogChunk>;
    let first: IteratorResult<LogChunk>;
    try {
      first = await answerWithin(it.next(), CALL_DEADLINE_MS, 'StreamLog', host);
    } catch (err) {
      messages.destroy();
      throw err;
    }
    if (first.done) {
      throw new RpcCallError('StreamLog', host, status.INTERNAL, 'the stream ended without its size');
    }
    async function* contents(): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          const next = await it.next();
          if (next.done) return;
          yield Buffer.from(next.value.content);
        }
      } finally {
        // The reader went away (or all is read): cancel the call.
        messages.destroy();
      }
    }
    return { size: Number(first.value.size), body: Readable.from(contents(), { objectMode: false }) };
  }

  private async chunked(host: string, taskInstanceId: number, offset: number): Promise<TaskLog> {
    const read = (from: number) =>
      this.workers.readLog(host, taskInstanceId, from, CHUNK_BYTES, CALL_DEADLINE_MS);
    const first = await read(offset);
    if (!first.found) throw new RpcCallError('ReadLog', host, status.NOT_FOUND, 'no such log');
    async function* contents(): AsyncGenerator<Buffer> {
      let res = first;
      let at = offset;
      for (;;) {
        const content = Buffer.from(res.content ?? []);
        if (content.length > 0) yield content;
        // nextOffset must move forward, or a confused worker would keep us here forever.
        const next = Number(res.nextOffset);
        if (!res.found || res.eof || content.length === 0 || !(next > at)) return;
        at = next;
        res = await read(at);
      }
    }
    return { size: undefined, body: Readable.from(contents(), { objectMode: false }) };
  }

  private workerError(err: unknown, host: string, taskInstanceId: number): Error {
    if (err instanceof RpcCallError) {
      if (err.code === status.NOT_FOUND) {
        return new NotFoundError(`worker ${host} has no log of task instance ${taskInstanceId}`);
      }
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

/** The first answer of a stream, or DEADLINE_EXCEEDED after ms. */
function answerWithin<T>(answer: Promise<T>, ms: number, method: string, host: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RpcCallError(method, host, status.DEADLINE_EXCEEDED, `no answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([answer, late]).finally(() => clearTimeout(timer));
}
