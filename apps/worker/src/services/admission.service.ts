import { Injectable } from '@nestjs/common';

export type SessionState = 'connected' | 'suspended' | 'lost';

/**
 * Whether this worker may take new tasks. A worker whose registry session is suspended or lost
 * must not start work: the masters may already consider it dead and dispatch its tasks elsewhere
 * (DESIGN.md section 6, Fencing). Draining (graceful stop) refuses too.
 */
@Injectable()
export class AdmissionService {
  private session: SessionState = 'connected';
  private drainingSince: number | undefined;

  setSession(state: SessionState): void {
    this.session = state;
  }

  get sessionState(): SessionState {
    return this.session;
  }

  startDraining(): void {
    this.drainingSince ??= Date.now();
  }

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  /** Why a Dispatch is refused now, or null when the worker takes tasks. */
  refusal(): string | null {
    if (this.draining) return 'draining';
    if (this.session === 'suspended') return 'session suspended';
    if (this.session === 'lost') return 'session lost';
    return null;
  }

  /** The heartbeat's `serving` flag. */
  get serving(): boolean {
    return this.refusal() === null;
  }
}
