import type { Logger } from '@nestjs/common';
import type { NodeHeartbeat } from '@porpoise/common';
import type { Registry, RegistryEvent, Subscription } from '@porpoise/registry';
import { InvalidHeartbeatError } from '../master.errors';
import { parseHeartbeat, parseNodeKey, type ParsedNodeKey } from './heartbeat';

export interface LiveNode {
  readonly key: string;
  readonly address: string;
  readonly group?: string;
  readonly heartbeat: NodeHeartbeat;
}

export type NodeChange =
  | { type: 'ADD'; node: LiveNode }
  /** previous: the entry this one replaced (another incarnation when its startTime differs). */
  | { type: 'UPDATE'; node: LiveNode; previous: LiveNode }
  | {
      type: 'REMOVE';
      /**
       * gone: the key was deleted (the node stopped or its session expired);
       * invalid: the key is still there but its value no longer validates (not usable, but not
       * proof that the node died: a worker's tasks are not re-run for that).
       */
      reason: 'gone' | 'invalid';
      node: LiveNode | { key: string; address: string; group?: string };
    };

/**
 * The live, valid node entries under a registry prefix (/nodes/master or /nodes/worker), kept
 * current by a subscription. Values are validated (parseHeartbeat); an invalid entry is left out
 * with one log line per distinct problem, and treated as gone if it was live before.
 */
export class NodeDirectory {
  private readonly nodes = new Map<string, LiveNode>();
  private readonly badEntries = new Map<string, string>();
  private readonly listeners = new Set<(change: NodeChange) => void>();
  private subscription: Subscription | undefined;
  /** Keys that changed while a listing was being read: the event is newer than the listing. */
  private touchedDuringList: Set<string> | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.subscription ??= await this.registry.subscribe(this.prefix, (e) => this.onEvent(e));
    await this.resync();
  }

  stop(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.listeners.clear();
  }

  onChange(listener: (change: NodeChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(): LiveNode[] {
    return [...this.nodes.values()];
  }

  get(key: string): LiveNode | undefined {
    return this.nodes.get(key);
  }

  /**
   * Re-reads every entry and reports the differences as changes (at start, and after a session
   * came back, when events may have been missed while disconnected).
   */
  async resync(): Promise<void> {
    this.touchedDuringList = new Set();
    try {
      const keys = await this.listKeys();
      const values = await Promise.all(keys.map(async (k) => [k, await this.registry.get(k)] as const));
      const seen = new Set<string>();
      for (const [key, value] of values) {
        seen.add(key);
        if (this.touchedDuringList.has(key)) continue;
        this.apply(
          key,
          value === null ? { type: 'REMOVE', key, value: null } : { type: 'UPDATE', key, value },
        );
      }
      for (const key of [...this.nodes.keys()]) {
        if (!seen.has(key) && !this.touchedDuringList.has(key)) {
          this.apply(key, { type: 'REMOVE', key, value: null });
        }
      }
    } finally {
      this.touchedDuringList = undefined;
    }
  }

  /** A REMOVE that named an earlier registration: applied only if the key is really gone. */
  private async confirmRemoval(key: string, held: LiveNode): Promise<void> {
    let current: string | null;
    try {
      current = await this.registry.get(key);
    } catch {
      current = null; // cannot tell: take the removal, as without this check
    }
    if (this.nodes.get(key) !== held) return; // something newer arrived meanwhile
    if (current !== null) {
      this.logger.log(`${key}: ignoring the removal of an earlier registration (the key is there)`);
      return;
    }
    this.apply(key, { type: 'REMOVE', key, value: null });
  }

  private async listKeys(): Promise<string[]> {
    const names = await this.registry.children(this.prefix);
    if (!this.prefix.endsWith('/worker')) return names.map((n) => `${this.prefix}/${n}`);
    const groups = await Promise.all(
      names.map(async (g) =>
        (await this.registry.children(`${this.prefix}/${g}`)).map((a) => `${this.prefix}/${g}/${a}`),
      ),
    );
    return groups.flat();
  }

  private onEvent(event: RegistryEvent): void {
    this.touchedDuringList?.add(event.key);
    this.apply(event.key, event);
  }

  private apply(key: string, event: RegistryEvent): void {
    const parsed = parseNodeKey(this.prefix, key);
    if (!parsed) return; // a folder such as /nodes/worker/default
    const before = this.nodes.get(key);
    if (before && olderThan(key, parsed, event.value, before.heartbeat)) {
      // History older than what we hold: after a session came back, a resync reads the current
      // entry while the resumed watch still delivers the events missed meanwhile (etcd: the
      // old registration's lease revoked, then the new one written). Applying them would take a
      // live worker for gone, and its newest tasks for lost. A removal is confirmed by reading
      // the key (it may be real, reported with a stale value); an older write is just dropped.
      if (event.type === 'REMOVE') void this.confirmRemoval(key, before);
      else this.logger.log(`${key}: ignoring a write of an earlier registration than the one held`);
      return;
    }
    if (event.type === 'REMOVE') {
      const wasInvalid = this.badEntries.delete(key);
      if (before) {
        this.nodes.delete(key);
        this.emit({ type: 'REMOVE', reason: 'gone', node: before });
      } else if (wasInvalid) {
        this.emit({
          type: 'REMOVE',
          reason: 'gone',
          node: { key, address: parsed.address, group: parsed.group },
        });
      }
      return;
    }
    const node = this.validate(key, parsed, event.value);
    if (!node) {
      if (before) {
        this.nodes.delete(key);
        this.emit({ type: 'REMOVE', reason: 'invalid', node: before });
      }
      return;
    }
    this.nodes.set(key, node);
    this.emit(before ? { type: 'UPDATE', node, previous: before } : { type: 'ADD', node });
  }

  private validate(key: string, parsed: ParsedNodeKey, value: string | null): LiveNode | undefined {
    try {
      const heartbeat = parseHeartbeat(key, parsed, value);
      if (this.badEntries.delete(key)) this.logger.log(`registry entry ${key} is valid again`);
      return { key, address: parsed.address, group: parsed.group, heartbeat };
    } catch (err) {
      if (!(err instanceof InvalidHeartbeatError)) throw err;
      if (this.badEntries.get(key) !== err.message) this.logger.warn(err.message);
      this.badEntries.set(key, err.message);
      return undefined;
    }
  }

  private emit(change: NodeChange): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        this.logger.error(`${this.prefix} listener failed: ${(err as Error).message}`);
      }
    }
  }
}

/**
 * Is value (an event's heartbeat) about an earlier process or registration of the node than
 * held? A process never goes back in start time, nor a registration in number; an unreadable or
 * missing value is not known to be older.
 */
function olderThan(key: string, parsed: ParsedNodeKey, value: string | null, held: NodeHeartbeat): boolean {
  let seen: NodeHeartbeat;
  try {
    seen = parseHeartbeat(key, parsed, value);
  } catch {
    return false;
  }
  if (seen.startTime !== held.startTime) return seen.startTime < held.startTime;
  return (seen.registration ?? 0) < (held.registration ?? 0);
}
