import { Inject, Injectable, Logger } from '@nestjs/common';
import { CLOCK, METRICS_REGISTRY, PORPOISE_CONFIG, type Clock, type MasterConfig } from '@porpoise/common';
import { CommandRepository } from '@porpoise/dao';
import { Gauge, type Registry } from 'prom-client';
import { WorkflowEngineService } from '../engine/workflow-engine.service';

/** The backlog is counted at most this often (scrapes in between reuse the last count). */
export const BACKLOG_MAX_AGE_MS = 5_000;
/** A count that takes longer is given up for this scrape (the gauge is left out). */
const BACKLOG_TIMEOUT_MS = 2_000;

/**
 * The master's gauges, read at scrape time: porpoise_instances_driven (in memory) against
 * porpoise_master_max_running_instances (the cap), and
 * porpoise_command_backlog (one count of the command table, at most every 5 s, whatever the
 * scrape rate; every master reports the same cluster-wide number).
 */
@Injectable()
export class MasterGauges {
  private readonly logger = new Logger('MasterMetrics');
  private backlog: { at: number; value: number } | undefined;
  private counting: Promise<number> | undefined;
  private failing = false;

  constructor(
    @Inject(METRICS_REGISTRY) registry: Registry,
    @Inject(WorkflowEngineService) engine: WorkflowEngineService,
    @Inject(CommandRepository) private readonly commands: CommandRepository,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(PORPOISE_CONFIG) config: MasterConfig,
  ) {
    new Gauge({
      name: 'porpoise_instances_driven',
      help: 'Workflow instances this master drives right now',
      registers: [registry],
      collect() {
        this.set(engine.ownedInstanceIds.length);
      },
    });
    // Beside the driven count: how close this master is to taking no new runs.
    new Gauge({
      name: 'porpoise_master_max_running_instances',
      help: 'MASTER_MAX_RUNNING_INSTANCES: at this many driven instances the master takes no new run',
      registers: [registry],
      collect() {
        this.set(config.maxRunningInstances);
      },
    });
    const readBacklog = () => this.readBacklog();
    new Gauge({
      name: 'porpoise_command_backlog',
      help: 'Commands written and not yet taken by any master (cluster-wide; counted at most every 5 s)',
      registers: [registry],
      async collect() {
        const n = await readBacklog();
        // Unknown (database away): leave the gauge out rather than report a stale or false 0.
        if (n === undefined) this.reset();
        else this.set(n);
      },
    });
  }

  private async readBacklog(): Promise<number | undefined> {
    const now = this.clock.now();
    if (this.backlog && now - this.backlog.at < BACKLOG_MAX_AGE_MS) return this.backlog.value;
    // Concurrent scrapes share one count.
    this.counting ??= this.commands.backlog().finally(() => (this.counting = undefined));
    const timeout = this.clock.sleep(BACKLOG_TIMEOUT_MS).then(() => undefined);
    try {
      const value = await Promise.race([this.counting, timeout]);
      if (value === undefined) throw new Error(`no answer within ${BACKLOG_TIMEOUT_MS} ms`);
      this.backlog = { at: this.clock.now(), value };
      if (this.failing) this.logger.log('counting the command backlog works again');
      this.failing = false;
      return value;
    } catch (err) {
      if (!this.failing) this.logger.warn(`command backlog not counted: ${(err as Error).message}`);
      this.failing = true;
      return undefined;
    }
  }
}
