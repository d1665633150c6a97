import type { TaskSpec } from '@porpoise/rpc';
import type { RunTaskDef } from './domain/run-state';

/** A task definition as the spec needs it (SHELL has a command; other types carry their own object). */
export type SpecTaskDef = RunTaskDef & { readonly command?: unknown; readonly timeoutMs: number };

/**
 * What a worker gets for one attempt: the one place that turns a definition into a TaskSpec.
 * The typed payloads and parameter substitution (tasks/worker-task-payload.ts) plug in here; a
 * refused payload must be found before DISPATCH is written (see the report of issue 9).
 */
export function taskSpec(
  def: SpecTaskDef,
  attempt: { readonly id: number; readonly attempt: number },
  run: {
    readonly instanceId: number;
    readonly epoch: number;
    readonly params: Record<string, string>;
    readonly masterAddress: string;
  },
): TaskSpec {
  return {
    taskInstanceId: attempt.id,
    workflowInstanceId: run.instanceId,
    taskName: def.name,
    command: typeof def.command === 'string' ? def.command : '',
    attempt: attempt.attempt,
    timeoutMs: def.timeoutMs,
    params: run.params,
    masterAddress: run.masterAddress,
    epoch: run.epoch,
    taskType: 'SHELL',
    payloadJson: '{}',
  };
}
