import { Inject, Injectable, Logger } from '@nestjs/common';
import { REGISTRY_PATHS } from '@porpoise/common';
import { REGISTRY, type Registry } from '@porpoise/registry';
import { ServiceUnavailableError } from '../common/api-errors';
import {
  parseMasterHeartbeat,
  parseWorkerHeartbeat,
  type MasterNode,
  type WorkerNode,
} from './node-heartbeat';

/** Remembered bad entries, so a broken key is logged once, not on every request. */
const MAX_REMEMBERED_PROBLEMS = 1000;

/** The live masters and workers, as the registry knows them right now. */
@Injectable()
export class ClusterService {
  private readonly logger = new Logger('ClusterService');
  private readonly reported = new Map<string, string>();

  constructor(@Inject(REGISTRY) private readonly registry: Registry) {}

  async nodes(): Promise<{ masters: MasterNode[]; workers: WorkerNode[] }> {
    try {
      const [masters, workers] = await Promise.all([this.masters(), this.workers()]);
      return { masters, workers };
    } catch (err) {
      throw new ServiceUnavailableError(
        `registry unavailable: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  private async masters(): Promise<MasterNode[]> {
    const names = await this.registry.children(REGISTRY_PATHS.masters);
    const nodes = await Promise.all(
      names.map(async (address) => {
        const key = `${REGISTRY_PATHS.masters}/${address}`;
        const raw = await this.registry.get(key);
        // Gone between children() and get(): the node just left, nothing to report.
        if (raw === null) return null;
        return this.keep(key, parseMasterHeartbeat(address, raw));
      }),
    );
    return nodes.filter((n): n is MasterNode => n !== null);
  }

  private async workers(): Promise<WorkerNode[]> {
    const groups = await this.registry.children(REGISTRY_PATHS.workers);
    const perGroup = await Promise.all(
      groups.map(async (group) => {
        const names = await this.registry.children(`${REGISTRY_PATHS.workers}/${group}`);
        return Promise.all(
          names.map(async (address) => {
            const key = `${REGISTRY_PATHS.workers}/${group}/${address}`;
            const raw = await this.registry.get(key);
            if (raw === null) return null;
            return this.keep(key, parseWorkerHeartbeat(address, group, raw));
          }),
        );
      }),
    );
    return perGroup.flat().filter((n): n is WorkerNode => n !== null);
  }

  private keep<T>(key: string, parsed: { node?: T; problem?: string }): T | null {
    if (parsed.problem === undefined) {
      this.reported.delete(key);
      return parsed.node ?? null;
    }
    if (this.reported.get(key) !== parsed.problem) {
      if (this.reported.size >= MAX_REMEMBERED_PROBLEMS) this.reported.clear();
      this.reported.set(key, parsed.problem);
      this.logger.warn(`skipping registry entry ${key}: ${parsed.problem}`);
    }
    return null;
  }
}
