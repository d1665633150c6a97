import { cpus, freemem, loadavg, totalmem } from 'node:os';
import type { Clock } from '../time/clock';

/** What the host looks like at one moment (read by readHostSample). */
export interface HostSample {
  /** Clock time of the sample, ms since the epoch (the heartbeat's heartbeatTime). */
  readonly nowMs: number;
  /** This process's CPU time since it started (user + system), µs. */
  readonly cpuMicros: number;
  /** A monotonic wall time of the sample, µs. */
  readonly wallMicros: number;
  readonly cpuCount: number;
  readonly freeMemoryBytes: number;
  readonly totalMemoryBytes: number;
  readonly loadAverage1m: number;
}

/** The load fields of a NodeHeartbeat (DESIGN.md section 6), the same for masters and workers. */
export interface HostLoad {
  /** This process's share of ALL the host's cores since the previous sample, 0..1. */
  readonly cpuUsage: number;
  /** The used share of the host's memory, 0..1. */
  readonly memoryUsage: number;
  /** The host's 1-minute load average. */
  readonly loadAverage: number;
}

const round = (n: number) => Math.round(n * 10_000) / 10_000;
const clamp01 = (n: number) => (Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0);

/**
 * The load between two samples. cpuUsage is the CPU time used divided by the wall time times
 * the number of cores: a process keeping one core of four busy is 0.25, so the figure compares
 * across hosts and never exceeds 1. 0 without a previous sample (nothing to compare with).
 * Pure.
 */
export function hostLoad(sample: HostSample, previous?: HostSample): HostLoad {
  const wall = previous ? sample.wallMicros - previous.wallMicros : 0;
  const cpu = previous ? sample.cpuMicros - previous.cpuMicros : 0;
  const cpuUsage = wall > 0 ? clamp01(cpu / (wall * Math.max(1, sample.cpuCount))) : 0;
  const memoryUsage =
    sample.totalMemoryBytes > 0 ? clamp01(1 - sample.freeMemoryBytes / sample.totalMemoryBytes) : 0;
  return {
    cpuUsage: round(cpuUsage),
    memoryUsage: round(memoryUsage),
    loadAverage: round(
      Number.isFinite(sample.loadAverage1m) && sample.loadAverage1m > 0 ? sample.loadAverage1m : 0,
    ),
  };
}

/** Reads this process and host now (the one impure part). */
export function readHostSample(nowMs: number): HostSample {
  const usage = process.cpuUsage();
  return {
    nowMs,
    cpuMicros: usage.user + usage.system,
    wallMicros: Number(process.hrtime.bigint() / 1000n),
    cpuCount: cpus().length,
    freeMemoryBytes: freemem(),
    totalMemoryBytes: totalmem(),
    loadAverage1m: loadavg()[0] ?? 0,
  };
}

/**
 * The one heartbeat sampler of masters and workers: each sample() reads the host and returns
 * its load since the previous sample (the first one since construction), stamped with the
 * clock's time.
 */
export class HostLoadSampler {
  private previous: HostSample;

  constructor(
    private readonly clock: Clock,
    private readonly read: (nowMs: number) => HostSample = readHostSample,
  ) {
    this.previous = read(clock.now());
  }

  sample(): HostLoad & { readonly heartbeatTime: number } {
    const next = this.read(this.clock.now());
    const load = hostLoad(next, this.previous);
    this.previous = next;
    return { ...load, heartbeatTime: next.nowMs };
  }
}
