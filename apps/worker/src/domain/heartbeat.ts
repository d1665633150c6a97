import type { NodeHeartbeat } from '@porpoise/common';

/** What the host looks like right now (sampled by the registration service). */
export interface HostSample {
  nowMs: number;
  /** This process's CPU time (user + system, µs) since it started, and the wall time (µs) of the sample. */
  cpuMicros: number;
  wallMicros: number;
  cpuCount: number;
  freeMemoryBytes: number;
  totalMemoryBytes: number;
  loadAverage1m: number;
}

export interface WorkerFacts {
  host: string;
  port: number;
  group: string;
  startTime: number;
  /** AdmissionService.registration: Dispatches name it, so one addressed to an earlier one is refused. */
  registration: number;
  runningTasks: number;
  capacity: number;
  serving: boolean;
}

const round = (n: number) => Math.round(n * 10_000) / 10_000;
const clamp01 = (n: number) => (Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0);

/**
 * The JSON kept in /nodes/worker/{group}/{host}:{port}. cpuUsage is this process's share of all
 * cores since the previous sample, memoryUsage the used share of the host's memory (both 0..1),
 * loadAverage the host's 1-minute load.
 */
export function buildHeartbeat(facts: WorkerFacts, sample: HostSample, previous?: HostSample): NodeHeartbeat {
  const wall = previous ? sample.wallMicros - previous.wallMicros : 0;
  const cpu = previous ? sample.cpuMicros - previous.cpuMicros : 0;
  const cpuUsage = wall > 0 ? clamp01(cpu / (wall * Math.max(1, sample.cpuCount))) : 0;
  const memoryUsage =
    sample.totalMemoryBytes > 0 ? clamp01(1 - sample.freeMemoryBytes / sample.totalMemoryBytes) : 0;
  return {
    host: facts.host,
    port: facts.port,
    startTime: facts.startTime,
    heartbeatTime: sample.nowMs,
    cpuUsage: round(cpuUsage),
    memoryUsage: round(memoryUsage),
    loadAverage: round(Number.isFinite(sample.loadAverage1m) ? sample.loadAverage1m : 0),
    group: facts.group,
    registration: facts.registration,
    runningTasks: facts.runningTasks,
    capacity: facts.capacity,
    serving: facts.serving,
  };
}
