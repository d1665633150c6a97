import type { ShellTaskDefinition, TaskDefinition } from '@porpoise/common';

type Common = Omit<ShellTaskDefinition, 'type' | 'command' | 'name'>;

/** A SHELL task definition with test defaults. */
export function task(
  name: string,
  extra: Partial<Omit<ShellTaskDefinition, 'type'>> = {},
): ShellTaskDefinition {
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

/** Any task type with the test defaults of the common fields. */
export function typedTask<T extends TaskDefinition>(definition: Omit<T, keyof Common> & Partial<Common>): T {
  return { retries: 0, retryIntervalMs: 1000, timeoutMs: 60_000, workerGroup: 'default', ...definition } as T;
}
