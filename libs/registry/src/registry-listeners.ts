import type {
  ConnectionListener,
  ConnectionState,
  RegistryEvent,
  RegistryListener,
  Subscription,
} from './registry.interface';
import { isUnder } from './registry-path';

/**
 * Listener bookkeeping shared by the backends. A throwing listener is reported through
 * onListenerError and never breaks delivery to the others or the backend's own loop.
 */
export class ListenerSet {
  private readonly connection = new Set<ConnectionListener>();
  private readonly subscriptions = new Map<number, { prefix: string; listener: RegistryListener }>();
  private nextId = 1;

  constructor(private readonly onListenerError: (err: unknown) => void = () => undefined) {}

  addConnectionListener(listener: ConnectionListener): () => void {
    this.connection.add(listener);
    return () => this.connection.delete(listener);
  }

  emitConnectionState(state: ConnectionState): void {
    for (const listener of [...this.connection]) {
      try {
        listener(state);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  addSubscription(prefix: string, listener: RegistryListener, onEmpty?: () => void): Subscription {
    const id = this.nextId++;
    this.subscriptions.set(id, { prefix, listener });
    return {
      unsubscribe: () => {
        if (this.subscriptions.delete(id) && onEmpty && !this.hasSubscriptionUnder(prefix)) onEmpty();
      },
    };
  }

  /** Prefixes with at least one live subscription. */
  prefixes(): string[] {
    return [...new Set([...this.subscriptions.values()].map((s) => s.prefix))];
  }

  hasSubscriptionUnder(prefix: string): boolean {
    for (const s of this.subscriptions.values()) if (s.prefix === prefix) return true;
    return false;
  }

  /** True when some subscription covers key. */
  wants(key: string): boolean {
    for (const s of this.subscriptions.values()) if (isUnder(key, s.prefix)) return true;
    return false;
  }

  emit(event: RegistryEvent): void {
    for (const s of [...this.subscriptions.values()]) {
      if (!isUnder(event.key, s.prefix)) continue;
      try {
        s.listener(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  clear(): void {
    this.connection.clear();
    this.subscriptions.clear();
  }
}
