import { Inject, Injectable } from '@nestjs/common';
import { REGISTRY, type Registry } from '@porpoise/registry';
import { DataSource } from 'typeorm';

export interface HealthReport {
  readonly status: 'ok' | 'unavailable';
  /** 'ok', or the name of the error the probe met. */
  readonly database: string;
  /** 'ok', or the name of the error the probe met. */
  readonly registry: string;
}

/** Whether this node can reach Postgres and the registry right now. */
@Injectable()
export class HealthService {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(REGISTRY) private readonly registry: Registry,
  ) {}

  async check(): Promise<HealthReport> {
    const [database, registry] = await Promise.all([
      probe(() => this.dataSource.query('SELECT 1')),
      probe(() => this.registry.exists('/nodes')),
    ]);
    return { status: database === 'ok' && registry === 'ok' ? 'ok' : 'unavailable', database, registry };
  }
}

async function probe(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    return err instanceof Error ? err.name : 'error';
  }
}
