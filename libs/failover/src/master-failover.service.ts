import { Inject, Injectable, Logger as NestLogger, Optional } from '@nestjs/common';
import { CLOCK, REGISTRY_PATHS, type Clock, type Logger, type TimerHandle } from '@porpoise/common';
import { LockTimeoutError, type RegistryLock, type Subscription } from '@porpoise/registry';
import {
  FAILOVER_LOGGER,
  FAILOVER_METRICS,
  FAILOVER_OPTIONS,
  FAILOVER_REGISTRY,
  FAILOVER_REPOSITORY,
  FAILOVER_SESSION,
  type FailoverMetrics,
  type FailoverOutcome,
  type FailoverPassResult,
  type FailoverRegistry,
  type FailoverRepository,
  type FailoverSession,
  type MasterFailoverOptions,
  type OwnedInstance,
} from './failover.types';

/** A failure's message; registry and database calls may reject with anything. */
function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface PassState {
  handedBack: Record<string, number>;
  alreadyTaken: number;
  skippedLive: number;
  notReached: number;
}

/**
 * Master failover (DESIGN.md section 6; DolphinScheduler's design, seeds 001 and 002, without
 * its bugs).
 *
 * A pass takes the registry lock /lock/failover, so the live masters do not all do the same
 * work; the one that gets it (the others find nothing left when their turn comes, or give up
 * after lockTimeoutMs) hands back every unfinished instance whose host is not a live master:
 * for each, ONE statement sets host = NULL, epoch = epoch + 1 compared on the host and epoch it
 * was read with, and inserts its RECOVER_TOLERANCE_FAULT_PROCESS command only if that row
 * changed. A live master's consumer then takes the command by slot and recovers the instance.
 *
 * - Passes run on a REMOVE of /nodes/master/{addr}, at this master's start-up (which also hands
 *   back what an earlier process on this same address left), periodically (every 2 × session
 *   timeout, jittered) and when the registry session is usable again.
 * - Liveness is the registry's list of /nodes/master children, read after the lock is held and
 *   again after the candidates are read from the database: a master registers before it
 *   consumes, so a master whose instances the database shows is in the second listing, and a
 *   live master's instances are never taken (the start-up failover bug of DolphinScheduler).
 *   A dead host that re-appeared (a restart on the same address) is skipped the same way.
 * - Crash-safe: every instance is either untouched (still naming the dead host: the next REMOVE
 *   handler or sweep takes it) or handed back together with its command. Never half-done.
 * - A lost lock (our session died) stops the pass before the next instance: someone else may
 *   hold the lock already. The compare-and-set keeps even concurrent passes correct; the lock
 *   only avoids the duplicate effort.
 * - This master's own instances are never failed over while it runs: on a LOST session the
 *   engine drops them and hands them back itself, with the same compare-and-set, so exactly
 *   one of the two wins and exactly one recovery command exists.
 */
@Injectable()
export class MasterFailoverService {
  private readonly logger: Logger;
  private readonly sweepIntervalMs: number;
  private readonly lockTimeoutMs: number;
  private readonly random: () => number;
  private subscription: Subscription | undefined;
  private sweepTimer: TimerHandle | undefined;
  private started = false;
  private stopped = false;
  /** The pass running now, and whether it holds the lock (stop waits only for that). */
  private running: Promise<FailoverPassResult> | undefined;
  private holdingLock = false;
  /** The next pass, not started yet: later requests join it. */
  private queued: { triggers: string[]; promise: Promise<FailoverPassResult> } | undefined;
  /** Instances an earlier process on this address left (read at start), until handed back. */
  private readonly selfOrphans = new Map<number, OwnedInstance>();
  private totals = { passes: 0, handedBack: 0 };
  /**
   * Masters seen gone (REMOVE) and not yet failed over by a pass that ended 'done': when each went
   * silent (its last heartbeat), for porpoise_failover_duration_seconds.
   */
  private readonly goneSince = new Map<string, number>();

  constructor(
    @Inject(FAILOVER_REGISTRY) private readonly registry: FailoverRegistry,
    @Inject(FAILOVER_REPOSITORY) private readonly repository: FailoverRepository,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(FAILOVER_SESSION) private readonly session: FailoverSession,
    @Inject(FAILOVER_OPTIONS) private readonly options: MasterFailoverOptions,
    @Optional() @Inject(FAILOVER_LOGGER) logger?: Logger,
    @Optional() @Inject(FAILOVER_METRICS) private readonly metrics?: FailoverMetrics,
  ) {
    this.logger = logger ?? new NestLogger('MasterFailover');
    this.sweepIntervalMs = options.sweepIntervalMs ?? 2 * options.sessionTimeoutMs;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 2 * options.sessionTimeoutMs + 5000;
    this.random = options.random ?? Math.random;
  }

  /** Passes run so far and instances handed back in total (diagnostics, tests). */
  get stats(): { passes: number; handedBack: number; selfOrphansLeft: number } {
    return { ...this.totals, selfOrphansLeft: this.selfOrphans.size };
  }

  /**
   * Subscribes to /nodes/master, reads the instances an earlier process on this address left
   * (BEFORE this master consumes anything: after that, an instance naming this address may be
   * one it drives), then starts the start-up pass in the background and the periodic sweep.
   * Resolves with the start-up pass's promise, so a caller may wait for it (tests do; the
   * master does not, so a busy lock never delays its start).
   */
  async start(): Promise<{ startup: Promise<FailoverPassResult> }> {
    if (this.started) throw new Error('MasterFailoverService started twice');
    this.started = true;
    this.subscription = await this.registry.subscribe(REGISTRY_PATHS.masters, (event) => {
      if (event.type !== 'REMOVE') return;
      const address = this.masterAddress(event.key);
      // Our own key: the engine hands our instances back itself (LOST) or already did (stop).
      if (address === undefined || address === this.options.me) return;
      this.goneSince.set(address, this.lastHeartbeat(event.value) ?? this.clock.now());
      void this.request(`master ${address} gone`);
    });
    for (const instance of await this.repository.unfinishedOwnedBy([this.options.me])) {
      this.selfOrphans.set(instance.id, instance);
    }
    if (this.selfOrphans.size > 0) {
      this.logger.log(
        `${this.selfOrphans.size} unfinished instance(s) still name ${this.options.me} from an earlier process on this address`,
      );
    }
    const startup = this.request('start-up');
    this.scheduleSweep();
    return { startup };
  }

  /** Resolves once no pass runs or waits to run (tests, diagnostics). */
  async idle(): Promise<void> {
    for (;;) {
      const next = this.queued?.promise ?? this.running;
      if (!next) return;
      await next.catch(() => undefined);
    }
  }

  /** Asks for a pass soon (for example when the registry session is usable again). */
  wake(trigger: string): Promise<FailoverPassResult> {
    return this.request(trigger);
  }

  /**
   * Stops: no more passes; a pass holding the lock finishes the statement in flight, releases
   * the lock and ends (its remaining instances stay untouched). A pass still waiting for the
   * lock is not waited for: it releases the lock at once if it gets it.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.clock.clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    if (this.holdingLock) await this.running?.catch(() => undefined);
  }

  private masterAddress(key: string): string | undefined {
    const prefix = `${REGISTRY_PATHS.masters}/`;
    if (!key.startsWith(prefix)) return undefined;
    const name = key.slice(prefix.length);
    return name.length > 0 && !name.includes('/') ? name : undefined;
  }

  private scheduleSweep(): void {
    if (this.stopped) return;
    // ±20 % so that masters started together do not sweep in lock-step.
    const delay = Math.max(1, Math.round(this.sweepIntervalMs * (0.8 + 0.4 * this.random())));
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweepTimer = undefined;
      void this.request('sweep').finally(() => this.scheduleSweep());
    }, delay);
  }

  /** One pass at a time; requests made while one runs join the single pass queued after it. */
  private request(trigger: string): Promise<FailoverPassResult> {
    if (this.queued) {
      if (!this.queued.triggers.includes(trigger)) this.queued.triggers.push(trigger);
      return this.queued.promise;
    }
    const triggers = [trigger];
    const before = this.running ?? Promise.resolve();
    const promise: Promise<FailoverPassResult> = before
      .catch(() => undefined)
      .then(() => {
        if (this.queued?.promise === promise) this.queued = undefined;
        this.running = promise;
        return this.pass(triggers.join(', '));
      })
      .finally(() => {
        if (this.running === promise) this.running = undefined;
      });
    this.queued = { triggers, promise };
    return promise;
  }

  private async pass(trigger: string): Promise<FailoverPassResult> {
    const state: PassState = { handedBack: {}, alreadyTaken: 0, skippedLive: 0, notReached: 0 };
    const end = (outcome: FailoverOutcome, error?: string): FailoverPassResult => ({
      trigger,
      outcome,
      ...state,
      error,
    });
    if (this.stopped) return end('stopped');
    // Fencing: a suspended session cannot trust its view of the live masters.
    if (!this.session.canStartWork()) return end('suspended');
    this.totals.passes++;
    // The masters known gone before this pass: a pass that ends 'done' failed them over.
    const gone = new Map(this.goneSince);

    let lock: RegistryLock;
    try {
      lock = await this.registry.acquireLock(REGISTRY_PATHS.failoverLock, { timeoutMs: this.lockTimeoutMs });
    } catch (err) {
      if (this.stopped) return end('stopped');
      if (err instanceof LockTimeoutError) {
        this.logger.log(
          `failover (${trigger}): ${err.message}; another master is at it, a later pass looks again`,
        );
        return end('lock-busy', err.message);
      }
      this.logger.warn(
        `failover (${trigger}): could not take ${REGISTRY_PATHS.failoverLock}: ${messageOf(err)}`,
      );
      return end('error', messageOf(err));
    }
    this.holdingLock = true;
    let result: FailoverPassResult;
    try {
      result = await this.underLock(trigger, lock, state, end);
    } finally {
      this.holdingLock = false;
      await lock.release().catch((err: unknown) => {
        this.logger.warn(`failover: releasing ${REGISTRY_PATHS.failoverLock} failed: ${messageOf(err)}`);
      });
    }
    this.report(result);
    if (result.outcome === 'done') this.observe(gone, result);
    return result;
  }

  /**
   * After a pass that reached every candidate: a gone master whose instances it handed back has
   * been failed over now (one observation, from its last heartbeat); one with none left (another
   * master did it, or it drove nothing) is forgotten without one.
   */
  private observe(gone: ReadonlyMap<string, number>, result: FailoverPassResult): void {
    const now = this.clock.now();
    for (const [address, since] of gone) {
      if (this.goneSince.get(address) === since) this.goneSince.delete(address);
      if ((result.handedBack[address] ?? 0) > 0) {
        this.metrics?.failoverCompleted(address, (now - since) / 1000);
      }
    }
  }

  /**
   * The heartbeatTime a REMOVE event's last value carries (the dead master's clock), if it is a
   * plausible one: a time in the past, not before the epoch. Registry data is input: anything
   * else counts as unknown.
   */
  private lastHeartbeat(value: string | null): number | undefined {
    if (value === null) return undefined;
    try {
      const parsed = JSON.parse(value) as { heartbeatTime?: unknown } | null;
      const at = parsed?.heartbeatTime;
      return typeof at === 'number' && Number.isFinite(at) && at > 0 && at <= this.clock.now()
        ? at
        : undefined;
    } catch {
      return undefined;
    }
  }

  private async underLock(
    trigger: string,
    lock: RegistryLock,
    state: PassState,
    end: (outcome: FailoverOutcome, error?: string) => FailoverPassResult,
  ): Promise<FailoverPassResult> {
    const me = this.options.me;
    if (this.stopped) return end('stopped');
    let work: OwnedInstance[];
    let liveAfter: Set<string>;
    try {
      const liveBefore = await this.registry.children(REGISTRY_PATHS.masters);
      const orphans = await this.repository.unfinishedNotOwnedBy([...liveBefore, me]);
      work = [...this.selfOrphans.values(), ...orphans];
      if (work.length === 0) return end('done');
      // Read again AFTER the candidates: a master that consumed an instance had registered
      // before, so it is in this listing even if it was not in the first one.
      liveAfter = new Set(await this.registry.children(REGISTRY_PATHS.masters));
    } catch (err) {
      return end('error', messageOf(err));
    }

    for (const [i, instance] of work.entries()) {
      if (lock.lost.aborted || this.stopped) {
        state.notReached = work.length - i;
        return end(lock.lost.aborted ? 'lock-lost' : 'stopped');
      }
      const own = instance.host === me && this.selfOrphans.get(instance.id) === instance;
      if (!own && (instance.host === me || liveAfter.has(instance.host))) {
        state.skippedLive++;
        continue;
      }
      let command: number | undefined;
      try {
        command = await this.repository.handBack({
          instanceId: instance.id,
          host: instance.host,
          epoch: instance.epoch,
        });
      } catch (err) {
        // Untouched (one statement): a later pass takes it and the rest.
        state.notReached = work.length - i;
        return end('error', messageOf(err));
      }
      if (own) this.selfOrphans.delete(instance.id);
      if (command === undefined) state.alreadyTaken++;
      else {
        state.handedBack[instance.host] = (state.handedBack[instance.host] ?? 0) + 1;
        this.totals.handedBack++;
      }
    }
    return end('done');
  }

  private report(r: FailoverPassResult): void {
    const total = Object.values(r.handedBack).reduce((a, b) => a + b, 0);
    const touched = total + r.alreadyTaken + r.skippedLive + r.notReached;
    // The common, quiet sweep says nothing; a start-up pass always reports.
    if (touched === 0 && r.outcome === 'done' && !r.trigger.includes('start-up')) return;
    const perHost = Object.entries(r.handedBack)
      .map(([host, n]) => `${n} of ${host}`)
      .join(', ');
    const message =
      `failover (${r.trigger}): handed ${total} instance(s) back for recovery` +
      (perHost ? ` (${perHost})` : '') +
      `; ${r.alreadyTaken} already taken over or finished; ${r.skippedLive} skipped (host is live)` +
      (r.notReached > 0 ? `; ${r.notReached} not reached` : '') +
      (r.outcome === 'done' ? '' : `; pass ended: ${r.outcome}${r.error ? ` (${r.error})` : ''}`);
    if (r.outcome === 'done') this.logger.log(message);
    else this.logger.warn(message);
  }
}
