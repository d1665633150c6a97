import {
  resolveParams,
  WORKER_TASK_TYPES,
  WorkflowLanguageError,
  type TaskDefinition,
  type WorkerTaskDefinition,
} from '@porpoise/common';
import type { TaskSpec } from '@porpoise/rpc';
import { buildWorkerTaskPayload, isRefusal, type OpenedDatasource } from '../tasks/worker-task-payload';
import type { Outputs } from './domain/run-state';

/** gRPC's default message limit is 4 MiB: a larger spec would fail on the wire, maybe half-sent. */
export const MAX_TASK_SPEC_BYTES = 3.5 * 1024 * 1024;

/** Opens data sources for one dispatch (sealed URLs read and opened; nothing kept afterwards). */
export type DatasourceOpener = (names: readonly string[]) => Promise<ReadonlyMap<string, OpenedDatasource>>;

/** What a run knows that every task's spec needs. */
export interface SpecRun {
  readonly instanceId: number;
  readonly epoch: number;
  readonly masterAddress: string;
  /** The workflow's declared params (defaults) and the run's params. */
  readonly defaults: Readonly<Record<string, string>>;
  readonly runParams: Readonly<Record<string, string>>;
  /** The run's schedule time (a manual run: its start time), epoch ms. */
  readonly scheduleTimeMs: number;
  /** The IANA time zone of the date built-ins. */
  readonly timezone: string;
  /** The workflow's tenant: the OS user its SHELL tasks run as (DolphinScheduler's tenant). */
  readonly tenant?: string;
}

const isWorkerTask = (def: TaskDefinition): def is WorkerTaskDefinition =>
  (WORKER_TASK_TYPES as readonly string[]).includes(def.type);

/**
 * What a worker gets for one attempt, or why the task cannot run (it then fails with that
 * message and nothing is sent): every parameter substituted (DESIGN.md section 9), the effective
 * params (declared defaults < run params < outputs of the upstream tasks, in topological order)
 * in `params`, so the task's environment carries them as PORPOISE_PARAM_<NAME>.
 */
export async function resolveTaskSpec(
  def: TaskDefinition,
  attempt: { readonly id: number; readonly attempt: number },
  run: SpecRun,
  upstreamOutputs: readonly Outputs[],
  openDatasources: DatasourceOpener,
): Promise<TaskSpec | { readonly refused: string }> {
  if (!isWorkerTask(def)) return { refused: `task type ${def.type} does not run on a worker` };
  let params: Record<string, string>;
  try {
    params = resolveParams(run.defaults, run.runParams, upstreamOutputs);
  } catch (err) {
    if (err instanceof WorkflowLanguageError) return { refused: err.message };
    throw err;
  }
  const sources: ReadonlyMap<string, OpenedDatasource> =
    def.type === 'SQL' ? await openDatasources([def.sql.datasource]) : new Map();
  const payload = buildWorkerTaskPayload(
    def,
    {
      params,
      builtins: {
        workflowInstanceId: run.instanceId,
        taskInstanceId: attempt.id,
        taskName: def.name,
        attempt: attempt.attempt,
        scheduleTime: new Date(run.scheduleTimeMs),
        timezone: run.timezone,
      },
    },
    (name) => sources.get(name),
    run.tenant,
  );
  if (isRefusal(payload)) return payload;
  const spec: TaskSpec = {
    taskInstanceId: attempt.id,
    workflowInstanceId: run.instanceId,
    taskName: def.name,
    command: payload.command,
    attempt: attempt.attempt,
    timeoutMs: def.timeoutMs,
    params,
    masterAddress: run.masterAddress,
    epoch: run.epoch,
    taskType: payload.taskType,
    payloadJson: payload.payloadJson,
  };
  const bytes = Buffer.byteLength(JSON.stringify(spec));
  if (bytes > MAX_TASK_SPEC_BYTES) {
    return {
      refused: `the task's payload is ${bytes} bytes serialized, more than the ${MAX_TASK_SPEC_BYTES} bytes (3.5 MiB) a dispatch may carry`,
    };
  }
  return spec;
}
