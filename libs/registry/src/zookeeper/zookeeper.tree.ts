import type { RegistryEvent } from '../registry.interface';
import { isUnder, joinPath } from '../registry-path';
import type { WatchType, ZkClient, ZkData } from './zookeeper.client';
import { decodeValue, isSystemPath } from './zookeeper.codec';

/** What the tree cache needs from the registry that owns it. */
export interface TreeHost {
  /** The handle of the current session (connected or not), if any. */
  session(): ZkClient | undefined;
  emit(event: RegistryEvent): void;
}

interface Entry {
  readonly path: string;
  exists: boolean;
  czxid: number;
  mzxid: number;
  /** The key's value; null when the node is absent or is an implicit parent / lock node. */
  value: string | null;
  children: Set<string>;
  /** Resolves when the first read of this subtree (data, children, theirs) has completed. */
  ready: Promise<void>;
  // One read of each kind in flight per session; a trigger meanwhile asks for one more.
  dataClient?: ZkClient;
  dataInFlight?: Promise<void>;
  dataAgain: boolean;
  childClient?: ZkClient;
  childInFlight?: Promise<void>;
  childAgain: boolean;
}

const DONE = Promise.resolve();

/**
 * A mirror of every subtree someone subscribed to, kept current with one-shot watches.
 *
 * Every fired watch leads to a re-read that sets a new watch, and the result is compared with
 * the mirror, so a change made between a fire and the re-arming is still seen. Completions of
 * one session arrive in server order and are applied synchronously, so the mirror only moves
 * forward; czxid/mzxid guard against anything older anyway. ZooKeeper coalesces bursts (a
 * watch carries no data), so intermediate values may be skipped but the latest never is.
 * Reads that fail (connection loss) are remembered as dirty and redone when the link is back;
 * after a new session everything is re-read and differences are delivered as events.
 */
export class ZkTreeCache {
  private readonly roots = new Map<string, number>();
  private readonly nodes = new Map<string, Entry>();
  private readonly dirty = new Set<string>();

  constructor(private readonly host: TreeHost) {}

  /** Starts mirroring prefix (reference-counted); await settle() for the first scan. */
  addRoot(prefix: string): void {
    this.roots.set(prefix, (this.roots.get(prefix) ?? 0) + 1);
    if (!this.nodes.has(prefix)) void this.track(prefix);
  }

  removeRoot(prefix: string): void {
    const count = (this.roots.get(prefix) ?? 0) - 1;
    if (count > 0) {
      this.roots.set(prefix, count);
      return;
    }
    this.roots.delete(prefix);
    // Watches cannot be cancelled with this client; entries out of scope just stop reacting.
    for (const path of [...this.nodes.keys()]) if (!this.inScope(path)) this.nodes.delete(path);
    for (const path of [...this.dirty]) if (!this.nodes.has(path)) this.dirty.delete(path);
  }

  /** Waits for the first scan under prefix; true when every read under it succeeded. */
  async settle(prefix: string): Promise<boolean> {
    await this.nodes.get(prefix)?.ready;
    for (const path of this.dirty) if (isUnder(path, prefix)) return false;
    return true;
  }

  hasDirty(): boolean {
    return this.dirty.size > 0;
  }

  /** Redoes reads that failed; call when the link is up again (same session). */
  retryDirty(): Promise<void> {
    const paths = [...this.dirty];
    this.dirty.clear();
    const reads: Promise<void>[] = [];
    for (const path of paths) {
      const e = this.nodes.get(path);
      if (e) reads.push(this.readData(e), this.readChildren(e));
    }
    return Promise.all(reads).then(() => undefined);
  }

  /** Re-reads everything on a new session (it has no watches) and reports what changed meanwhile. */
  resync(): Promise<void> {
    this.dirty.clear();
    const reads: Promise<void>[] = [];
    for (const e of [...this.nodes.values()]) reads.push(this.readData(e), this.readChildren(e));
    return Promise.all(reads).then(() => undefined);
  }

  onWatch(client: ZkClient, type: WatchType, path: string): void {
    if (client !== this.host.session()) return;
    const e = this.nodes.get(path);
    if (!e) return;
    if (type !== 'child') void this.readData(e);
    if (type !== 'changed') void this.readChildren(e);
  }

  clear(): void {
    this.roots.clear();
    this.nodes.clear();
    this.dirty.clear();
  }

  private inScope(path: string): boolean {
    for (const root of this.roots.keys()) {
      if (!isUnder(path, root)) continue;
      // ZooKeeper's own /zookeeper subtree is only watched when asked for by name.
      if (isSystemPath(path) && !isSystemPath(root)) continue;
      return true;
    }
    return false;
  }

  private track(path: string): Promise<void> {
    const e: Entry = {
      path,
      exists: false,
      czxid: 0,
      mzxid: 0,
      value: null,
      children: new Set(),
      ready: DONE,
      dataAgain: false,
      childAgain: false,
    };
    this.nodes.set(path, e);
    e.ready = Promise.all([this.readData(e), this.readChildren(e)]).then(() => undefined);
    return e.ready;
  }

  private live(e: Entry, client: ZkClient): boolean {
    return this.host.session() === client && this.nodes.get(e.path) === e;
  }

  private markDirty(e: Entry): void {
    if (this.nodes.get(e.path) === e) this.dirty.add(e.path);
  }

  /** Reads the node's data with a watch and applies it. Never rejects. */
  private readData(e: Entry): Promise<void> {
    const client = this.host.session();
    if (!client) {
      this.markDirty(e);
      return DONE;
    }
    if (e.dataInFlight && e.dataClient === client) {
      e.dataAgain = true;
      return e.dataInFlight;
    }
    e.dataClient = client;
    e.dataAgain = false;
    const inFlight = new Promise<void>((resolve) =>
      client.getCb(e.path, true, (err, res) => {
        if (e.dataClient === client) {
          e.dataClient = undefined;
          e.dataInFlight = undefined;
        }
        if (!this.live(e, client)) return resolve();
        if (err) {
          this.markDirty(e);
          return resolve();
        }
        this.applyData(e, res);
        if (res === null && this.roots.has(e.path)) return resolve(this.watchCreation(e, client));
        if (e.dataAgain) return resolve(this.readData(e));
        resolve();
      }),
    );
    e.dataInFlight = inFlight;
    return inFlight;
  }

  /** A missing subscription root: an exists watch tells when it appears. */
  private watchCreation(e: Entry, client: ZkClient): Promise<void> {
    return new Promise((resolve) =>
      client.existsCb(e.path, true, (err, stat) => {
        if (!this.live(e, client)) return resolve();
        if (err) {
          this.markDirty(e);
          return resolve();
        }
        // Created between the two reads: read it properly now.
        if (stat) return resolve(Promise.all([this.readData(e), this.readChildren(e)]).then(() => undefined));
        resolve();
      }),
    );
  }

  private readChildren(e: Entry): Promise<void> {
    const client = this.host.session();
    if (!client) {
      this.markDirty(e);
      return DONE;
    }
    if (e.childInFlight && e.childClient === client) {
      e.childAgain = true;
      return e.childInFlight;
    }
    e.childClient = client;
    e.childAgain = false;
    const inFlight = new Promise<void>((resolve) =>
      client.childrenCb(e.path, true, (err, names) => {
        if (e.childClient === client) {
          e.childClient = undefined;
          e.childInFlight = undefined;
        }
        if (!this.live(e, client)) return resolve();
        if (err) {
          this.markDirty(e);
          return resolve();
        }
        // null: the node is gone; its data read (the watch fired for both) handles that.
        const discovered = names ? this.applyChildren(e, names) : DONE;
        const again = e.childAgain ? this.readChildren(e) : DONE;
        resolve(Promise.all([discovered, again]).then(() => undefined));
      }),
    );
    e.childInFlight = inFlight;
    return inFlight;
  }

  private applyChildren(e: Entry, names: string[]): Promise<void> {
    const current = new Set<string>();
    const scans: Promise<void>[] = [];
    for (const name of names) {
      const path = joinPath(e.path, name);
      if (!this.inScope(path)) continue;
      current.add(name);
      if (!this.nodes.has(path)) scans.push(this.track(path));
    }
    for (const name of e.children) {
      if (current.has(name)) continue;
      // Gone from the listing: its own delete watch reports it; re-read in case that was missed.
      const child = this.nodes.get(joinPath(e.path, name));
      if (child) void this.readData(child);
    }
    e.children = current;
    return Promise.all(scans).then(() => undefined);
  }

  private applyData(e: Entry, res: ZkData | null): void {
    if (res === null) {
      this.gone(e);
      return;
    }
    const { stat } = res;
    if (e.exists && (stat.czxid < e.czxid || (stat.czxid === e.czxid && stat.mzxid <= e.mzxid))) return;
    const before = e.exists ? e.value : null;
    const recreated = e.exists && stat.czxid !== e.czxid;
    const value = e.path === '/' ? null : decodeValue(res.data);
    e.exists = true;
    e.czxid = stat.czxid;
    e.mzxid = stat.mzxid;
    e.value = value;
    if (recreated) {
      // Deleted and created again between two reads: report both halves, in order.
      if (before !== null) this.host.emit({ type: 'REMOVE', key: e.path, value: before });
      if (value !== null) this.host.emit({ type: 'ADD', key: e.path, value });
    } else if (before === null && value !== null) this.host.emit({ type: 'ADD', key: e.path, value });
    else if (before !== null && value !== null) this.host.emit({ type: 'UPDATE', key: e.path, value });
    else if (before !== null && value === null) {
      this.host.emit({ type: 'REMOVE', key: e.path, value: before });
    }
  }

  /** The node does not exist: neither can anything under it (ZooKeeper deletes bottom-up). */
  private gone(e: Entry): void {
    const below = [...this.nodes.values()]
      .filter((d) => d !== e && isUnder(d.path, e.path))
      .sort((a, b) => b.path.length - a.path.length);
    for (const d of below) {
      this.forget(d);
      // A subscription root under it needs its exists watch; the read that finds it missing sets one.
      if (this.nodes.get(d.path) === d) void this.readData(d);
    }
    // The caller sets e's exists watch if e is a root.
    this.forget(e);
  }

  private forget(e: Entry): void {
    if (e.exists && e.value !== null) this.host.emit({ type: 'REMOVE', key: e.path, value: e.value });
    e.exists = false;
    e.czxid = 0;
    e.mzxid = 0;
    e.value = null;
    e.children = new Set();
    // A subscription root stays, waiting to be created again; anything else is found again
    // through its parent's child watch.
    if (!this.roots.has(e.path)) this.nodes.delete(e.path);
  }
}
