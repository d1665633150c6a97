import type { TaskSpec } from '@porpoise/rpc';
import { TASK_DEFAULT_PATH, WITHHELD_ENV_PATTERN, WITHHELD_ENV_VARIABLES } from '../worker.constants';

/** Who runs the task and where: the user part of its environment. */
export interface TaskEnvIdentity {
  /** The task user's name (USER, LOGNAME). */
  readonly user: string;
  /** The user's home directory; undefined when it has none (then HOME is the working directory). */
  readonly home: string | undefined;
  /** The task's own working directory. */
  readonly cwd: string;
}

/**
 * The environment of a task (DESIGN.md sections 5 and 11): the worker's environment, as the
 * contract says, WITHOUT any variable Porpoise reads (WITHHELD_ENV_VARIABLES: the cluster secret,
 * the database URL, the data-source key, the admin token, the registry's credentials and the
 * paths of their files), so a task never sees a node secret; an operator keeps out of a worker's
 * environment whatever else tasks must not see. Then:
 * - PATH as the worker has it (TASK_DEFAULT_PATH when it has none);
 * - HOME, USER, LOGNAME and PWD of the task user and its working directory;
 * - PORPOISE_WORKFLOW_INSTANCE_ID, PORPOISE_TASK_INSTANCE_ID, PORPOISE_TASK_NAME, PORPOISE_ATTEMPT
 *   and PORPOISE_PARAM_<NAME> for each run param: the name as given, and also upper-cased when
 *   that differs (`{ "day": "x" }` gives PORPOISE_PARAM_day and PORPOISE_PARAM_DAY), since the
 *   contract writes the suffix in upper case and shell users expect both spellings to work. An
 *   explicit upper-case param wins over the upper-cased spelling of another one.
 */
export function buildTaskEnv(
  inherited: Readonly<Record<string, string | undefined>>,
  who: TaskEnvIdentity,
  spec: Pick<TaskSpec, 'workflowInstanceId' | 'taskInstanceId' | 'taskName' | 'attempt' | 'params'>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(inherited)) {
    if (value === undefined || WITHHELD_ENV_VARIABLES.has(name) || WITHHELD_ENV_PATTERN.test(name)) continue;
    env[name] = value;
  }
  env.PATH ??= TASK_DEFAULT_PATH;
  env.HOME = who.home ?? who.cwd;
  env.USER = who.user;
  env.LOGNAME = who.user;
  env.PWD = who.cwd;
  env.PORPOISE_WORKFLOW_INSTANCE_ID = String(spec.workflowInstanceId);
  env.PORPOISE_TASK_INSTANCE_ID = String(spec.taskInstanceId);
  env.PORPOISE_TASK_NAME = spec.taskName;
  env.PORPOISE_ATTEMPT = String(spec.attempt);
  const params = Object.entries(spec.params);
  for (const [name, value] of params) env[`PORPOISE_PARAM_${name.toUpperCase()}`] = value;
  for (const [name, value] of params) env[`PORPOISE_PARAM_${name}`] = value;
  return env;
}
