/**
 * Validates a workflow definition (DESIGN.md sections 4 and 9) into the model of
 * definition-types.ts, with defaults filled in. Pure: what needs the database (do the data
 * sources and sub-workflows exist?) is returned by definitionReferences() for the caller to check.
 *
 * Strict: an unknown field is an error naming it (a misspelt "retry" must not become a silent
 * default), and so is every malformed `${…}` / `$[…]` / SWITCH expression that would fail
 * whatever the params. Unknown param names are not checked: run params and upstream outputs
 * are only known at run time. The first problem found is thrown as a DefinitionError.
 */
import { MASTER_TASK_TYPES, TASK_TYPES, type TaskType } from '../domain/states';
import {
  PARAM_ENV_PREFIX,
  isParamName,
  templateReferences,
  type TemplateMode,
} from '../workflow/param-template';
import { MAX_SWITCH_EXPRESSION_LENGTH, parseSwitchExpression } from '../workflow/switch-expression';
import { WorkflowLanguageError } from '../workflow/workflow-errors';
import { parseConcurrency } from './concurrency';
import { DefinitionError } from './definition-error';
import {
  DATASOURCE_NAME_PATTERN,
  DEFINITION_LIMITS,
  HTTP_HEADER_NAME_PATTERN,
  TASK_GROUP_NAME_PATTERN,
  WORKER_GROUP_PATTERN,
  WORKFLOW_CODE_PATTERN,
  type DefinitionLimits,
} from './definition-limits';
import {
  DEPENDENT_INTERVALS,
  FAILURE_STRATEGIES,
  HTTP_METHODS,
  PRIORITIES,
  type ConditionsSpec,
  type DependentSpec,
  type DefinitionReferences,
  type EdgeDefinition,
  type HttpRequestSpec,
  type SwitchSpec,
  type TaskCommonFields,
  type TaskDefinition,
  type WorkflowDefinition,
} from './definition-types';
import { buildWorkflowGraph, describeCycle, findCycle } from './workflow-graph';

export interface ParseDefinitionOptions {
  /** Overrides of DEFINITION_LIMITS. */
  readonly limits?: Partial<DefinitionLimits>;
  /**
   * The code of the workflow being updated: a SUB_WORKFLOW task may not name it, nor a DEPENDENT
   * task with an offset >= 0 (it would wait for its own run).
   */
  readonly selfCode?: string;
}

export const WORKFLOW_FIELDS = [
  'name',
  'description',
  'params',
  'failureStrategy',
  'timeoutMs',
  'priority',
  'concurrency',
  'tenant',
  'tasks',
  'edges',
] as const;
/**
 * A workflow's `tenant`: the OS user its SHELL tasks run as (DolphinScheduler's tenant). Its
 * shape only; whether it is allowed is the API server's TASK_TENANTS, and the worker's.
 */
export const TENANT_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
export const TASK_COMMON_FIELDS = [
  'name',
  'type',
  'retries',
  'retryIntervalMs',
  'timeoutMs',
  'workerGroup',
  'priority',
] as const;
/** A field of tasks a worker runs only (DESIGN.md section 10). */
export const WORKER_TASK_FIELDS = ['taskGroup'] as const;
/** The field each type adds to the common ones (DESIGN.md section 9: the object named after the type). */
export const TASK_TYPE_FIELDS: Readonly<Record<TaskType, readonly string[]>> = {
  SHELL: ['command'],
  EMPTY: [],
  HTTP: ['http'],
  SQL: ['sql'],
  SUB_WORKFLOW: ['subWorkflow'],
  CONDITIONS: ['conditions'],
  SWITCH: ['switch'],
  DEPENDENT: ['dependent'],
};
/** Types of DESIGN.md section 9 that a later issue brings: named as such rather than as unknown. */
export const PLANNED_TASK_TYPES = [] as const;
const HTTP_FIELDS = ['method', 'url', 'headers', 'body', 'expectStatus', 'timeoutMs'] as const;
const SQL_FIELDS = ['datasource', 'statement'] as const;
const SUB_WORKFLOW_FIELDS = ['workflowCode', 'params'] as const;
const CONDITIONS_FIELDS = ['success', 'failure'] as const;
const SWITCH_FIELDS = ['cases', 'default'] as const;
const SWITCH_CASE_FIELDS = ['when', 'then'] as const;
const DEPENDENT_FIELDS = ['workflowCode', 'taskName', 'interval', 'offset', 'checkIntervalMs'] as const;
/** A DEPENDENT window is shifted by at most this many intervals either way. */
export const DEPENDENT_MAX_OFFSET = 10_000;
/** A DEPENDENT task is checked again at most this often (and by default every 10 s). */
export const DEPENDENT_MIN_CHECK_INTERVAL_MS = 1000;
export const DEPENDENT_DEFAULT_CHECK_INTERVAL_MS = 10_000;
const EDGE_FIELDS = ['from', 'to'] as const;

/**
 * Validates a POST/PUT /workflows body. Throws DefinitionError naming the first problem: the
 * object and field (`task "load": "http.url" must be …`) and its JSON path (`error.path`).
 */
export function parseWorkflowDefinition(
  body: unknown,
  options: ParseDefinitionOptions = {},
): WorkflowDefinition {
  const limits: DefinitionLimits = { ...DEFINITION_LIMITS, ...options.limits };
  if (!isObject(body)) {
    throw new DefinitionError(`workflow definition must be a JSON object, got ${describeType(body)}`, '');
  }
  const top: Scope = { label: 'workflow', path: '', prefix: '' };
  rejectUnknownFields(body, WORKFLOW_FIELDS, top);
  const name = requiredString(body, 'name', top, { maxLength: limits.nameLength });
  const description = optionalString(
    body,
    'description',
    top,
    { maxLength: limits.descriptionLength, allowEmpty: true },
    '',
  );
  const params = present(body, 'params') ? parseParamMap(body.params, top, 'params', limits, false) : {};
  const failureStrategy = optionalEnum(body, 'failureStrategy', top, FAILURE_STRATEGIES, 'END');
  const timeoutMs = optionalInteger(body, 'timeoutMs', top, 0, limits.maxMs, 0);
  const priority = present(body, 'priority')
    ? checkEnum(body.priority, top, 'priority', PRIORITIES)
    : undefined;
  const concurrency = present(body, 'concurrency') ? parseConcurrency(body.concurrency) : undefined;
  const tenant = present(body, 'tenant')
    ? checkString(body.tenant, top, 'tenant', {
        maxLength: 32,
        pattern: TENANT_PATTERN,
        patternText: 'an OS user name: letters, digits, ".", "_" or "-", not starting with "." or "-"',
      })
    : undefined;

  const rawTasks = requiredArray(body, 'tasks', top);
  if (rawTasks.length === 0) fail(top, 'tasks', '"tasks" must not be empty');
  if (rawTasks.length > limits.tasks) fail(top, 'tasks', `more than ${limits.tasks} tasks`);
  const tasks = rawTasks.map((t, i) => parseTask(t, i, limits));
  const names = new Set<string>();
  tasks.forEach((t, i) => {
    if (names.has(t.name)) {
      throw new DefinitionError(`duplicate task name ${quote(t.name)}`, `tasks[${i}].name`);
    }
    names.add(t.name);
  });

  let edges: EdgeDefinition[] = [];
  if (present(body, 'edges')) {
    const rawEdges = requiredArray(body, 'edges', top);
    if (rawEdges.length > limits.edges) fail(top, 'edges', `more than ${limits.edges} edges`);
    edges = rawEdges.map((e, i) => parseEdge(e, i, names, limits));
  }
  checkEdgePairs(edges);
  const cycle = findCycle([...names], edges);
  if (cycle) throw new DefinitionError(`cycle: ${describeCycle(cycle)}`, 'edges');

  const graph = buildWorkflowGraph(tasks, edges);
  tasks.forEach((task, i) => {
    const scope: Scope = { label: `task ${quote(task.name)}`, path: `tasks[${i}]`, prefix: '' };
    const downstream = graph.downstream.get(task.name) ?? [];
    for (const target of branchTargetFields(task)) {
      const at = { ...scope, path: `${scope.path}.${target.field}` };
      if (!names.has(target.name)) {
        fail(at, undefined, `"${target.field}" names unknown task ${quote(target.name)}`);
      }
      if (!downstream.includes(target.name)) {
        fail(
          at,
          undefined,
          `"${target.field}" ${quote(target.name)} is not a direct downstream task of ${quote(task.name)}` +
            ` (add the edge ${quote(task.name)} -> ${quote(target.name)})`,
        );
      }
    }
    if (
      task.type === 'SUB_WORKFLOW' &&
      options.selfCode !== undefined &&
      task.subWorkflow.workflowCode === options.selfCode
    ) {
      fail(
        nested(scope, 'subWorkflow'),
        'workflowCode',
        `"subWorkflow.workflowCode" ${quote(options.selfCode)} is this workflow: a workflow cannot run itself`,
      );
    }
    if (
      task.type === 'DEPENDENT' &&
      options.selfCode !== undefined &&
      task.dependent.workflowCode === options.selfCode &&
      task.dependent.offset >= 0
    ) {
      fail(
        nested(scope, 'dependent'),
        'workflowCode',
        `"dependent.workflowCode" ${quote(options.selfCode)} is this workflow with "dependent.offset"` +
          ` ${task.dependent.offset}: a run would wait for itself (depend on an earlier interval: a negative offset)`,
      );
    }
  });
  return {
    name,
    description,
    params,
    failureStrategy,
    timeoutMs,
    ...(priority === undefined ? {} : { priority }),
    ...(concurrency === undefined ? {} : { concurrency }),
    ...(tenant === undefined ? {} : { tenant }),
    tasks,
    edges,
  };
}

/** The data sources, sub-workflows and awaited workflows a definition names (each once, in task order). */
export function definitionReferences(definition: {
  readonly tasks: readonly TaskDefinition[];
}): DefinitionReferences {
  const datasourceNames = new Set<string>();
  const subWorkflowCodes = new Set<string>();
  const dependentWorkflowCodes = new Set<string>();
  const taskGroupNames = new Set<string>();
  for (const t of definition.tasks) {
    if (t.taskGroup !== undefined) taskGroupNames.add(t.taskGroup);
    if (t.type === 'SQL') datasourceNames.add(t.sql.datasource);
    if (t.type === 'SUB_WORKFLOW') subWorkflowCodes.add(t.subWorkflow.workflowCode);
    if (t.type === 'DEPENDENT') dependentWorkflowCodes.add(t.dependent.workflowCode);
  }
  return {
    datasourceNames: [...datasourceNames],
    subWorkflowCodes: [...subWorkflowCodes],
    dependentWorkflowCodes: [...dependentWorkflowCodes],
    taskGroupNames: [...taskGroupNames],
  };
}

/**
 * The tasks a CONDITIONS or SWITCH task chooses between (its success and failure lists; its
 * cases' and default's tasks), each once; empty for other types. All are direct downstream tasks.
 */
export function branchTargets(task: TaskDefinition): string[] {
  return [...new Set(branchTargetFields(task).map((t) => t.name))];
}

/** Branch targets with the field naming each, for messages. */
function branchTargetFields(task: TaskDefinition): Array<{ field: string; name: string }> {
  switch (task.type) {
    case 'CONDITIONS':
      return [
        ...task.conditions.success.map((name, i) => ({ field: `conditions.success[${i}]`, name })),
        ...task.conditions.failure.map((name, i) => ({ field: `conditions.failure[${i}]`, name })),
      ];
    case 'SWITCH':
      return [
        ...task.switch.cases.map((c, i) => ({ field: `switch.cases[${i}].then`, name: c.then })),
        ...(task.switch.default === undefined
          ? []
          : [{ field: 'switch.default', name: task.switch.default }]),
      ];
    default:
      return [];
  }
}

// ---- tasks ----

function parseTask(raw: unknown, index: number, limits: DefinitionLimits): TaskDefinition {
  const path = `tasks[${index}]`;
  if (!isObject(raw)) {
    throw new DefinitionError(`task ${index} must be an object, got ${describeType(raw)}`, path);
  }
  const name = requiredString(
    raw,
    'name',
    { label: `task ${index}`, path, prefix: '' },
    { maxLength: limits.taskNameLength, noControl: true },
  );
  // Name the task by its name from here on: that is what the user wrote.
  const scope: Scope = { label: `task ${quote(name)}`, path, prefix: '' };
  const type = requiredString(raw, 'type', scope, { maxLength: 100 });
  if ((PLANNED_TASK_TYPES as readonly string[]).includes(type)) {
    fail(scope, 'type', `task type ${type} is not supported yet (supported: ${TASK_TYPES.join(', ')})`);
  }
  if (!isTaskType(type)) {
    throw new DefinitionError(
      `unknown task type ${quote(type)} for task ${quote(name)} (known: ${TASK_TYPES.join(', ')})`,
      `${path}.type`,
    );
  }
  const onMaster = (MASTER_TASK_TYPES as readonly string[]).includes(type);
  if (onMaster && present(raw, 'taskGroup')) {
    // A master-side task occupies no worker and could hold a slot as long as its child or wait lasts.
    fail(scope, 'taskGroup', `"taskGroup" is only for tasks run by workers, not ${type} (run on the master)`);
  }
  rejectUnknownFields(
    raw,
    [...TASK_COMMON_FIELDS, ...(onMaster ? [] : WORKER_TASK_FIELDS), ...TASK_TYPE_FIELDS[type]],
    scope,
    ` for ${type}`,
  );
  const common: Omit<TaskCommonFields, 'name'> = {
    retries: optionalInteger(raw, 'retries', scope, 0, limits.retries, 0),
    retryIntervalMs: optionalInteger(raw, 'retryIntervalMs', scope, 0, limits.maxMs, 1000),
    // 0 means no timeout.
    timeoutMs: optionalInteger(raw, 'timeoutMs', scope, 0, limits.maxMs, 0),
    workerGroup: optionalString(
      raw,
      'workerGroup',
      scope,
      {
        maxLength: limits.workerGroupLength,
        pattern: WORKER_GROUP_PATTERN,
        patternText: '1 to 64 of A-Z a-z 0-9 . _ -',
      },
      'default',
    ),
    ...(present(raw, 'priority') ? { priority: checkEnum(raw.priority, scope, 'priority', PRIORITIES) } : {}),
    ...parseTaskGroup(raw, scope),
  };
  switch (type) {
    case 'SHELL': {
      const command = requiredString(raw, 'command', scope, { maxLength: limits.commandLength });
      checkTemplate(command, 'shell', scope, 'command');
      return { name, type, command, ...common };
    }
    case 'EMPTY':
      return { name, type, ...common };
    case 'HTTP':
      return { name, type, http: parseHttp(raw, scope, limits), ...common };
    case 'SQL': {
      const sql = requiredObject(raw, 'sql', scope);
      const at = nested(scope, 'sql');
      rejectUnknownFields(sql, SQL_FIELDS, at);
      const datasource = requiredString(sql, 'datasource', at, {
        maxLength: limits.datasourceNameLength,
        pattern: DATASOURCE_NAME_PATTERN,
        patternText: 'a data source name: letters, digits, dots, dashes or underscores',
      });
      const statement = requiredString(sql, 'statement', at, { maxLength: limits.statementLength });
      checkTemplate(statement, 'sql', at, 'statement');
      return { name, type, sql: { datasource, statement }, ...common };
    }
    case 'SUB_WORKFLOW': {
      const sub = requiredObject(raw, 'subWorkflow', scope);
      const at = nested(scope, 'subWorkflow');
      rejectUnknownFields(sub, SUB_WORKFLOW_FIELDS, at);
      const workflowCode = requiredString(sub, 'workflowCode', at, {
        maxLength: limits.workflowCodeLength,
        pattern: WORKFLOW_CODE_PATTERN,
        patternText: 'a workflow code such as wf_3k9q2m7x1c5v8b0n',
      });
      const subWorkflow = present(sub, 'params')
        ? { workflowCode, params: parseParamMap(sub.params, at, 'params', limits, true) }
        : { workflowCode };
      return { name, type, subWorkflow, ...common };
    }
    case 'CONDITIONS':
      return { name, type, conditions: parseConditions(raw, scope, limits), ...common };
    case 'SWITCH':
      return { name, type, switch: parseSwitch(raw, scope, limits), ...common };
    case 'DEPENDENT':
      return { name, type, dependent: parseDependent(raw, scope, limits), ...common };
  }
}

/** A worker task's `taskGroup` (DESIGN.md section 10), when given. */
function parseTaskGroup(raw: Json, scope: Scope): { taskGroup?: string } {
  if (!present(raw, 'taskGroup')) return {};
  const taskGroup = requiredString(raw, 'taskGroup', scope, {
    maxLength: 64,
    pattern: TASK_GROUP_NAME_PATTERN,
    patternText: 'a task group name: 1 to 64 of A-Z a-z 0-9 . _ -',
  });
  return { taskGroup };
}

function isTaskType(type: string): type is TaskType {
  return (TASK_TYPES as readonly string[]).includes(type);
}

function parseHttp(raw: Json, scope: Scope, limits: DefinitionLimits): HttpRequestSpec {
  const http = requiredObject(raw, 'http', scope);
  const at = nested(scope, 'http');
  rejectUnknownFields(http, HTTP_FIELDS, at);
  const method = requiredEnum(http, 'method', at, HTTP_METHODS);
  const url = requiredString(http, 'url', at, { maxLength: limits.httpUrlLength });
  checkHttpUrl(url, at);
  const spec: HttpRequestSpec = { method, url };
  if (present(http, 'headers')) spec.headers = parseHeaders(http.headers, at, limits);
  if (present(http, 'body')) {
    if (method === 'GET' || method === 'HEAD') {
      fail(at, 'body', `"http.body" is not allowed with ${method} (a ${method} request has no body)`);
    }
    const body = checkString(http.body, at, 'body', { maxLength: limits.httpBodyLength, allowEmpty: true });
    checkTemplate(body, 'strict', at, 'body');
    spec.body = body;
  }
  if (present(http, 'expectStatus')) spec.expectStatus = parseExpectStatus(http.expectStatus, at, limits);
  if (present(http, 'timeoutMs')) spec.timeoutMs = optionalInteger(http, 'timeoutMs', at, 0, limits.maxMs, 0);
  return spec;
}

/**
 * An absolute http(s) URL. With `${…}` in it, only what is literal can be checked now: a scheme
 * written before the first reference must be http or https, and a URL must start with either a
 * scheme or a reference (`${baseUrl}/path`); the rest is the worker's check after substitution.
 */
function checkHttpUrl(url: string, at: Scope): void {
  const field = '"http.url"';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f]/.test(url)) {
    fail(at, 'url', `${field} must not contain spaces or control characters`);
  }
  checkTemplate(url, 'strict', at, 'url');
  const firstReference = url.search(/\$[{[]/);
  const literal = firstReference === -1 ? url : url.slice(0, firstReference);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(literal)?.[1]?.toLowerCase();
  const notHttp = () =>
    fail(at, 'url', `${field} must be an absolute http:// or https:// URL, got ${quote(url)}`);
  if (scheme === undefined ? firstReference !== 0 : scheme !== 'http' && scheme !== 'https') notHttp();
  if (firstReference === -1) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return fail(at, 'url', `${field} is not a valid URL: ${quote(url)}`);
    }
    if (parsed.hostname === '') notHttp();
  }
}

function parseHeaders(value: unknown, at: Scope, limits: DefinitionLimits): Record<string, string> {
  if (!isObject(value)) {
    fail(at, 'headers', `"http.headers" must be an object of strings, got ${describeType(value)}`);
  }
  const entries = Object.entries(value);
  if (entries.length > limits.httpHeaders) {
    fail(at, 'headers', `"http.headers" has more than ${limits.httpHeaders} headers`);
  }
  const seen = new Map<string, string>();
  const headersAt = nested(at, 'headers');
  for (const [name, v] of entries) {
    if (name.length > limits.httpHeaderNameLength || !HTTP_HEADER_NAME_PATTERN.test(name)) {
      fail(headersAt, name, `header name ${quote(name)} in "http.headers" is not a valid HTTP header name`);
    }
    const other = seen.get(name.toLowerCase());
    if (other !== undefined) {
      fail(
        headersAt,
        name,
        `headers ${quote(other)} and ${quote(name)} in "http.headers" are the same header`,
      );
    }
    seen.set(name.toLowerCase(), name);
    const value = checkString(v, headersAt, name, {
      maxLength: limits.httpHeaderValueLength,
      allowEmpty: true,
    });
    // CR or LF would let a value start another header.
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(value)) {
      fail(headersAt, name, `header ${quote(name)} in "http.headers" must not contain control characters`);
    }
    checkTemplate(value, 'strict', headersAt, name);
  }
  // fromEntries defines own properties: a header named __proto__ stays a header.
  return Object.fromEntries(entries) as Record<string, string>;
}

function parseExpectStatus(value: unknown, at: Scope, limits: DefinitionLimits): number[] {
  const field = '"http.expectStatus"';
  if (!Array.isArray(value)) {
    fail(at, 'expectStatus', `${field} must be an array of integers, got ${describeType(value)}`);
  }
  if (value.length === 0) {
    fail(at, 'expectStatus', `${field} must not be empty (leave it out to expect any 2xx)`);
  }
  if (value.length > limits.expectStatus) {
    fail(at, 'expectStatus', `${field} has more than ${limits.expectStatus} statuses`);
  }
  const seen = new Set<number>();
  return value.map((s: unknown, i) => {
    const elementPath = { ...at, path: `${at.path}.expectStatus[${i}]` };
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 100 || s > 599) {
      fail(
        elementPath,
        undefined,
        `"http.expectStatus[${i}]" must be an integer from 100 to 599, got ${quote(s)}`,
      );
    }
    if (seen.has(s)) fail(elementPath, undefined, `"http.expectStatus[${i}]" ${s} is listed twice`);
    seen.add(s);
    return s;
  });
}

function parseConditions(raw: Json, scope: Scope, limits: DefinitionLimits): ConditionsSpec {
  const conditions = requiredObject(raw, 'conditions', scope);
  const at = nested(scope, 'conditions');
  rejectUnknownFields(conditions, CONDITIONS_FIELDS, at);
  const listed = new Map<string, string>();
  const list = (key: 'success' | 'failure'): string[] => {
    if (!present(conditions, key)) return [];
    const items = requiredArray(conditions, key, at);
    return items.map((item, i) => {
      const field = `conditions.${key}[${i}]`;
      const name = checkString(item, { ...at, path: `${at.path}.${key}` }, i, {
        maxLength: limits.taskNameLength,
        display: field,
      });
      const before = listed.get(name);
      if (before !== undefined) {
        fail(
          { ...at, path: `${at.path}.${key}[${i}]` },
          undefined,
          `"${field}" ${quote(name)} is already listed in "${before}"`,
        );
      }
      listed.set(name, field);
      return name;
    });
  };
  return { success: list('success'), failure: list('failure') };
}

function parseSwitch(raw: Json, scope: Scope, limits: DefinitionLimits): SwitchSpec {
  const spec = requiredObject(raw, 'switch', scope);
  const at = nested(scope, 'switch');
  rejectUnknownFields(spec, SWITCH_FIELDS, at);
  const rawCases = requiredArray(spec, 'cases', at);
  if (rawCases.length === 0) fail(at, 'cases', '"switch.cases" must not be empty');
  if (rawCases.length > limits.switchCases) {
    fail(at, 'cases', `"switch.cases" has more than ${limits.switchCases} cases`);
  }
  const listed = new Map<string, string>();
  const target = (name: string, field: string, path: string) => {
    const before = listed.get(name);
    if (before !== undefined) {
      fail(
        { ...at, path },
        undefined,
        `"${field}" ${quote(name)} is already the task of "${before}" (join the conditions with ||)`,
      );
    }
    listed.set(name, field);
  };
  const cases = rawCases.map((c: unknown, i) => {
    const caseAt: Scope = { label: at.label, path: `${at.path}.cases[${i}]`, prefix: `switch.cases[${i}].` };
    if (!isObject(c)) {
      fail(caseAt, undefined, `"switch.cases[${i}]" must be an object, got ${describeType(c)}`);
    }
    rejectUnknownFields(c, SWITCH_CASE_FIELDS, caseAt);
    const when = requiredString(c, 'when', caseAt, { maxLength: MAX_SWITCH_EXPRESSION_LENGTH });
    try {
      parseSwitchExpression(when);
    } catch (err) {
      if (err instanceof WorkflowLanguageError) {
        fail(caseAt, 'when', `"switch.cases[${i}].when" is invalid: ${err.message}`);
      }
      throw err;
    }
    const then = requiredString(c, 'then', caseAt, { maxLength: limits.taskNameLength });
    target(then, `switch.cases[${i}].then`, `${caseAt.path}.then`);
    return { when, then };
  });
  if (!present(spec, 'default')) return { cases };
  const fallback = requiredString(spec, 'default', at, { maxLength: limits.taskNameLength });
  target(fallback, 'switch.default', `${at.path}.default`);
  return { cases, default: fallback };
}

function parseDependent(raw: Json, scope: Scope, limits: DefinitionLimits): DependentSpec {
  const spec = requiredObject(raw, 'dependent', scope);
  const at = nested(scope, 'dependent');
  rejectUnknownFields(spec, DEPENDENT_FIELDS, at);
  const workflowCode = requiredString(spec, 'workflowCode', at, {
    maxLength: limits.workflowCodeLength,
    pattern: WORKFLOW_CODE_PATTERN,
    patternText: 'a workflow code such as wf_3k9q2m7x1c5v8b0n',
  });
  const interval = requiredEnum(spec, 'interval', at, DEPENDENT_INTERVALS);
  const offset = optionalInteger(spec, 'offset', at, -DEPENDENT_MAX_OFFSET, DEPENDENT_MAX_OFFSET, 0);
  const checkIntervalMs = optionalInteger(
    spec,
    'checkIntervalMs',
    at,
    DEPENDENT_MIN_CHECK_INTERVAL_MS,
    limits.maxMs,
    DEPENDENT_DEFAULT_CHECK_INTERVAL_MS,
  );
  if (!present(spec, 'taskName')) return { workflowCode, interval, offset, checkIntervalMs };
  const taskName = requiredString(spec, 'taskName', at, { maxLength: limits.taskNameLength });
  return { workflowCode, taskName, interval, offset, checkIntervalMs };
}

/**
 * Declared params (templates: false) or a SUB_WORKFLOW's params (templates: true): names usable
 * as PORPOISE_PARAM_<NAME> (so no two that differ only in case), string values without NUL.
 */
function parseParamMap(
  value: unknown,
  scope: Scope,
  key: string,
  limits: DefinitionLimits,
  templates: boolean,
): Record<string, string> {
  const field = `"${scope.prefix}${key}"`;
  if (!isObject(value)) fail(scope, key, `${field} must be an object of strings, got ${describeType(value)}`);
  const entries = Object.entries(value);
  if (entries.length > limits.params) fail(scope, key, `${field} has more than ${limits.params} params`);
  const at = nested(scope, key);
  const variables = new Map<string, string>();
  let totalBytes = 0;
  for (const [name, v] of entries) {
    if (!isParamName(name) || name.length > limits.paramNameLength) {
      fail(
        at,
        name,
        `param name ${quote(name)} in ${field} is invalid (a letter or _, then letters, digits and _;` +
          ` at most ${limits.paramNameLength} characters)`,
      );
    }
    const variable = `${PARAM_ENV_PREFIX}${name.toUpperCase()}`;
    const other = variables.get(variable);
    if (other !== undefined) {
      fail(at, name, `params ${quote(other)} and ${quote(name)} in ${field} would both be ${variable}`);
    }
    variables.set(variable, name);
    if (typeof v !== 'string') {
      fail(at, name, `param ${quote(name)} in ${field} must be a string, got ${describeType(v)}`);
    }
    const bytes = Buffer.byteLength(v, 'utf8');
    if (bytes > limits.paramValueBytes) {
      fail(at, name, `param ${quote(name)} in ${field} is larger than ${limits.paramValueBytes} bytes`);
    }
    totalBytes += bytes;
    if (v.includes('\u0000')) {
      fail(
        at,
        name,
        `param ${quote(name)} in ${field} must not contain NUL (it becomes an environment variable)`,
      );
    }
    if (templates) checkTemplate(v, 'strict', at, name, `param ${quote(name)} in ${field}`);
  }
  if (totalBytes > limits.paramsTotalBytes) {
    fail(scope, key, `${field} are larger than ${limits.paramsTotalBytes} bytes together`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function parseEdge(
  raw: unknown,
  index: number,
  names: ReadonlySet<string>,
  limits: DefinitionLimits,
): EdgeDefinition {
  const scope: Scope = { label: `edge ${index}`, path: `edges[${index}]`, prefix: '' };
  if (!isObject(raw)) {
    throw new DefinitionError(`edge ${index} must be an object, got ${describeType(raw)}`, scope.path);
  }
  rejectUnknownFields(raw, EDGE_FIELDS, scope);
  const from = requiredString(raw, 'from', scope, { maxLength: limits.taskNameLength });
  const to = requiredString(raw, 'to', scope, { maxLength: limits.taskNameLength });
  const label = `edge ${index} (${quote(from)} -> ${quote(to)})`;
  for (const [key, end] of [
    ['from', from],
    ['to', to],
  ] as const) {
    if (!names.has(end)) {
      throw new DefinitionError(`${label}: unknown task ${quote(end)}`, `${scope.path}.${key}`);
    }
  }
  if (from === to) throw new DefinitionError(`${label}: a task cannot depend on itself`, scope.path);
  return { from, to };
}

function checkEdgePairs(edges: readonly EdgeDefinition[]): void {
  const seen = new Set<string>();
  edges.forEach((edge, i) => {
    // JSON of the pair is an unambiguous key (names may contain any character).
    const key = JSON.stringify([edge.from, edge.to]);
    if (seen.has(key)) {
      throw new DefinitionError(
        `edge ${i} (${quote(edge.from)} -> ${quote(edge.to)}): duplicate edge`,
        `edges[${i}]`,
      );
    }
    seen.add(key);
  });
}

/** `${…}` / `$[…]` syntax that would fail whatever the params (param-template.ts decides). */
function checkTemplate(value: string, mode: TemplateMode, at: Scope, key: string, what?: string): void {
  try {
    templateReferences(value, mode);
  } catch (err) {
    if (err instanceof WorkflowLanguageError) {
      fail(at, key, `${what ?? `"${at.prefix}${key}"`} is invalid: ${err.message}`);
    }
    throw err;
  }
}

// ---- readers: each failure names the object, the field and the problem ----

type Json = Record<string, unknown>;

/** Where a value is: whom messages name, its JSON path, and the field prefix shown in messages. */
interface Scope {
  /** `workflow`, `task "load"`, `edge 3`. */
  readonly label: string;
  /** JSON path of the object: '' (the body), `tasks[0]`, `tasks[0].http`. */
  readonly path: string;
  /** How fields of the object are shown: '' or `http.`. */
  readonly prefix: string;
}

interface StringRule {
  readonly maxLength: number;
  readonly allowEmpty?: boolean;
  readonly noControl?: boolean;
  readonly pattern?: RegExp;
  readonly patternText?: string;
  /** The field as shown, when it is not prefix + key (array elements). */
  readonly display?: string;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own, and not undefined (JSON has no undefined: absent). */
function present(obj: Json, key: string): boolean {
  return Object.hasOwn(obj, key) && obj[key] !== undefined;
}

/** JSON.stringify for messages, shortened so a huge bad value cannot flood a response. */
function quote(value: unknown, max = 80): string {
  const text = String(JSON.stringify(value));
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function describeType(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function jsonPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

function nested(scope: Scope, key: string): Scope {
  return { label: scope.label, path: jsonPath(scope.path, key), prefix: `${scope.prefix}${key}.` };
}

function fail(scope: Scope, key: string | number | undefined, problem: string): never {
  throw new DefinitionError(
    `${scope.label}: ${problem}`,
    key === undefined ? scope.path : jsonPath(scope.path, key),
  );
}

function rejectUnknownFields(obj: Json, allowed: readonly string[], scope: Scope, forWhat = ''): void {
  const unknown = Object.keys(obj).filter((k) => !allowed.includes(k));
  const first = unknown[0];
  if (first === undefined) return;
  fail(
    scope,
    first,
    `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => quote(scope.prefix + k)).join(', ')}` +
      ` (allowed${forWhat}: ${allowed.join(', ')})`,
  );
}

function requiredValue(obj: Json, key: string, scope: Scope): unknown {
  if (!present(obj, key)) fail(scope, key, `missing field "${scope.prefix}${key}"`);
  return obj[key];
}

function requiredObject(obj: Json, key: string, scope: Scope): Json {
  const value = requiredValue(obj, key, scope);
  if (!isObject(value)) {
    fail(scope, key, `"${scope.prefix}${key}" must be an object, got ${describeType(value)}`);
  }
  return value;
}

function requiredArray(obj: Json, key: string, scope: Scope): unknown[] {
  const value = requiredValue(obj, key, scope);
  if (!Array.isArray(value)) {
    fail(scope, key, `"${scope.prefix}${key}" must be an array, got ${describeType(value)}`);
  }
  return value;
}

function requiredString(obj: Json, key: string, scope: Scope, rule: StringRule): string {
  return checkString(requiredValue(obj, key, scope), scope, key, rule);
}

function optionalString(obj: Json, key: string, scope: Scope, rule: StringRule, fallback: string): string {
  return present(obj, key) ? checkString(obj[key], scope, key, rule) : fallback;
}

function checkString(value: unknown, scope: Scope, key: string | number, rule: StringRule): string {
  const field = `"${rule.display ?? `${scope.prefix}${key}`}"`;
  if (typeof value !== 'string') fail(scope, key, `${field} must be a string, got ${describeType(value)}`);
  if (!rule.allowEmpty && value.trim() === '') fail(scope, key, `${field} must not be empty`);
  if (value.length > rule.maxLength) fail(scope, key, `${field} is longer than ${rule.maxLength} characters`);
  // Control characters would garble logs, messages and the task's environment.
  // eslint-disable-next-line no-control-regex
  if (rule.noControl && /[\u0000-\u001f\u007f]/.test(value)) {
    fail(scope, key, `${field} must not contain control characters`);
  }
  if (rule.pattern && !rule.pattern.test(value)) {
    fail(
      scope,
      key,
      `${field} ${quote(value)} is invalid (${rule.patternText ?? `must match ${String(rule.pattern)}`})`,
    );
  }
  return value;
}

function optionalInteger(
  obj: Json,
  key: string,
  scope: Scope,
  min: number,
  max: number,
  fallback: number,
): number {
  if (!present(obj, key)) return fallback;
  const value = obj[key];
  const field = `"${scope.prefix}${key}"`;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    fail(scope, key, `${field} must be an integer, got ${quote(value)}`);
  }
  if (value < min || value > max) {
    fail(scope, key, `${field} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

function requiredEnum<T extends string>(obj: Json, key: string, scope: Scope, values: readonly T[]): T {
  return checkEnum(requiredValue(obj, key, scope), scope, key, values);
}

function optionalEnum<T extends string>(
  obj: Json,
  key: string,
  scope: Scope,
  values: readonly T[],
  fallback: T,
): T {
  return present(obj, key) ? checkEnum(obj[key], scope, key, values) : fallback;
}

function checkEnum<T extends string>(value: unknown, scope: Scope, key: string, values: readonly T[]): T {
  const found = values.find((v) => v === value);
  if (found === undefined) {
    fail(scope, key, `"${scope.prefix}${key}" must be one of ${values.join(', ')}, got ${quote(value)}`);
  }
  return found;
}
