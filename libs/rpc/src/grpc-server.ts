import { timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import {
  Server,
  ServerCredentials,
  status,
  type Metadata,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger, TlsMaterial } from '@porpoise/common';
import { serviceDefinition } from './proto-loader';
import { RpcInvalidArgument, RpcNotFound } from './rpc.errors';
import { UndecodableRequest } from './request-decoding';
import type { MasterTaskEventHandlers, WorkerTaskHandlers } from './rpc.types';

export const SECRET_METADATA_KEY = 'x-porpoise-secret';

export interface GrpcServerOptions {
  bindHost: string;
  port: number;
  clusterSecret: string;
  /**
   * Mutual TLS: the server presents cert/key and requires a client certificate signed by ca
   * (a plaintext client or one without such a certificate never gets past the handshake).
   * Plaintext when absent. The cluster secret is checked either way.
   */
  tls?: TlsMaterial;
  /** Refused calls (warn) and handler failures (error). */
  logger: Pick<Logger, 'warn' | 'error'>;
  worker?: WorkerTaskHandlers;
  master?: MasterTaskEventHandlers;
}

/** Constant-time check of the secret a call carries. */
function secretMatches(metadata: Metadata, secret: string): boolean {
  const given = metadata.get(SECRET_METADATA_KEY)[0];
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

function serverCredentials(tls: TlsMaterial | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  // true: checkClientCertificate, the "mutual" of mutual TLS.
  return ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true);
}

/**
 * A gRPC server for a master or a worker: the node's service, the standard health service,
 * and a secret check in front of every call (health included: an open port tells nothing).
 */
export class GrpcServer {
  private readonly server = new Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  private serving = true;

  constructor(private readonly options: GrpcServerOptions) {
    const { worker, master } = options;
    if (worker) {
      this.server.addService(serviceDefinition('WorkerTaskService'), {
        Dispatch: this.unary('Dispatch', (r) => worker.dispatch(r as never)),
        Kill: this.unary('Kill', (r) => worker.kill(r as never)),
        TakeOver: this.unary('TakeOver', (r) => worker.takeOver(r as never)),
        ReadLog: this.unary('ReadLog', (r) => worker.readLog(r as never)),
        StreamLog: this.serverStream('StreamLog', (r) =>
          worker.streamLog ? worker.streamLog(r as never) : Promise.reject(new StreamUnimplemented()),
        ),
      });
    }
    if (master) {
      this.server.addService(serviceDefinition('MasterTaskEventService'), {
        TaskStarted: this.unary('TaskStarted', (r) => master.taskStarted(r as never)),
        TaskFinished: this.unary('TaskFinished', (r) => master.taskFinished(r as never)),
      });
    }
    const health: UntypedServiceImplementation = {
      Check: this.unary('Health.Check', () =>
        Promise.resolve({ status: this.serving ? 'SERVING' : 'NOT_SERVING' }),
      ),
      Watch: (call: ServerWritableStream<unknown, unknown>) => {
        if (!this.authorized(call.metadata, 'Health.Watch', call.getPeer())) {
          call.emit('error', { code: status.UNAUTHENTICATED, details: 'missing or wrong cluster secret' });
          return;
        }
        if (call.request instanceof UndecodableRequest) {
          call.emit('error', { code: status.INVALID_ARGUMENT, details: call.request.message });
          return;
        }
        call.write({ status: this.serving ? 'SERVING' : 'NOT_SERVING' });
      },
    };
    this.server.addService(serviceDefinition('Health'), health);
  }

  /** Binds and starts; resolves with the bound port. */
  async start(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(
        `${this.options.bindHost}:${this.options.port}`,
        serverCredentials(this.options.tls),
        (err, port) => (err ? reject(err) : resolve(port)),
      );
    });
  }

  /** Health answers NOT_SERVING from now on (draining). */
  setServing(serving: boolean): void {
    this.serving = serving;
  }

  async stop(graceMs = 5000): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private authorized(metadata: Metadata, method: string, peer: string): boolean {
    if (secretMatches(metadata, this.options.clusterSecret)) return true;
    this.options.logger.warn(`refused ${method} from ${peer}: missing or wrong cluster secret`);
    return false;
  }

  /**
   * A server-streaming method: writes the handler's messages one by one, waiting for 'drain'
   * whenever the stream's buffer is full (gRPC flow control reaches back to the handler, which
   * produces the next message only then); stops when the caller cancels.
   */
  private serverStream(method: string, handler: (request: unknown) => Promise<AsyncIterable<unknown>>) {
    return (call: ServerWritableStream<unknown, unknown>) => {
      if (!this.authorized(call.metadata, method, call.getPeer())) {
        call.emit('error', { code: status.UNAUTHENTICATED, details: 'missing or wrong cluster secret' });
        return;
      }
      if (call.request instanceof UndecodableRequest) {
        call.emit('error', { code: status.INVALID_ARGUMENT, details: statusDetails(call.request.message) });
        return;
      }
      const gone = new Promise<void>((resolve) => {
        call.once('cancelled', resolve);
        call.once('close', resolve);
      });
      let cancelled = false;
      void gone.then(() => (cancelled = true));
      void (async () => {
        try {
          for await (const message of await handler(call.request)) {
            if (cancelled) break;
            if (!call.write(message)) await Promise.race([once(call, 'drain'), gone]);
          }
          if (!cancelled) call.end();
        } catch (err) {
          if (cancelled) return;
          const code =
            err instanceof RpcInvalidArgument || err instanceof RpcNotFound
              ? err.code
              : err instanceof StreamUnimplemented
                ? status.UNIMPLEMENTED
                : status.INTERNAL;
          const message = err instanceof Error ? err.message : String(err);
          if (code === status.INTERNAL) this.options.logger.error(`${method} failed: ${message}`);
          call.emit('error', { code, details: statusDetails(message) });
        }
      })();
    };
  }

  private unary(method: string, handler: (request: unknown) => Promise<unknown>) {
    return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      if (!this.authorized(call.metadata, method, call.getPeer())) {
        callback({ code: status.UNAUTHENTICATED, details: 'missing or wrong cluster secret' });
        return;
      }
      if (call.request instanceof UndecodableRequest) {
        callback({ code: status.INVALID_ARGUMENT, details: call.request.message });
        return;
      }
      handler(call.request).then(
        (response) => callback(null, response),
        (err: unknown) => {
          if (err instanceof RpcInvalidArgument) {
            callback({ code: status.INVALID_ARGUMENT, details: statusDetails(err.message) });
            return;
          }
          const message = statusDetails(err instanceof Error ? err.message : String(err));
          this.options.logger.error(`${method} failed: ${message}`);
          callback({ code: status.INTERNAL, details: message });
        },
      );
    };
  }
}

/** A streaming method this server's handlers do not implement. */
class StreamUnimplemented extends Error {
  constructor() {
    super('not implemented by this node');
  }
}

/** Longest status message sent back (characters). */
export const MAX_STATUS_DETAILS = 1024;

/**
 * A status message cut to MAX_STATUS_DETAILS. The details travel as an HTTP/2 trailer: one
 * larger than the peer's header-list limit (a validation message quoting a 300 KB field) was
 * never delivered, and the caller waited for its deadline instead of getting the error.
 */
function statusDetails(message: string): string {
  return message.length > MAX_STATUS_DETAILS ? `${message.slice(0, MAX_STATUS_DETAILS)}…` : message;
}
