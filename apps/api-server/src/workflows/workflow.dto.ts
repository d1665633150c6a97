import { ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import {
  CONCURRENCY_POLICIES,
  DATASOURCE_NAME_PATTERN,
  DEFINITION_LIMITS,
  DEPENDENT_DEFAULT_CHECK_INTERVAL_MS,
  DEPENDENT_INTERVALS,
  DEPENDENT_MAX_OFFSET,
  DEPENDENT_MIN_CHECK_INTERVAL_MS,
  FAILURE_STRATEGIES,
  HTTP_METHODS,
  PRIORITIES,
  MAX_RUNS_LIMITS,
  MAX_SWITCH_EXPRESSION_LENGTH,
  TASK_TYPES,
  type TaskType,
} from '@porpoise/common';

/*
 * OpenAPI documentation of the workflow routes. Validation is parseWorkflowDefinition (libs/common
 * definition/) and parseRunBody (strict, with messages naming the problem); these classes only
 * describe. A task is one of the per-type schemas below, told apart by `type` (oneOf with a
 * discriminator).
 */

const L = DEFINITION_LIMITS;
const PARAM_NAME = '^[A-Za-z_][A-Za-z0-9_]*$';

/** The fields every task has. Not a schema of its own: each type's schema repeats them. */
abstract class TaskCommonDto {
  @ApiProperty({
    type: String,
    maxLength: L.taskNameLength,
    example: 'extract',
    description: 'Unique in the workflow; edges and branch targets name tasks by it.',
  })
  name!: string;
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 0,
    maximum: L.retries,
    default: 0,
    description: 'How many times a task that failed by itself runs again.',
  })
  retries?: number;
  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: L.maxMs, default: 1000 })
  retryIntervalMs?: number;
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 0,
    maximum: L.maxMs,
    default: 0,
    description: '0 means no timeout.',
  })
  timeoutMs?: number;
  @ApiPropertyOptional({
    type: String,
    pattern: '^[A-Za-z0-9._-]{1,64}$',
    default: 'default',
    description: 'The worker group that runs it (worker types).',
  })
  workerGroup?: string;
  @ApiPropertyOptional({
    type: String,
    enum: PRIORITIES,
    description: 'Among tasks of the run ready at once, higher starts first. Absent means MEDIUM.',
  })
  priority?: string;
  @ApiPropertyOptional({
    type: String,
    pattern: '^[A-Za-z0-9._-]{1,64}$',
    description:
      'Worker types only: a task group (POST /task-groups). Across the cluster at most its capacity of ' +
      'tasks of the group run at once, first come first served; a waiting task shows waitingFor task-group.',
  })
  taskGroup?: string;
}

const typeProperty = (type: TaskType, description: string) =>
  ApiProperty({ type: String, enum: [type], example: type, description });

export class ShellTaskDto extends TaskCommonDto {
  @typeProperty('SHELL', 'Runs a command on a worker.') type!: 'SHELL';
  @ApiProperty({
    type: String,
    maxLength: L.commandLength,
    example: 'echo ${day}',
    description:
      'Run with /bin/sh -c. `${name}` is a param (an unknown one is left for the shell), `$[yyyyMMdd-1]` a ' +
      'date; every param is also $PORPOISE_PARAM_<NAME>. An output line `${setValue(name=value)}` sets an output.',
  })
  command!: string;
}

export class EmptyTaskDto extends TaskCommonDto {
  @typeProperty('EMPTY', 'Dispatched to a worker, which reports SUCCESS at once.') type!: 'EMPTY';
}

export class HttpRequestDto {
  @ApiProperty({ type: String, enum: HTTP_METHODS, example: 'GET' }) method!: string;
  @ApiProperty({
    type: String,
    maxLength: L.httpUrlLength,
    example: 'https://example.org/api/items?day=${day}',
    description:
      'An absolute http:// or https:// URL (or one starting with a `${param}`); params substituted.',
  })
  url!: string;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string', maxLength: L.httpHeaderValueLength },
    maxProperties: L.httpHeaders,
    example: { Authorization: 'Bearer ${token}' },
    description: 'Header names are literal; values have params substituted.',
  })
  headers?: Record<string, string>;
  @ApiPropertyOptional({
    type: String,
    maxLength: L.httpBodyLength,
    description: 'Params substituted. Not allowed with GET or HEAD.',
  })
  body?: string;
  @ApiPropertyOptional({
    type: 'array',
    items: { type: 'integer', minimum: 100, maximum: 599 },
    minItems: 1,
    maxItems: L.expectStatus,
    uniqueItems: true,
    example: [200, 204],
    description: 'The statuses that mean success; without it, any 2xx.',
  })
  expectStatus?: number[];
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 0,
    maximum: L.maxMs,
    description: '0 means no own limit.',
  })
  timeoutMs?: number;
}

export class HttpTaskDto extends TaskCommonDto {
  @typeProperty('HTTP', 'Sends a request from a worker; output `status`.') type!: 'HTTP';
  @ApiProperty({ type: HttpRequestDto }) http!: HttpRequestDto;
}

export class SqlDto {
  @ApiProperty({
    type: String,
    maxLength: L.datasourceNameLength,
    pattern: DATASOURCE_NAME_PATTERN.source,
    example: 'warehouse',
    description: 'A registered data source (POST /datasources).',
  })
  datasource!: string;
  @ApiProperty({
    type: String,
    maxLength: L.statementLength,
    example: 'select count(*) as n from orders where day = ${day}',
    description:
      'Each `${name}` becomes a bind parameter, never text. The first row’s columns become outputs.',
  })
  statement!: string;
}

export class SqlTaskDto extends TaskCommonDto {
  @typeProperty('SQL', 'Runs a statement against a data source, from a worker.') type!: 'SQL';
  @ApiProperty({ type: SqlDto }) sql!: SqlDto;
}

export class SubWorkflowDto {
  @ApiProperty({
    type: String,
    example: 'wf_3k9q2m7x1c5v8b0n',
    description: 'An existing workflow other than this one.',
  })
  workflowCode!: string;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    maxProperties: L.params,
    example: { day: '${day}' },
    description: 'The child run’s params; values have params substituted.',
  })
  params?: Record<string, string>;
}

export class SubWorkflowTaskDto extends TaskCommonDto {
  @typeProperty('SUB_WORKFLOW', 'Starts one child instance (on the master) and ends with its state.')
  type!: 'SUB_WORKFLOW';
  @ApiProperty({ type: SubWorkflowDto }) subWorkflow!: SubWorkflowDto;
}

export class ConditionsDto {
  @ApiPropertyOptional({
    type: [String],
    default: [],
    description: 'Direct downstream tasks that run when every upstream task succeeded (else SKIPPED).',
  })
  success?: string[];
  @ApiPropertyOptional({
    type: [String],
    default: [],
    description: 'Direct downstream tasks that run when an upstream task did not succeed (else SKIPPED).',
  })
  failure?: string[];
}

export class ConditionsTaskDto extends TaskCommonDto {
  @typeProperty('CONDITIONS', 'Waits for its upstream tasks and picks a branch (on the master).')
  type!: 'CONDITIONS';
  @ApiProperty({ type: ConditionsDto }) conditions!: ConditionsDto;
}

export class SwitchCaseDto {
  @ApiProperty({
    type: String,
    maxLength: MAX_SWITCH_EXPRESSION_LENGTH,
    example: "${region} == 'eu' && ${count} > 10",
    description: 'Over params: == != < <= > >= && || ! ( ), string and number literals.',
  })
  when!: string;
  @ApiProperty({ type: String, description: 'A direct downstream task.' }) then!: string;
}

export class SwitchDto {
  @ApiProperty({ type: [SwitchCaseDto], minItems: 1, maxItems: L.switchCases }) cases!: SwitchCaseDto[];
  @ApiPropertyOptional({ type: String, description: 'A direct downstream task taken when no case holds.' })
  default?: string;
}

export class SwitchTaskDto extends TaskCommonDto {
  @typeProperty('SWITCH', 'The first case that holds picks its task; the other branches are SKIPPED.')
  type!: 'SWITCH';
  @ApiProperty({ type: SwitchDto }) switch!: SwitchDto;
}

export class DependentDto {
  @ApiProperty({
    type: String,
    example: 'wf_3k9q2m7x1c5v8b0n',
    description:
      'An existing workflow whose runs are waited for (this workflow itself only with a negative offset).',
  })
  workflowCode!: string;
  @ApiPropertyOptional({
    type: String,
    maxLength: L.taskNameLength,
    example: 'load',
    description:
      'Wait for this task of it (its latest attempt SUCCESS) instead of a whole run ending SUCCESS.',
  })
  taskName?: string;
  @ApiProperty({
    type: String,
    enum: DEPENDENT_INTERVALS,
    example: 'day',
    description:
      'The window: the hour, day, week (Monday to Monday) or month of this run’s schedule time, in the run’s time zone.',
  })
  interval!: string;
  @ApiPropertyOptional({
    type: 'integer',
    minimum: -DEPENDENT_MAX_OFFSET,
    maximum: DEPENDENT_MAX_OFFSET,
    default: 0,
    example: -1,
    description: 'The window shifted by this many intervals (-1: the one before).',
  })
  offset?: number;
  @ApiPropertyOptional({
    type: 'integer',
    minimum: DEPENDENT_MIN_CHECK_INTERVAL_MS,
    maximum: L.maxMs,
    default: DEPENDENT_DEFAULT_CHECK_INTERVAL_MS,
    description:
      'How often it is checked again while waiting; a run of that workflow ending wakes it at once anyway.',
  })
  checkIntervalMs?: number;
}

export class DependentTaskDto extends TaskCommonDto {
  @typeProperty(
    'DEPENDENT',
    'Waits (on the master) for a SUCCESS run of another workflow, or of one of its tasks, scheduled in a window ' +
      'relative to this run’s schedule time; fails when the latest such run ended FAILURE or STOP, or at timeoutMs.',
  )
  type!: 'DEPENDENT';
  @ApiProperty({ type: DependentDto }) dependent!: DependentDto;
}

/** One schema per task type, in TASK_TYPES order; the controller registers them (ApiExtraModels). */
export const TASK_DTOS = {
  SHELL: ShellTaskDto,
  EMPTY: EmptyTaskDto,
  HTTP: HttpTaskDto,
  SQL: SqlTaskDto,
  SUB_WORKFLOW: SubWorkflowTaskDto,
  CONDITIONS: ConditionsTaskDto,
  SWITCH: SwitchTaskDto,
  DEPENDENT: DependentTaskDto,
} as const satisfies Record<TaskType, new () => TaskCommonDto>;

const TASK_SCHEMA = {
  oneOf: TASK_TYPES.map((t) => ({ $ref: getSchemaPath(TASK_DTOS[t]) })),
  discriminator: {
    propertyName: 'type',
    mapping: Object.fromEntries(TASK_TYPES.map((t) => [t, getSchemaPath(TASK_DTOS[t])])),
  },
};

export type TaskDto = InstanceType<(typeof TASK_DTOS)[TaskType]>;

export class EdgeDto {
  @ApiProperty({ type: String, example: 'extract', description: 'Upstream task name.' }) from!: string;
  @ApiProperty({ type: String, example: 'load', description: 'Downstream task name.' }) to!: string;
}

const paramsProperty = {
  type: 'object',
  additionalProperties: { type: 'string' },
  maxProperties: L.params,
  example: { day: '2024-01-01' },
  description: `Declared params and their defaults (names match ${PARAM_NAME}); run params override them.`,
} as const;
const failureStrategyProperty = {
  type: String,
  enum: FAILURE_STRATEGIES,
  default: 'END',
  description:
    'END: after a failed task nothing new starts. CONTINUE: tasks not downstream of a failure still run. ' +
    'Either way the instance ends FAILURE.',
} as const;
const workflowPriorityProperty = {
  type: String,
  enum: PRIORITIES,
  description:
    "Orders the commands a master takes (priority, then id, within the master's share) and the runs it " +
    'gives free workers to first. Absent means MEDIUM.',
} as const;
const workflowTimeoutProperty = {
  type: 'integer',
  minimum: 0,
  maximum: L.maxMs,
  default: 0,
  description: 'The instance is stopped and ends FAILURE after this long; 0 means no limit.',
} as const;

export class ConcurrencyDto {
  @ApiPropertyOptional({
    type: String,
    enum: CONCURRENCY_POLICIES,
    default: 'PARALLEL',
    description:
      'PARALLEL: every run starts at once (at most maxRuns when given). SERIAL_WAIT: a run triggered while ' +
      'another runs waits in state SERIAL_WAIT and starts when it ends, in trigger order. SERIAL_DISCARD: a ' +
      'run triggered while another runs ends at once as STOP with a message naming the running one, and runs ' +
      'no task. Decided in the database, across all masters and failovers.',
  })
  policy?: string;
  @ApiPropertyOptional({
    type: 'integer',
    minimum: MAX_RUNS_LIMITS.min,
    maximum: MAX_RUNS_LIMITS.max,
    description:
      'Only with PARALLEL: at most this many runs at once; the others wait in SERIAL_WAIT, oldest first. ' +
      'Absent: no limit. A run holds its slot while SUBMITTED_SUCCESS, RUNNING_EXECUTION or READY_*; ' +
      'a PAUSE run does not (its resume waits again).',
  })
  maxRuns?: number;
}

const tenantProperty = {
  type: String,
  maxLength: 32,
  pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$',
  description:
    "The OS user this workflow's SHELL tasks run as (DolphinScheduler's tenant); one of the API " +
    "server's and the workers' TASK_TENANTS. Absent: the worker's TASK_USER.",
};

export class WorkflowBodyDto {
  @ApiProperty({ type: String, maxLength: L.nameLength, example: 'etl' }) name!: string;
  @ApiPropertyOptional({ type: String, maxLength: L.descriptionLength, default: '' }) description?: string;
  @ApiPropertyOptional({ ...paramsProperty, default: {} }) params?: Record<string, string>;
  @ApiPropertyOptional(failureStrategyProperty) failureStrategy?: string;
  @ApiPropertyOptional(workflowTimeoutProperty) timeoutMs?: number;
  @ApiPropertyOptional(workflowPriorityProperty) priority?: string;
  @ApiPropertyOptional({ type: ConcurrencyDto, default: { policy: 'PARALLEL' } })
  concurrency?: ConcurrencyDto;
  @ApiPropertyOptional(tenantProperty) tenant?: string;
  @ApiProperty({ type: 'array', items: TASK_SCHEMA, minItems: 1, maxItems: L.tasks }) tasks!: TaskDto[];
  @ApiPropertyOptional({
    type: [EdgeDto],
    default: [],
    maxItems: L.edges,
    description: 'Must form a DAG over the task names.',
  })
  edges?: EdgeDto[];
}

export class WorkflowSummaryDto {
  @ApiProperty({ type: String, example: 'wf_3k9q2m7x1c5v8b0n' }) code!: string;
  @ApiProperty({ type: 'integer', example: 1, description: 'Current version.' }) version!: number;
  @ApiProperty({ type: String }) name!: string;
  @ApiProperty({ type: String }) description!: string;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt!: string;
}

export class WorkflowDto extends WorkflowSummaryDto {
  @ApiProperty(paramsProperty) params!: Record<string, string>;
  @ApiProperty(failureStrategyProperty) failureStrategy!: string;
  @ApiProperty(workflowTimeoutProperty) timeoutMs!: number;
  @ApiPropertyOptional(workflowPriorityProperty) priority?: string;
  @ApiProperty({ type: ConcurrencyDto }) concurrency!: ConcurrencyDto;
  @ApiPropertyOptional(tenantProperty) tenant?: string;
  @ApiProperty({ type: 'array', items: TASK_SCHEMA, description: 'With defaults filled in.' })
  tasks!: TaskDto[];
  @ApiProperty({ type: [EdgeDto] }) edges!: EdgeDto[];
}

export class WorkflowLastRunDto {
  @ApiProperty({ type: 'integer', example: 42 }) id!: number;
  @ApiProperty({ type: String, example: 'SUCCESS' }) state!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) startTime!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) endTime!: string | null;
}

export class WorkflowListItemDto extends WorkflowSummaryDto {
  @ApiProperty({
    type: WorkflowLastRunDto,
    nullable: true,
    description: 'Its newest run (any state); null when it never ran.',
  })
  lastRun!: WorkflowLastRunDto | null;
}

export class WorkflowListDto {
  @ApiProperty({ type: [WorkflowListItemDto] }) items!: WorkflowListItemDto[];
  @ApiProperty({ type: 'integer' }) total!: number;
}

export class RunBodyDto {
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string', maxLength: 65536 },
    example: { day: '2024-01-01' },
    description: `Names match ${PARAM_NAME}; each becomes PORPOISE_PARAM_<NAME> in the task.`,
  })
  params?: Record<string, string>;
}

export class RunAcceptedDto {
  @ApiProperty({
    type: 'integer',
    example: 17,
    description: "The run's command; for a run waiting at its workflow's run gate, the id its command gets.",
  })
  commandId!: number;
  @ApiProperty({ type: 'integer', example: 42 }) workflowInstanceId!: number;
}
