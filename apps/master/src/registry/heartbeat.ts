import { HostLoadSampler, type Clock, type NodeHeartbeat } from '@porpoise/common';

// The node-key and heartbeat parser is shared with the API server (libs/common).
export { parseHeartbeat, parseNodeKey, type ParsedNodeKey } from '@porpoise/common';

/**
 * This master's heartbeat: its address, start time and the host's load from the sampler workers
 * use too (HostLoadSampler, libs/common: cpuUsage is this process's share of all cores).
 */
export class MasterHeartbeat {
  private readonly sampler: HostLoadSampler;
  private readonly startTime: number;

  constructor(
    private readonly host: string,
    private readonly port: number,
    clock: Clock,
  ) {
    this.sampler = new HostLoadSampler(clock);
    this.startTime = clock.now();
  }

  sample(serving: boolean): NodeHeartbeat {
    const load = this.sampler.sample();
    return {
      host: this.host,
      port: this.port,
      startTime: this.startTime,
      heartbeatTime: load.heartbeatTime,
      cpuUsage: load.cpuUsage,
      memoryUsage: load.memoryUsage,
      loadAverage: load.loadAverage,
      serving,
    };
  }
}
