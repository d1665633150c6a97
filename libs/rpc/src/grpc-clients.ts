import { PassThrough, type Readable } from 'node:stream';
import type { TlsMaterial } from '@porpoise/common';
import {
  connectivityState,
  credentials,
  type ChannelCredentials,
  Metadata,
  status,
  type ClientReadableStream,
  type ServiceClientConstructor,
  type ServiceError,
} from '@grpc/grpc-js';
import { services, type LoadedServices } from './proto-loader';
import { RpcCallError, RpcUnknownMethodError } from './rpc.errors';
import { SECRET_METADATA_KEY } from './grpc-server';
import type {
  DispatchRequest,
  DispatchResponse,
  EventAck,
  KillResponse,
  ReadLogResponse,
  StreamLogRequest,
  TakeOverResponse,
  TaskFinishedEvent,
  TaskSpec,
  TaskStartedEvent,
  WorkerAddressee,
} from './rpc.types';

/** A client of a service loaded from proto/ (grpc-js does not export the type by name). */
type ServiceClient = InstanceType<ServiceClientConstructor>;

type UnaryMethod = (
  request: unknown,
  metadata: Metadata,
  options: { deadline: Date },
  callback: (err: ServiceError | null, response: unknown) => void,
) => void;

type StreamingMethod = (request: unknown, metadata: Metadata) => ClientReadableStream<unknown>;

/** Channel options of every peer channel. */
const PEER_CHANNEL_OPTIONS = {
  // A restarted peer is found again within ~2 s instead of grpc's default 120 s backoff cap.
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2000,
  // Each channel gets subchannels of its own, so a channel made to replace a stuck one (below)
  // really connects afresh instead of inheriting the stuck connection attempt.
  'grpc.use_local_subchannel_pool': 1,
} as const;

/**
 * One channel per peer address, reused across calls; every call carries the cluster secret
 * and a deadline, over mutual TLS when the node has TLS material. Close it to release the channels.
 *
 * A call that fails UNAVAILABLE or DEADLINE_EXCEEDED on a channel that is not READY replaces that
 * channel (a slow answer on a READY channel does not). grpc-js has no connect timeout: a
 * connection attempt that never completes leaves the channel CONNECTING forever, every call
 * failing at once while the peer is up. The chaos suite saw it when the zookeeper binding
 * dropped a fresh socket from epoll (fixed in scripts/build-zookeeper-client.mjs); this keeps any
 * other such hang from cutting a node off its peers. Calls in flight on the old channel still
 * complete (close() only stops new calls).
 */
class PeerClients {
  private readonly clients = new Map<string, ServiceClient>();

  private readonly channelCredentials: ChannelCredentials;

  constructor(
    private readonly service: keyof LoadedServices,
    private readonly secret: string,
    tls: TlsMaterial | undefined,
  ) {
    // With TLS the client shows its certificate and checks that the peer's is signed by the
    // cluster CA and names the host it dialed (the peer's NODE_HOST, from the registry).
    this.channelCredentials = tls
      ? credentials.createSsl(tls.ca, tls.key, tls.cert)
      : credentials.createInsecure();
  }

  call<R>(address: string, method: string, request: unknown, deadlineMs: number): Promise<R> {
    const client = this.client(address);
    const found = Object.hasOwn(services()[this.service].service, method) ? client[method] : undefined;
    if (typeof found !== 'function') return Promise.reject(new RpcUnknownMethodError(this.service, method));
    // The loaded service's methods are untyped; every one called here is unary.
    const fn = (found as UnaryMethod).bind(client);
    const metadata = new Metadata();
    metadata.set(SECRET_METADATA_KEY, this.secret);
    return new Promise<R>((resolve, reject) => {
      // grpc deadlines are wall-clock Dates, so Date.now() rather than the injectable Clock.
      fn(request, metadata, { deadline: new Date(Date.now() + deadlineMs) }, (err, response) => {
        if (err) {
          if (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED) {
            this.replaceIfNotReady(address, client);
          }
          reject(new RpcCallError(method, address, err.code, err.details || err.message));
        } else resolve(response as R);
      });
    });
  }

  /**
   * A server-streaming call: a stream of its messages that errors with RpcCallError. Backpressure
   * holds end to end (a consumer that stops reading stops the peer producing); destroying the
   * stream cancels the call. No deadline: a long stream to a slow reader may take its time.
   */
  stream(address: string, method: string, request: unknown): Readable {
    const client = this.client(address);
    const found = Object.hasOwn(services()[this.service].service, method) ? client[method] : undefined;
    if (typeof found !== 'function') throw new RpcUnknownMethodError(this.service, method);
    const fn = (found as StreamingMethod).bind(client);
    const metadata = new Metadata();
    metadata.set(SECRET_METADATA_KEY, this.secret);
    const call = fn(request, metadata);
    const out = new PassThrough({ objectMode: true, highWaterMark: 4 });
    call.on('error', (err: ServiceError) => {
      if (err.code === status.UNAVAILABLE) this.replaceIfNotReady(address, client);
      out.destroy(new RpcCallError(method, address, err.code, err.details || err.message));
    });
    // The consumer went away (or the stream failed): nothing more is wanted from the peer.
    out.on('close', () => call.cancel());
    call.pipe(out);
    return out;
  }

  private replaceIfNotReady(address: string, client: ServiceClient): void {
    // Another failed call may have replaced it already; never close a newer channel.
    if (this.clients.get(address) !== client) return;
    if (client.getChannel().getConnectivityState(false) === connectivityState.READY) return;
    this.clients.delete(address);
    client.close();
  }

  /** Drops the channel to a peer that went away. */
  forget(address: string): void {
    this.clients.get(address)?.close();
    this.clients.delete(address);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private client(address: string): ServiceClient {
    let client = this.clients.get(address);
    if (!client) {
      const Ctor = services()[this.service];
      client = new Ctor(address, this.channelCredentials, PEER_CHANNEL_OPTIONS);
      this.clients.set(address, client);
    }
    return client;
  }
}

/** Master -> worker calls. */
export class WorkerClient {
  private readonly peers: PeerClients;
  /** tls: the node's mutual TLS material (its config's `tls`); plaintext when absent. */
  constructor(secret: string, tls?: TlsMaterial) {
    this.peers = new PeerClients('WorkerTaskService', secret, tls);
  }
  dispatch(
    address: string,
    task: TaskSpec,
    deadlineMs = 5000,
    to?: WorkerAddressee,
  ): Promise<DispatchResponse> {
    const request: DispatchRequest = {
      task,
      workerStartTimeMs: to?.startTimeMs ?? 0,
      workerRegistration: to?.registration ?? 0,
    };
    return this.peers.call(address, 'Dispatch', request, deadlineMs);
  }
  kill(address: string, taskInstanceId: number, deadlineMs = 5000): Promise<KillResponse> {
    return this.peers.call(address, 'Kill', { taskInstanceId }, deadlineMs);
  }
  takeOver(
    address: string,
    taskInstanceId: number,
    newMasterAddress: string,
    epoch: number,
    deadlineMs = 5000,
  ): Promise<TakeOverResponse> {
    return this.peers.call(address, 'TakeOver', { taskInstanceId, newMasterAddress, epoch }, deadlineMs);
  }
  readLog(
    address: string,
    taskInstanceId: number,
    offset = 0,
    limit = 0,
    deadlineMs = 10_000,
  ): Promise<ReadLogResponse> {
    return this.peers.call(address, 'ReadLog', { taskInstanceId, offset, limit }, deadlineMs);
  }
  /**
   * StreamLog: a stream of LogChunk objects (the first with `size` only), erroring with
   * RpcCallError (NOT_FOUND: the worker has no such log). Destroy it to cancel the call.
   */
  streamLog(address: string, taskInstanceId: number, offset = 0): Readable {
    const request: StreamLogRequest = { taskInstanceId, offset };
    return this.peers.stream(address, 'StreamLog', request);
  }
  forget(address: string): void {
    this.peers.forget(address);
  }
  close(): void {
    this.peers.close();
  }
}

/** Worker -> master calls. */
export class MasterEventClient {
  private readonly peers: PeerClients;
  /** tls: the node's mutual TLS material (its config's `tls`); plaintext when absent. */
  constructor(secret: string, tls?: TlsMaterial) {
    this.peers = new PeerClients('MasterTaskEventService', secret, tls);
  }
  taskStarted(address: string, event: TaskStartedEvent, deadlineMs = 5000): Promise<EventAck> {
    return this.peers.call(address, 'TaskStarted', event, deadlineMs);
  }
  taskFinished(address: string, event: TaskFinishedEvent, deadlineMs = 5000): Promise<EventAck> {
    return this.peers.call(address, 'TaskFinished', event, deadlineMs);
  }
  forget(address: string): void {
    this.peers.forget(address);
  }
  close(): void {
    this.peers.close();
  }
}

/** grpc.health.v1 Check against a master or worker. */
export class HealthClient {
  private readonly peers: PeerClients;
  /** tls: the node's mutual TLS material (its config's `tls`); plaintext when absent. */
  constructor(secret: string, tls?: TlsMaterial) {
    this.peers = new PeerClients('Health', secret, tls);
  }
  async check(address: string, deadlineMs = 2000): Promise<'SERVING' | 'NOT_SERVING' | 'UNKNOWN'> {
    const res = await this.peers.call<{ status: 'SERVING' | 'NOT_SERVING' | 'UNKNOWN' }>(
      address,
      'Check',
      { service: '' },
      deadlineMs,
    );
    return res.status;
  }
  close(): void {
    this.peers.close();
  }
}
