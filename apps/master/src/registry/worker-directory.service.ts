import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { CLOCK, type Clock, REGISTRY_PATHS, systemClock } from '@porpoise/common';
import { REGISTRY, type Registry } from '@porpoise/registry';
import type { WorkerAddressee } from '@porpoise/rpc';
import { MASTER_OPTIONS, type MasterOptions } from '../master.constants';
import { WorkerSelector, type WorkerCandidate } from '../dispatch/worker-selector';
import { NodeDirectory, type LiveNode } from './node-directory';

export interface WorkerListener {
  /** A worker of group became live or refreshed its heartbeat (capacity may have freed up). */
  available(group: string): void;
  /**
   * A worker process, or one registration of it, is gone: its key disappeared (session expired,
   * or it stopped), a new process on the same address replaced it, or the same process registered
   * anew (its heartbeat's `registration` went up: its session was lost, or it stalled past its
   * liveness deadline, and it killed its tasks). Its tasks are lost. startTimeMs and registration
   * name what is gone (undefined when its entry was never valid, or it publishes no registration):
   * tasks another process, or a later registration, took are not.
   */
  removed(
    address: string,
    group: string | undefined,
    startTimeMs: number | undefined,
    registration?: number,
  ): void;
}

/** What this master did with a worker, or learnt of it, since the worker's last heartbeat. */
interface SinceHeartbeat {
  /** Dispatches it accepted. */
  assigned: number;
  /** Picks whose Dispatch has not been answered yet (or was refused: kept until the heartbeat). */
  reserved: number;
  /** Its tasks whose TaskFinished reached this master. */
  finished: number;
}

/** After a Dispatch a worker did not answer, others are chosen first for this long, doubling. */
export const UNREACHABLE_FIRST_MS = 2_000;
export const UNREACHABLE_MAX_MS = 30_000;

/**
 * The live workers (/nodes/worker/{group}/{host}:{port}) and the choice of one for a task.
 * A worker with serving=false (draining, or its session suspended) is never chosen, nor one this
 * master believes full: its heartbeat's runningTasks, minus the tasks that finished here since,
 * plus what this master sent or is sending it since, reaches its capacity. Such a task waits
 * (parked) instead of costing a refused Dispatch; a TaskFinished from the worker frees a slot at
 * once and wakes the runs waiting for its group, without waiting for the next heartbeat. The
 * worker's own refusal (over capacity) stays the rule; this only avoids asking in vain.
 */
@Injectable()
export class WorkerDirectoryService {
  private readonly logger = new Logger('WorkerDirectory');
  private readonly directory: NodeDirectory;
  private readonly selector: WorkerSelector;
  private readonly since = new Map<string, SinceHeartbeat>();
  private readonly listeners = new Set<WorkerListener>();
  /**
   * Workers whose last Dispatch from this master got no answer (a timeout, no connection): a
   * worker cut off from this master but still registered would otherwise be picked for task
   * after task, each waiting out the Dispatch deadline. Others are chosen first until `until`;
   * an answer, or the worker registering anew, clears it.
   */
  private readonly unreachable = new Map<string, { until: number; backoffMs: number }>();

  constructor(
    @Inject(REGISTRY) registry: Registry,
    @Inject(MASTER_OPTIONS) options: MasterOptions,
    @Optional() @Inject(CLOCK) private readonly clock: Clock = systemClock,
  ) {
    this.directory = new NodeDirectory(registry, REGISTRY_PATHS.workers, this.logger);
    this.selector = new WorkerSelector(options.workerSelection);
    this.directory.onChange((change) => {
      const { node } = change;
      if (change.type === 'REMOVE') {
        this.since.delete(node.address);
        this.unreachable.delete(node.address);
        if (change.reason === 'invalid') return; // not chosen any more; its tasks are not lost
        this.logger.log(`worker ${node.address} (group ${node.group}) is gone`);
        const startTime = 'heartbeat' in node ? node.heartbeat.startTime : undefined;
        const registration = 'heartbeat' in node ? node.heartbeat.registration : undefined;
        for (const l of [...this.listeners]) l.removed(node.address, node.group, startTime, registration);
        return;
      }
      if (change.type === 'UPDATE') {
        const before = change.previous.heartbeat;
        const now = change.node.heartbeat;
        if (before.startTime !== now.startTime) {
          // A new process took the key over before the old one's removal was seen (ZooKeeper
          // coalesces the delete and re-create): the old process is gone all the same.
          this.logger.log(`worker ${node.address} (group ${node.group}) restarted`);
          for (const l of [...this.listeners]) {
            l.removed(node.address, change.previous.group, before.startTime, before.registration);
          }
        } else if (
          before.registration !== undefined &&
          now.registration !== undefined &&
          now.registration > before.registration
        ) {
          // The same process registered anew: what the earlier registration had, it killed.
          this.logger.log(
            `worker ${node.address} (group ${node.group}) registered anew (registration ${now.registration})`,
          );
          for (const l of [...this.listeners]) {
            l.removed(node.address, change.previous.group, before.startTime, before.registration);
          }
        }
      }
      // A heartbeat's runningTasks now includes what we sent, and excludes what ended, before it.
      this.since.delete(node.address);
      if (change.type === 'ADD') this.logger.log(`worker ${node.address} (group ${node.group}) is live`);
      if ((node as LiveNode).heartbeat.serving) {
        for (const l of [...this.listeners]) l.available(node.group ?? '');
      }
    });
  }

  async start(): Promise<void> {
    await this.directory.start();
  }

  resync(): Promise<void> {
    return this.directory.resync();
  }

  stop(): void {
    this.directory.stop();
    this.listeners.clear();
  }

  addListener(listener: WorkerListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The live, valid worker entries (serving or not). */
  entries(): LiveNode[] {
    return this.directory.list();
  }

  /** Is address a live worker (serving or not)? */
  isLive(address: string): boolean {
    return this.directory.list().some((n) => n.address === address);
  }

  /**
   * The registration a Dispatch to address is meant for, as this master sees it now (looked up
   * at send time): the worker refuses one addressed to an earlier registration or another
   * process. Undefined when the worker is not live. 0 for a worker that publishes none.
   */
  addressee(address: string): WorkerAddressee | undefined {
    const node = this.directory.list().find((n) => n.address === address);
    if (node === undefined) return undefined;
    return { startTimeMs: node.heartbeat.startTime, registration: node.heartbeat.registration ?? 0 };
  }

  /** Live, serving workers of a group, with the load this master believes they have. */
  candidates(group: string): WorkerCandidate[] {
    return this.directory
      .list()
      .filter((n) => n.group === group && n.heartbeat.serving)
      .map((n) => {
        const since = this.since.get(n.address) ?? { assigned: 0, reserved: 0, finished: 0 };
        // A task that finished may have been sent since the heartbeat as well as counted in it:
        // it comes off the whole.
        const sent = since.assigned + since.reserved;
        const running = n.heartbeat.runningTasks ?? 0;
        const finishedOfSent = Math.min(since.finished, sent);
        return {
          address: n.address,
          runningTasks: Math.max(0, running - (since.finished - finishedOfSent)),
          capacity: n.heartbeat.capacity ?? 1,
          loadAverage: n.heartbeat.loadAverage,
          recentlyAssigned: sent - finishedOfSent,
        };
      });
  }

  /**
   * Chooses a worker of group not in exclude and not believed full, or undefined when none is
   * left; the choice is counted against it (reserved) until the answer or its next heartbeat.
   */
  pick(group: string, exclude: ReadonlySet<string>): string | undefined {
    const candidates = this.candidates(group).filter(
      (c) => !exclude.has(c.address) && c.runningTasks + c.recentlyAssigned < c.capacity,
    );
    // One that answered its last Dispatch first; only when none did, one that did not (it may be
    // back, and a task must not wait for a worker that may never answer another).
    const now = this.clock.now();
    const answering = candidates.filter((c) => (this.unreachable.get(c.address)?.until ?? 0) <= now);
    const chosen = this.selector.select(group, answering.length > 0 ? answering : candidates)?.address;
    if (chosen !== undefined) this.sinceOf(chosen).reserved++;
    return chosen;
  }

  /**
   * How a Dispatch to the worker went: answered (accepted or refused: it is reachable) or not
   * (no answer within the deadline, no connection): then others are chosen first for a while.
   */
  noteReachability(address: string, answered: boolean): void {
    if (answered) {
      if (this.unreachable.delete(address)) this.logger.log(`worker ${address} answers Dispatches again`);
      return;
    }
    const before = this.unreachable.get(address);
    const backoffMs =
      before === undefined ? UNREACHABLE_FIRST_MS : Math.min(before.backoffMs * 2, UNREACHABLE_MAX_MS);
    this.unreachable.set(address, { until: this.clock.now() + backoffMs, backoffMs });
    this.logger.warn(
      `worker ${address} did not answer a Dispatch: other workers are chosen first for ${backoffMs} ms`,
    );
  }

  /** A dispatch the worker accepted: counted until its next heartbeat reflects it. */
  noteAssigned(address: string): void {
    const since = this.sinceOf(address);
    since.reserved = Math.max(0, since.reserved - 1);
    since.assigned++;
  }

  /**
   * A task of the worker finished (its TaskFinished reached this master): a slot is free until
   * its next heartbeat says otherwise, and the runs waiting for its group may try it now.
   */
  noteFinished(address: string): void {
    const node = this.directory.list().find((n) => n.address === address);
    if (node === undefined) return;
    this.sinceOf(address).finished++;
    if (node.heartbeat.serving) for (const l of [...this.listeners]) l.available(node.group ?? '');
  }

  private sinceOf(address: string): SinceHeartbeat {
    let since = this.since.get(address);
    if (since === undefined) {
      since = { assigned: 0, reserved: 0, finished: 0 };
      this.since.set(address, since);
    }
    return since;
  }
}
