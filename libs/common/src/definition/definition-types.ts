/**
 * The workflow definition model (DESIGN.md sections 4 and 9): what POST/PUT /workflows accept
 * once validated, what a version stores, and what a master runs. One model for the API and the
 * master; parse-definition.ts builds it, workflow-graph.ts indexes its edges.
 */
import type { TaskType } from '../domain/states';
import type { ConcurrencySettings } from './concurrency';

export const FAILURE_STRATEGIES = ['END', 'CONTINUE'] as const;
/**
 * END (default): after a failed task nothing new starts, running tasks finish, the instance ends
 * FAILURE. CONTINUE: every task not downstream of a failure still runs; the instance ends FAILURE.
 */
export type FailureStrategy = (typeof FAILURE_STRATEGIES)[number];

/**
 * A workflow's or task's priority (DESIGN.md section 10), DolphinScheduler's five levels. A
 * workflow's orders the commands a master takes and the runs it unparks first; a task's, the tasks
 * of one run that start first. Absent means MEDIUM.
 */
export const PRIORITIES = ['HIGHEST', 'HIGH', 'MEDIUM', 'LOW', 'LOWEST'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** 0 (HIGHEST) to 4 (LOWEST); absent is MEDIUM (2). What command.priority stores. */
export function priorityRank(priority: Priority | undefined): number {
  return PRIORITIES.indexOf(priority ?? 'MEDIUM');
}

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** The fields every task has, whatever its type (defaults filled in by the parser). */
export interface TaskCommonFields {
  name: string;
  /** How many times a task that failed by itself runs again (so at most retries + 1 runs). */
  retries: number;
  retryIntervalMs: number;
  /** 0 means no timeout. */
  timeoutMs: number;
  workerGroup: string;
  /** Absent means MEDIUM (kept absent so definitions without it read back as written). */
  priority?: Priority;
  /**
   * Worker types only: the task group (POST /task-groups) whose slot each attempt holds while it
   * runs (DESIGN.md section 10). Absent: no group.
   */
  taskGroup?: string;
}

export interface ShellTaskDefinition extends TaskCommonFields {
  type: 'SHELL';
  /** Run with /bin/sh -c on a worker (DESIGN.md section 5); `${name}` substituted, shell mode. */
  command: string;
}

/** Dispatched like any task; the worker reports SUCCESS at once without starting a process. */
export interface EmptyTaskDefinition extends TaskCommonFields {
  type: 'EMPTY';
}

export interface HttpRequestSpec {
  method: HttpMethod;
  /** http:// or https://; `${name}` substituted (strict mode). */
  url: string;
  /** Names are literal HTTP tokens; values are templates (strict mode). */
  headers?: Record<string, string>;
  /** A template (strict mode). */
  body?: string;
  /** The statuses that mean success; absent means any 2xx. */
  expectStatus?: number[];
  /** The request's own time limit; 0 means none (the task's timeoutMs still holds). */
  timeoutMs?: number;
}

export interface HttpTaskDefinition extends TaskCommonFields {
  type: 'HTTP';
  http: HttpRequestSpec;
}

export interface SqlSpec {
  /** The name of a registered data source (POST /datasources). */
  datasource: string;
  /** `${name}` becomes a bind parameter, never text. */
  statement: string;
}

export interface SqlTaskDefinition extends TaskCommonFields {
  type: 'SQL';
  sql: SqlSpec;
}

export interface SubWorkflowSpec {
  /** The workflow whose current version the child instance runs. */
  workflowCode: string;
  /** The child's run params; values are templates (strict mode). */
  params?: Record<string, string>;
}

export interface SubWorkflowTaskDefinition extends TaskCommonFields {
  type: 'SUB_WORKFLOW';
  subWorkflow: SubWorkflowSpec;
}

export interface ConditionsSpec {
  /** Direct downstream tasks that may run when every upstream task succeeded (else SKIPPED). */
  success: string[];
  /** Direct downstream tasks that may run when an upstream task did not succeed (else SKIPPED). */
  failure: string[];
}

export interface ConditionsTaskDefinition extends TaskCommonFields {
  type: 'CONDITIONS';
  conditions: ConditionsSpec;
}

export interface SwitchCase {
  /** An expression over params (switch-expression.ts), checked when the workflow is defined. */
  when: string;
  /** A direct downstream task. */
  then: string;
}

export interface SwitchSpec {
  /** The first case whose expression holds picks its task; the other branches are SKIPPED. */
  cases: SwitchCase[];
  /** A direct downstream task taken when no case holds (without one, every branch is SKIPPED). */
  default?: string;
}

export interface SwitchTaskDefinition extends TaskCommonFields {
  type: 'SWITCH';
  switch: SwitchSpec;
}

/** The intervals a DEPENDENT task's window can be (weeks start on Monday, ISO 8601). */
export const DEPENDENT_INTERVALS = ['hour', 'day', 'week', 'month'] as const;
export type DependentInterval = (typeof DEPENDENT_INTERVALS)[number];

export interface DependentSpec {
  /** The workflow whose runs are waited for (any workflow; itself only with a negative offset). */
  workflowCode: string;
  /** Wait for this task of it (its latest attempt SUCCESS) rather than a whole run. */
  taskName?: string;
  /** The window: the interval holding this run's schedule time... */
  interval: DependentInterval;
  /** ...shifted by this many intervals (-1: the one before). Default 0. */
  offset: number;
  /** How often it is checked again while waiting (besides the wake-up when a run ends). */
  checkIntervalMs: number;
}

/**
 * Runs on the master: succeeds once the other workflow (or that task of it) has a SUCCESS run
 * whose schedule time falls in the window; fails when the latest such run ended FAILURE or STOP,
 * or at the task's timeoutMs.
 */
export interface DependentTaskDefinition extends TaskCommonFields {
  type: 'DEPENDENT';
  dependent: DependentSpec;
}

/** A task of a workflow definition, as stored in workflow_definition_version.tasks. */
export type TaskDefinition =
  | ShellTaskDefinition
  | EmptyTaskDefinition
  | HttpTaskDefinition
  | SqlTaskDefinition
  | SubWorkflowTaskDefinition
  | ConditionsTaskDefinition
  | SwitchTaskDefinition
  | DependentTaskDefinition;

export type TaskDefinitionOf<T extends TaskType> = Extract<TaskDefinition, { type: T }>;
/** Tasks a worker runs (WORKER_TASK_TYPES). */
export type WorkerTaskDefinition =
  ShellTaskDefinition | EmptyTaskDefinition | HttpTaskDefinition | SqlTaskDefinition;
/** Tasks the master runs itself (MASTER_TASK_TYPES). */
export type MasterTaskDefinition =
  SubWorkflowTaskDefinition | ConditionsTaskDefinition | SwitchTaskDefinition | DependentTaskDefinition;

export interface EdgeDefinition {
  /** The upstream task's name. */
  from: string;
  /** The downstream task's name. */
  to: string;
}

/** Workflow-level fields, stored in workflow_definition_version.settings. */
export interface WorkflowSettings {
  /** Declared params and their defaults; run params override them. */
  params: Record<string, string>;
  failureStrategy: FailureStrategy;
  /** The instance is stopped and ends FAILURE after this long; 0 means no limit. */
  timeoutMs: number;
  /** Absent means MEDIUM. */
  priority?: Priority;
  /** How many runs may run at once (README "Run concurrency"); absent means PARALLEL, no limit. */
  concurrency?: ConcurrencySettings;
  /** The OS user its SHELL tasks run as (one of TASK_TENANTS); absent: the worker's TASK_USER. */
  tenant?: string;
}

/** A validated workflow definition with every default filled in: what a version stores. */
export interface WorkflowDefinition extends WorkflowSettings {
  name: string;
  description: string;
  tasks: TaskDefinition[];
  edges: EdgeDefinition[];
}

/** What a definition refers to outside itself; only the database can tell whether they exist. */
export interface DefinitionReferences {
  /** Data sources of SQL tasks, each once, in task order. */
  readonly datasourceNames: readonly string[];
  /** Workflows of SUB_WORKFLOW tasks, each once, in task order. */
  readonly subWorkflowCodes: readonly string[];
  /** Workflows DEPENDENT tasks wait for, each once, in task order. */
  readonly dependentWorkflowCodes: readonly string[];
  /** Task groups of tasks, each once, in task order. */
  readonly taskGroupNames: readonly string[];
}
