import type { HostLoad, NodeHeartbeat } from '@porpoise/common';

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

/**
 * The JSON kept in /nodes/worker/{group}/{host}:{port}: the worker's facts and the host's load
 * as the common sampler measured it (HostLoadSampler, libs/common: cpuUsage is this process's
 * share of all cores, the same definition as a master's).
 */
export function buildHeartbeat(
  facts: WorkerFacts,
  load: HostLoad & { heartbeatTime: number },
): NodeHeartbeat {
  return {
    host: facts.host,
    port: facts.port,
    startTime: facts.startTime,
    heartbeatTime: load.heartbeatTime,
    cpuUsage: load.cpuUsage,
    memoryUsage: load.memoryUsage,
    loadAverage: load.loadAverage,
    group: facts.group,
    registration: facts.registration,
    runningTasks: facts.runningTasks,
    capacity: facts.capacity,
    serving: facts.serving,
  };
}
