import type { TaskDefinition } from '@porpoise/common';

/** A SHELL task definition with test defaults. */
export function task(name: string, extra: Partial<TaskDefinition> = {}): TaskDefinition {
  return {
    name,
    type: 'SHELL',
    command: `echo ${name}`,
    retries: 0,
    retryIntervalMs: 1000,
    timeoutMs: 60_000,
    workerGroup: 'default',
    ...extra,
  };
}
