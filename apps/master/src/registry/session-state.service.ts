import { Inject, Injectable, Logger } from '@nestjs/common';
import { REGISTRY, type ConnectionState, type Registry } from '@porpoise/registry';

export type SessionPhase = 'CONNECTED' | 'SUSPENDED' | 'LOST';

/**
 * The master's view of its registry session, for fencing (DESIGN.md section 6):
 * - SUSPENDED: the session may still be alive but we cannot prove it; start nothing new (no
 *   consume, no dispatch, no schedule firing). Work already running continues; its writes are
 *   conditional on ownership anyway.
 * - LOST: the session expired, our key is gone and other masters may already take our
 *   instances: drop every runner at once.
 * - CONNECTED (also after RECONNECTED): normal; after a LOST this is a new session.
 */
@Injectable()
export class SessionStateService {
  private readonly logger = new Logger('MasterSession');
  private phase: SessionPhase = 'CONNECTED';
  private readonly listeners = new Set<(phase: SessionPhase, previous: SessionPhase) => void>();
  private unlisten: (() => void) | undefined;

  constructor(@Inject(REGISTRY) private readonly registry: Registry) {}

  /** The registry module resolves once the first session is CONNECTED, so we start there. */
  start(): void {
    this.unlisten ??= this.registry.onConnectionStateChange((state) => this.onState(state));
  }

  stop(): void {
    this.unlisten?.();
    this.unlisten = undefined;
  }

  get current(): SessionPhase {
    return this.phase;
  }

  /** May this master start new work right now? */
  canStartWork(): boolean {
    return this.phase === 'CONNECTED';
  }

  onChange(listener: (phase: SessionPhase, previous: SessionPhase) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private onState(state: ConnectionState): void {
    const next: SessionPhase = state === 'RECONNECTED' ? 'CONNECTED' : state;
    if (next === this.phase) return;
    const previous = this.phase;
    this.phase = next;
    this.logger.log(`registry session ${state} (was ${previous})`);
    for (const listener of [...this.listeners]) {
      try {
        listener(next, previous);
      } catch (err) {
        this.logger.error(`session listener failed: ${(err as Error).message}`);
      }
    }
  }
}
