import { join, resolve } from 'node:path';
import type { WorkerConfig } from '@porpoise/common';

/** host:port this worker advertises (registry key, events' worker_address, task_instance.host). */
export function workerAddress(config: Pick<WorkerConfig, 'nodeHost' | 'workerPort'>): string {
  return `${config.nodeHost}:${config.workerPort}`;
}

/**
 * DATA_DIR/worker.alive: the worker's proof of life for the task watchdogs, rewritten every touch
 * interval with the CLOCK_BOOTTIME time (centiseconds, from /proc/uptime) of the touch.
 */
export function aliveFilePath(config: Pick<WorkerConfig, 'dataDir'>): string {
  return join(resolve(config.dataDir), 'worker.alive');
}
