import { CLOCK, PORPOISE_CONFIG, type MasterConfig, type Clock, type TimerHandle } from '@porpoise/common';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { Client, type Notification } from 'pg';
import {
  BACKFILL_CHANNEL,
  COMMAND_CHANNEL,
  INSTANCE_CONTROL_CHANNEL,
  INSTANCE_END_CHANNEL,
  SCHEDULE_CHANNEL,
  TASK_GROUP_CHANNEL,
  GATE_CHANNEL,
} from '../master.constants';

const CHANNELS = [
  COMMAND_CHANNEL,
  INSTANCE_CONTROL_CHANNEL,
  INSTANCE_END_CHANNEL,
  BACKFILL_CHANNEL,
  SCHEDULE_CHANNEL,
  TASK_GROUP_CHANNEL,
  GATE_CHANNEL,
] as const;
export type NotificationChannel = (typeof CHANNELS)[number];

const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5000;

/**
 * One dedicated Postgres connection (LISTEN needs a session of its own, never a pooled one)
 * listening on every channel of CHANNELS (commands, instance control and ends, backfills, task
 * groups, the run gate). On any error it reconnects with
 * backoff; every (re)connect is reported, because notifications sent while it was down are lost
 * and the listeners must catch up (consume at once, re-check instance states).
 */
@Injectable()
export class PgNotificationListener {
  private readonly logger = new Logger('PgListener');
  private client: Client | undefined;
  private stopped = true;
  private backoffMs = MIN_BACKOFF_MS;
  private reconnectTimer: TimerHandle | undefined;
  private connecting: Promise<void> | undefined;
  private downSince: number | undefined;
  private readonly handlers = new Map<NotificationChannel, Set<(payload: string) => void>>();
  private readonly connectedHandlers = new Set<() => void>();

  constructor(
    @Inject(PORPOISE_CONFIG) private readonly config: MasterConfig,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  on(channel: NotificationChannel, handler: (payload: string) => void): () => void {
    let set = this.handlers.get(channel);
    if (!set) this.handlers.set(channel, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  /** Called after every successful (re)connect. */
  onConnected(handler: () => void): () => void {
    this.connectedHandlers.add(handler);
    return () => this.connectedHandlers.delete(handler);
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.clock.clearTimeout(this.reconnectTimer);
    await this.connecting;
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
  }

  private connect(): Promise<void> {
    this.connecting ??= this.doConnect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async doConnect(): Promise<void> {
    if (this.stopped) return;
    const client = new Client({
      connectionString: this.config.databaseUrl,
      application_name: `porpoise-master-listen`,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
    });
    // Without an 'error' listener a dropped connection would crash the process.
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    client.on('notification', (n: Notification) => this.deliver(n));
    try {
      await client.connect();
      for (const channel of CHANNELS) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      this.lost(client, err as Error);
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.backoffMs = MIN_BACKOFF_MS;
    if (this.downSince !== undefined) this.logger.log('LISTEN connection is back');
    this.downSince = undefined;
    for (const handler of [...this.connectedHandlers]) {
      try {
        handler();
      } catch (err) {
        this.logger.error(`connect handler failed: ${(err as Error).message}`);
      }
    }
  }

  private lost(client: Client, err: Error): void {
    if (this.client === client) this.client = undefined;
    else if (this.client !== undefined) return; // an old client's late event
    if (this.stopped || this.reconnectTimer) return;
    if (this.downSince === undefined) {
      this.downSince = this.clock.now();
      this.logger.warn(`LISTEN connection lost (${err.message}); polling covers until it is back`);
    }
    const delay = this.backoffMs;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    this.reconnectTimer = this.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delay);
  }

  private deliver(n: Notification): void {
    const set = this.handlers.get(n.channel as NotificationChannel);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        handler(n.payload ?? '');
      } catch (err) {
        this.logger.error(`${n.channel} handler failed: ${(err as Error).message}`);
      }
    }
  }
}
