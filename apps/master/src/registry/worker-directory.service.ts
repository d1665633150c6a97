import { Inject, Injectable, Logger } from '@nestjs/common';
import { REGISTRY_PATHS } from '@porpoise/common';
import { REGISTRY, type Registry } from '@porpoise/registry';
import type { WorkerAddressee } from '@porpoise/rpc';
import { MASTER_OPTIONS, type MasterOptions } from '../master.constants';
import { WorkerSelector, type WorkerCandidate } from '../dispatch/worker-selector';
import { NodeDirectory, type LiveNode } from './node-directory';

export interface WorkerListener {
  /** A worker of group became live or refreshed its heartbeat (capacity may have freed up). */
  available(group: string): void;
  /**
   * A worker process is gone: its key disappeared (session expired, or it stopped), or a new
   * process on the same address replaced it. Its tasks are lost. startTimeMs names that process
   * (its heartbeat's startTime; undefined when its entry was never valid): tasks another process
   * on the address took are not.
   */
  removed(address: string, group: string | undefined, startTimeMs: number | undefined): void;
}

/**
 * The live workers (/nodes/worker/{group}/{host}:{port}) and the choice of one for a task.
 * A worker with serving=false (draining, or its session suspended) is never chosen.
 */
@Injectable()
export class WorkerDirectoryService {
  private readonly logger = new Logger('WorkerDirectory');
  private readonly directory: NodeDirectory;
  private readonly selector: WorkerSelector;
  /** Tasks this master sent to a worker since that worker's last heartbeat. */
  private readonly recentlyAssigned = new Map<string, number>();
  private readonly listeners = new Set<WorkerListener>();

  constructor(@Inject(REGISTRY) registry: Registry, @Inject(MASTER_OPTIONS) options: MasterOptions) {
    this.directory = new NodeDirectory(registry, REGISTRY_PATHS.workers, this.logger);
    this.selector = new WorkerSelector(options.workerSelection);
    this.directory.onChange((change) => {
      const { node } = change;
      if (change.type === 'REMOVE') {
        this.recentlyAssigned.delete(node.address);
        if (change.reason === 'invalid') return; // not chosen any more; its tasks are not lost
        this.logger.log(`worker ${node.address} (group ${node.group}) is gone`);
        const startTime = 'heartbeat' in node ? node.heartbeat.startTime : undefined;
        for (const l of [...this.listeners]) l.removed(node.address, node.group, startTime);
        return;
      }
      if (
        change.type === 'UPDATE' &&
        change.previous.heartbeat.startTime !== change.node.heartbeat.startTime
      ) {
        // A new process took the key over before the old one's removal was seen (ZooKeeper
        // coalesces the delete and re-create): the old process is gone all the same.
        this.logger.log(`worker ${node.address} (group ${node.group}) restarted`);
        for (const l of [...this.listeners]) {
          l.removed(node.address, change.previous.group, change.previous.heartbeat.startTime);
        }
      }
      // A heartbeat's runningTasks now includes what we sent before it.
      this.recentlyAssigned.delete(node.address);
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

  /** Live, serving workers of a group. */
  candidates(group: string): WorkerCandidate[] {
    return this.directory
      .list()
      .filter((n) => n.group === group && n.heartbeat.serving)
      .map((n) => ({
        address: n.address,
        runningTasks: n.heartbeat.runningTasks ?? 0,
        capacity: n.heartbeat.capacity ?? 1,
        loadAverage: n.heartbeat.loadAverage,
        recentlyAssigned: this.recentlyAssigned.get(n.address) ?? 0,
      }));
  }

  /** Chooses a worker of group not in exclude, or undefined when none is left. */
  pick(group: string, exclude: ReadonlySet<string>): string | undefined {
    const candidates = this.candidates(group).filter((c) => !exclude.has(c.address));
    return this.selector.select(group, candidates)?.address;
  }

  /** Counts a dispatch the worker accepted until its next heartbeat reflects it. */
  noteAssigned(address: string): void {
    this.recentlyAssigned.set(address, (this.recentlyAssigned.get(address) ?? 0) + 1);
  }
}
