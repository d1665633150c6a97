import { join, resolve } from 'node:path';
import type { PorpoiseConfig } from '@porpoise/common';
import { WorkerConfigError } from './worker.errors';

/** host:port this worker advertises (registry key, events' worker_address, task_instance.host). */
export function workerAddress(config: PorpoiseConfig): string {
  return `${config.nodeHost}:${config.workerPort}`;
}

/** A worker runs shell commands: it never serves without the cluster secret. */
export function requireClusterSecret(config: PorpoiseConfig): string {
  if (!config.clusterSecret) {
    throw new WorkerConfigError('the worker needs CLUSTER_SECRET: every gRPC call between nodes carries it');
  }
  return config.clusterSecret;
}

/**
 * DATA_DIR/worker.alive: the worker's proof of life for the task watchdogs, rewritten every touch
 * interval with the CLOCK_BOOTTIME time (centiseconds, from /proc/uptime) of the touch.
 */
export function aliveFilePath(config: PorpoiseConfig): string {
  return join(resolve(config.dataDir), 'worker.alive');
}
