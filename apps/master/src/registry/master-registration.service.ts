import {
  CLOCK,
  PORPOISE_CONFIG,
  REGISTRY_PATHS,
  type MasterConfig,
  type Clock,
  type TimerHandle,
} from '@porpoise/common';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { REGISTRY, type Registry } from '@porpoise/registry';
import { MASTER_IDENTITY, type MasterIdentity } from '../master.constants';
import { MasterHeartbeat } from './heartbeat';
import { SessionStateService } from './session-state.service';

/**
 * Keeps this master's ephemeral `/nodes/master/{host}:{port}` key with a fresh NodeHeartbeat,
 * refreshed every heartbeat interval. The key dies with the session; after a LOST the next
 * CONNECTED (a new session) re-registers at once instead of waiting for the next tick.
 */
@Injectable()
export class MasterRegistrationService {
  private readonly logger = new Logger('MasterRegistration');
  private readonly key: string;
  private readonly sampler: MasterHeartbeat;
  private timer: TimerHandle | undefined;
  private running = false;
  private draining = false;
  private inFlight: Promise<void> | undefined;
  private failing = false;
  private unlisten: (() => void) | undefined;

  constructor(
    @Inject(REGISTRY) private readonly registry: Registry,
    @Inject(PORPOISE_CONFIG) private readonly config: MasterConfig,
    @Inject(MASTER_IDENTITY) identity: MasterIdentity,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(SessionStateService) private readonly session: SessionStateService,
  ) {
    this.key = REGISTRY_PATHS.master(identity.host, identity.port);
    this.sampler = new MasterHeartbeat(identity.host, identity.port, clock);
  }

  get registryKey(): string {
    return this.key;
  }

  async start(): Promise<void> {
    this.running = true;
    this.unlisten = this.session.onChange((phase) => {
      // A new session (after LOST) or a reconnect: put the key now (serving again).
      if (phase === 'CONNECTED') this.beat();
    });
    await this.put();
    this.schedule();
  }

  /** Marks the key serving=false (draining) before the master stops taking work. */
  async drain(): Promise<void> {
    if (!this.running) return;
    this.draining = true;
    await this.inFlight;
    await this.put().catch(() => undefined);
  }

  /** Stops the heartbeat and deletes the key, so other masters re-slot at once. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unlisten?.();
    this.clock.clearTimeout(this.timer);
    await this.inFlight;
    try {
      await this.registry.delete(this.key);
    } catch (err) {
      this.logger.warn(`could not delete ${this.key}: ${(err as Error).message}`);
    }
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = this.clock.setTimeout(() => this.beat(), this.config.registry.heartbeatIntervalMs);
  }

  private beat(): void {
    if (!this.running || this.inFlight) return;
    this.clock.clearTimeout(this.timer);
    this.inFlight = this.put()
      .then(
        () => {
          if (this.failing) this.logger.log(`heartbeat to ${this.key} works again`);
          this.failing = false;
        },
        (err: Error) => {
          // Logged once per outage: the registry client reports the session state itself.
          if (!this.failing) this.logger.warn(`heartbeat to ${this.key} failed: ${err.message}`);
          this.failing = true;
        },
      )
      .finally(() => {
        this.inFlight = undefined;
        this.schedule();
      });
  }

  private put(): Promise<void> {
    const serving = !this.draining && this.session.canStartWork();
    return this.registry.put(this.key, JSON.stringify(this.sampler.sample(serving)), { ephemeral: true });
  }
}
