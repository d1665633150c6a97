import { Inject, Injectable, Logger } from '@nestjs/common';
import { REGISTRY_PATHS } from '@porpoise/common';
import { REGISTRY, type Registry } from '@porpoise/registry';
import { MASTER_IDENTITY, type MasterIdentity } from '../master.constants';
import { NodeDirectory, type LiveNode, type NodeChange } from './node-directory';
import { computeSlot, sortAddresses, type CommandSlot } from './slot';

/**
 * The live masters (/nodes/master), sorted by address; this master's command slot is its index
 * in that list and the count its length. Listeners hear about list changes (ADD / REMOVE, not
 * every heartbeat) so the consumer can re-slot at once, and a failover service can watch for a
 * master's REMOVE through onMasterChange.
 */
@Injectable()
export class MasterMembershipService {
  private readonly logger = new Logger('MasterMembership');
  private readonly directory: NodeDirectory;
  private masters: string[] = [];
  private readonly listeners = new Set<(masters: readonly string[]) => void>();

  constructor(
    @Inject(REGISTRY) registry: Registry,
    @Inject(MASTER_IDENTITY) private readonly identity: MasterIdentity,
  ) {
    this.directory = new NodeDirectory(registry, REGISTRY_PATHS.masters, this.logger);
    this.directory.onChange((c) => this.onNodeChange(c));
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

  /** Sorted addresses of the live masters. */
  get liveMasters(): readonly string[] {
    return this.masters;
  }

  /** The live, valid master entries (this master's own too). */
  entries(): LiveNode[] {
    return this.directory.list();
  }

  /** This master's slot, or undefined while it is not in the live list. */
  slot(): CommandSlot | undefined {
    return computeSlot(this.masters, this.identity.address);
  }

  onMembershipChange(listener: (masters: readonly string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every ADD / UPDATE / REMOVE of a valid master entry (the hook for master failover). */
  onMasterChange(listener: (change: NodeChange) => void): () => void {
    return this.directory.onChange(listener);
  }

  private onNodeChange(change: NodeChange): void {
    if (change.type === 'UPDATE') return;
    const next = sortAddresses(this.directory.list().map((n) => n.address));
    if (next.join(',') === this.masters.join(',')) return;
    this.masters = next;
    this.logger.log(
      `live masters: ${next.join(', ') || '(none)'}; my slot: ${JSON.stringify(this.slot() ?? null)}`,
    );
    for (const listener of [...this.listeners]) listener(next);
  }
}
