import type { Registry } from '@porpoise/registry';

/**
 * What master failover needs from its surroundings, as small interfaces so the logic can be
 * tested with fakes (the master wires the real registry, repository and session; the clock and
 * the logger are the common Clock and Logger).
 */

/** The registry calls failover makes: REMOVE events of masters, the live list, the lock. */
export type FailoverRegistry = Pick<Registry, 'subscribe' | 'children' | 'acquireLock'>;

/** An unfinished workflow instance and the ownership it was read with. */
export interface OwnedInstance {
  readonly id: number;
  readonly host: string;
  readonly epoch: number;
}

/** The ownership a hand-back compares on (the same shape as the master's InstanceFence). */
export interface HandBackFence {
  readonly instanceId: number;
  readonly host: string;
  readonly epoch: number;
}

/** The database side of failover (InstanceStateRepository implements it). */
export interface FailoverRepository {
  /** Unfinished instances whose host is one of hosts. */
  unfinishedOwnedBy(hosts: readonly string[]): Promise<OwnedInstance[]>;
  /** Unfinished instances with a host that is none of hosts. */
  unfinishedNotOwnedBy(hosts: readonly string[]): Promise<OwnedInstance[]>;
  /**
   * One statement (one transaction): host = NULL, epoch + 1 WHERE id, host and epoch still are
   * the fence's and the instance is unfinished, and, only if that row changed, the instance's
   * RECOVER_TOLERANCE_FAULT_PROCESS command. The new command id, or undefined when the fence no
   * longer held (someone else took or finished the instance first).
   */
  handBack(fence: HandBackFence): Promise<number | undefined>;
}

/** The master's registry session as fencing sees it: only a CONNECTED session may start work. */
export interface FailoverSession {
  canStartWork(): boolean;
}

export interface MasterFailoverOptions {
  /** This master's address, "host:port": its key name under /nodes/master and its instances' host. */
  readonly me: string;
  /** The registry session timeout; the sweep and lock waits are derived from it. */
  readonly sessionTimeoutMs: number;
  /** Periodic sweep interval (each one jittered by ±20 %). Default 2 × sessionTimeoutMs. */
  readonly sweepIntervalMs?: number;
  /**
   * How long a pass waits for /lock/failover. A holder that died keeps it for up to one session
   * timeout; a live one for one pass. Default 2 × sessionTimeoutMs + 5 s.
   */
  readonly lockTimeoutMs?: number;
  /** Source of the sweep jitter (tests make it fixed). */
  readonly random?: () => number;
}

export type FailoverOutcome =
  /** The pass ran to its end (it may have found nothing to do). */
  | 'done'
  /** Another master held the lock for longer than lockTimeoutMs; a later pass looks again. */
  | 'lock-busy'
  /** The lock was lost half-way (our session died): stopped at once, the rest is left as it was. */
  | 'lock-lost'
  /** The registry session is not CONNECTED: failover waits until it is. */
  | 'suspended'
  /** The service is stopping. */
  | 'stopped'
  /** A registry or database call failed; instances not reached are left as they were. */
  | 'error';

/** What one failover pass did (also logged). */
export interface FailoverPassResult {
  readonly trigger: string;
  readonly outcome: FailoverOutcome;
  /** Instances handed back (host NULL, epoch + 1, recovery command), per previous host. */
  readonly handedBack: Readonly<Record<string, number>>;
  /** Candidates whose compare-and-set found them already taken over, handed back or finished. */
  readonly alreadyTaken: number;
  /** Candidates skipped because their host is (again) a live master. */
  readonly skippedLive: number;
  /** Candidates not reached because the pass stopped early (lock lost, stopping, error). */
  readonly notReached: number;
  readonly error?: string;
}

/**
 * Where a completed failover is reported (the master's metrics; optional). seconds: from the dead
 * master's last heartbeat (the value its registry key held; the REMOVE event's arrival when that
 * is unknown) to the moment this master had written the recovery commands of all its instances.
 */
export interface FailoverMetrics {
  failoverCompleted(deadMaster: string, seconds: number): void;
}

/**
 * Injection tokens (the master provides them; the clock is the node's, under the common CLOCK).
 * FAILOVER_LOGGER is optional: without it the service logs through Nest's Logger. FAILOVER_METRICS
 * is optional too.
 */
export const FAILOVER_REGISTRY = Symbol('FAILOVER_REGISTRY');
export const FAILOVER_REPOSITORY = Symbol('FAILOVER_REPOSITORY');
export const FAILOVER_SESSION = Symbol('FAILOVER_SESSION');
export const FAILOVER_OPTIONS = Symbol('FAILOVER_OPTIONS');
export const FAILOVER_LOGGER = Symbol('FAILOVER_LOGGER');
/** Optional FailoverMetrics. */
export const FAILOVER_METRICS = Symbol('FAILOVER_METRICS');
