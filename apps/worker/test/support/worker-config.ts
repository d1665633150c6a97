import { loadConfig, type ConfigEnv, type WorkerConfig } from '@porpoise/common';

/** A worker's configuration as loadConfig() builds it, from the given variables (and a test secret). */
export function workerConfig(env: ConfigEnv = {}): WorkerConfig {
  return loadConfig({ CLUSTER_SECRET: 'worker-unit-test-secret', ...env }, 'worker');
}
