import { cpuUsage as processCpuUsage } from 'node:process';
import { freemem, loadavg, totalmem } from 'node:os';
import type { NodeHeartbeat } from '@porpoise/common';

// The node-key and heartbeat parser is shared with the API server (libs/common).
export { parseHeartbeat, parseNodeKey, type ParsedNodeKey } from '@porpoise/common';

/**
 * Samples this process for its own heartbeat: cpu is the share of one core used since the
 * previous sample, memory the machine's used fraction, load the 1-minute load average.
 */
export class HeartbeatSampler {
  private lastCpu = processCpuUsage();
  private lastAt = performance.now();
  private readonly startTime = Date.now();

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  sample(serving: boolean): NodeHeartbeat {
    const now = performance.now();
    const cpu = processCpuUsage(this.lastCpu);
    const elapsedMicros = Math.max(1, (now - this.lastAt) * 1000);
    this.lastCpu = processCpuUsage();
    this.lastAt = now;
    return {
      host: this.host,
      port: this.port,
      startTime: this.startTime,
      heartbeatTime: Date.now(),
      cpuUsage: Math.round(((cpu.user + cpu.system) / elapsedMicros) * 1000) / 1000,
      memoryUsage: Math.round((1 - freemem() / totalmem()) * 1000) / 1000,
      loadAverage: loadavg()[0] ?? 0,
      serving,
    };
  }
}
