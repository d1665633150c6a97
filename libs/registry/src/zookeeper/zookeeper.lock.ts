import type { RegistryLock } from '../registry.interface';
import type { ZkClient } from './zookeeper.client';

/** Lock nodes are `lock-<token>-<10-digit sequence>`; the token finds our own after a lost reply. */
const LOCK_NODE = /^lock-([0-9a-f]{32})-(\d{10})$/;

export function lockNodePrefix(token: string): string {
  return `lock-${token}-`;
}

export function isLockNode(name: string): boolean {
  return LOCK_NODE.test(name);
}

export function lockNodeToken(name: string): string | undefined {
  return LOCK_NODE.exec(name)?.[1];
}

/** Waiting order: by the sequence ZooKeeper appended, never by the random token. */
export function byLockSequence(a: string, b: string): number {
  const sa = a.slice(-10);
  const sb = b.slice(-10);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** A held lock: the ephemeral-sequential node that is first in line, owned by one session. */
export class ZkHeldLock implements RegistryLock {
  private readonly controller = new AbortController();
  private releasing: Promise<void> | undefined;
  released = false;

  constructor(
    readonly path: string,
    /** Full path of our lock node. */
    readonly node: string,
    /** The session that owns the node; the lock dies with it. */
    readonly client: ZkClient,
    private readonly doRelease: (lock: ZkHeldLock) => Promise<void>,
  ) {}

  get lost(): AbortSignal {
    return this.controller.signal;
  }

  /** The lock is gone without release(): tell the holder to stop at once. */
  markLost(reason: Error): void {
    if (!this.released && !this.controller.signal.aborted) this.controller.abort(reason);
  }

  release(): Promise<void> {
    this.releasing ??= this.doRelease(this);
    return this.releasing;
  }
}
