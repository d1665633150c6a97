import type { IDuplexStream, IEvent, IWatchRequest, IWatchResponse, WatchClient } from 'etcd3';
import type { Clock, TimerHandle } from '@porpoise/common';
import type { KeyRange } from './etcd-keys';

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 1_000;

type Stream = IDuplexStream<IWatchRequest, IWatchResponse>;

/**
 * One etcd watch on its own gRPC stream. etcd3's WatchManager is not used because it resumes
 * from the response header revision, which runs ahead of the events actually delivered while
 * a watcher catches up (etcd batches history at most 1,000 revisions at a time), and because
 * its reconnect backoff grows to 30 s. Here the next revision is taken only from delivered
 * events, so a resumed stream starts exactly after the last event seen: nothing is lost and
 * nothing is repeated.
 */
export class EtcdWatch {
  private stream: Stream | undefined;
  private nextRevision: bigint;
  private closed = false;
  private established = false;
  private retryTimer: TimerHandle | undefined;
  private retryDelayMs = RETRY_MIN_MS;
  private opening: { resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(
    private readonly client: WatchClient,
    private readonly range: KeyRange,
    /** First revision to deliver. */
    startRevision: bigint,
    private readonly onEvents: (events: IEvent[]) => void,
    private readonly warn: (message: string) => void,
    /** Schedules the reconnect backoff. */
    private readonly clock: Clock,
  ) {
    this.nextRevision = startRevision;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves once etcd confirms the watch; breaks after that are repaired in the background. */
  open(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.opening = { resolve, reject };
      this.connect();
    });
  }

  /** Re-creates the stream from the last delivered revision, e.g. after the connection came back. */
  restart(): void {
    if (this.closed || !this.established || this.retryTimer !== undefined) return;
    this.dropStream();
    this.connect();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.dropStream();
    this.settleOpening(new Error('watch closed'));
  }

  private connect(): void {
    if (this.closed) return;
    this.client.watch().then(
      (stream) => {
        // Handlers first: a stream without an 'error' listener would crash the process.
        stream.on('data', (res) => this.onResponse(stream, res));
        stream.on('error', (err) => this.onBroken(stream, err));
        stream.on('end', () => this.onBroken(stream, new Error('watch stream ended')));
        if (this.closed || this.stream) {
          stream.cancel();
          return;
        }
        this.stream = stream;
        try {
          stream.write({
            create_request: {
              key: this.range.key,
              range_end: this.range.range_end,
              start_revision: this.nextRevision.toString(),
              prev_kv: true,
            },
          });
        } catch (err) {
          this.onBroken(stream, err);
        }
      },
      (err: unknown) => this.onBroken(undefined, err),
    );
  }

  private onResponse(stream: Stream, res: IWatchResponse): void {
    if (stream !== this.stream || this.closed) return;
    if (res.canceled) {
      const compacted = BigInt(res.compact_revision || '0');
      if (compacted > 0n) {
        // History we still needed was compacted away: continue from the oldest revision left.
        this.warn(
          `etcd compacted revisions ${this.nextRevision}..${compacted - 1n} before this watch read them; ` +
            'changes in between are lost',
        );
        this.nextRevision = compacted;
      }
      this.onBroken(stream, new Error(`watch canceled by etcd: ${res.cancel_reason || 'no reason given'}`));
      return;
    }
    if (res.created) {
      this.established = true;
      this.retryDelayMs = RETRY_MIN_MS;
      this.settleOpening();
    }
    if (!res.events || res.events.length === 0) return;
    const fresh = res.events.filter((ev) => BigInt(ev.kv.mod_revision) >= this.nextRevision);
    const last = fresh.at(-1);
    if (!last) return;
    this.nextRevision = BigInt(last.kv.mod_revision) + 1n;
    this.onEvents(fresh);
  }

  private onBroken(stream: Stream | undefined, err: unknown): void {
    if (this.closed || (stream !== undefined && stream !== this.stream)) return;
    this.dropStream();
    if (!this.established) {
      this.settleOpening(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (this.retryTimer !== undefined) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(RETRY_MAX_MS, this.retryDelayMs * 2);
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  private dropStream(): void {
    const stream = this.stream;
    this.stream = undefined;
    try {
      stream?.cancel();
    } catch {
      // Already finished: nothing to cancel.
    }
  }

  private settleOpening(err?: Error): void {
    const opening = this.opening;
    this.opening = undefined;
    if (!opening) return;
    if (err) opening.reject(err);
    else opening.resolve();
  }
}
