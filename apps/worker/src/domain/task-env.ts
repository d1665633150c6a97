import type { TaskSpec } from '@porpoise/rpc';
import { STRIPPED_ENV_VARIABLES, TASK_ENV_PREFIX } from '../worker.constants';

/**
 * The environment of a task (DESIGN.md section 5): the worker's own environment, plus exactly
 * PORPOISE_WORKFLOW_INSTANCE_ID, PORPOISE_TASK_INSTANCE_ID, PORPOISE_TASK_NAME, PORPOISE_ATTEMPT
 * and PORPOISE_PARAM_<NAME> for each run param: the name as given, and also upper-cased when
 * that differs (`{ "day": "x" }` gives PORPOISE_PARAM_day and PORPOISE_PARAM_DAY), since the
 * contract writes the suffix in upper case and shell users expect both spellings to work.
 * An explicit upper-case param wins over the upper-cased spelling of another one.
 *
 * Removed first:
 * - CLUSTER_SECRET and DATABASE_URL: a task is user code; with the secret it could command every
 *   worker of the cluster, with the URL it could rewrite the metadata.
 * - every inherited PORPOISE_* variable, so that a task sees exactly the variables of its own run
 *   (a worker started from inside a task would otherwise leak that task's params).
 */
export function buildTaskEnv(
  base: Readonly<Record<string, string | undefined>>,
  spec: Pick<TaskSpec, 'workflowInstanceId' | 'taskInstanceId' | 'taskName' | 'attempt' | 'params'>,
): Record<string, string> {
  const stripped = new Set<string>(STRIPPED_ENV_VARIABLES);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined || stripped.has(name) || name.startsWith(TASK_ENV_PREFIX)) continue;
    env[name] = value;
  }
  env.PORPOISE_WORKFLOW_INSTANCE_ID = String(spec.workflowInstanceId);
  env.PORPOISE_TASK_INSTANCE_ID = String(spec.taskInstanceId);
  env.PORPOISE_TASK_NAME = spec.taskName;
  env.PORPOISE_ATTEMPT = String(spec.attempt);
  const params = Object.entries(spec.params);
  for (const [name, value] of params) env[`PORPOISE_PARAM_${name.toUpperCase()}`] = value;
  for (const [name, value] of params) env[`PORPOISE_PARAM_${name}`] = value;
  return env;
}
