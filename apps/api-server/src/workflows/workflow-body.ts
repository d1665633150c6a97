import { TASK_TYPES, type EdgeDefinition, type TaskDefinition, type TaskType } from '@porpoise/common';
import type { WorkflowDefinitionInput } from '@porpoise/dao';
import { BadRequestError } from '../common/api-errors';
import {
  describeType,
  isPlainObject,
  optionalInteger,
  optionalString,
  quote,
  rejectUnknownFields,
  requiredString,
  type JsonObject,
} from '../common/input';
import { dagProblems } from './dag';

/** Limits of a workflow definition (DESIGN.md section 4 names the fields). */
export const WORKFLOW_LIMITS = {
  nameLength: 200,
  descriptionLength: 10_000,
  tasks: 1000,
  edges: 10_000,
  taskNameLength: 100,
  /** A command travels in one gRPC message (4 MiB max) together with the run params. */
  commandLength: 1024 * 1024,
  retries: 100,
  /** Node timers overflow past 2^31-1 ms and would fire at once. */
  maxMs: 2 ** 31 - 1,
} as const;

export const WORKER_GROUP_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const TOP_FIELDS = ['name', 'description', 'tasks', 'edges'] as const;
const TASK_FIELDS = [
  'name',
  'type',
  'command',
  'retries',
  'retryIntervalMs',
  'timeoutMs',
  'workerGroup',
] as const;
const EDGE_FIELDS = ['from', 'to'] as const;
/** Control characters would garble logs and the task's environment. */
const hasControlChars = (s: string): boolean => [...s].some((c) => c.charCodeAt(0) < 0x20 || c === '\u007f');

/**
 * Validates a POST/PUT /workflows body into the definition we store, with defaults filled
 * in. Pure. Throws BadRequestError naming the first problem (for edges: every edge problem).
 */
export function parseWorkflowBody(body: unknown): WorkflowDefinitionInput {
  if (!isPlainObject(body)) {
    throw new BadRequestError(
      `request body must be a JSON object (Content-Type: application/json), got ${describeType(body)}`,
    );
  }
  rejectUnknownFields(body, TOP_FIELDS, 'workflow');
  const name = requiredString(body, 'name', 'workflow', { maxLength: WORKFLOW_LIMITS.nameLength });
  const description = optionalString(
    body,
    'description',
    'workflow',
    { maxLength: WORKFLOW_LIMITS.descriptionLength, allowEmpty: true },
    '',
  );

  if (!('tasks' in body) || body.tasks === undefined) {
    throw new BadRequestError('workflow: missing field "tasks"');
  }
  if (!Array.isArray(body.tasks)) {
    throw new BadRequestError(`workflow: "tasks" must be an array, got ${describeType(body.tasks)}`);
  }
  if (body.tasks.length === 0) throw new BadRequestError('workflow: "tasks" must not be empty');
  if (body.tasks.length > WORKFLOW_LIMITS.tasks) {
    throw new BadRequestError(`workflow: more than ${WORKFLOW_LIMITS.tasks} tasks`);
  }
  const tasks = body.tasks.map((t, i) => parseTask(t, i));
  const names = new Set<string>();
  for (const t of tasks) {
    if (names.has(t.name)) throw new BadRequestError(`duplicate task name ${quote(t.name)}`);
    names.add(t.name);
  }

  let edges: EdgeDefinition[] = [];
  if ('edges' in body && body.edges !== undefined) {
    if (!Array.isArray(body.edges)) {
      throw new BadRequestError(`workflow: "edges" must be an array, got ${describeType(body.edges)}`);
    }
    if (body.edges.length > WORKFLOW_LIMITS.edges) {
      throw new BadRequestError(`workflow: more than ${WORKFLOW_LIMITS.edges} edges`);
    }
    edges = body.edges.map((e, i) => parseEdge(e, i));
  }
  const problems = dagProblems(
    tasks.map((t) => t.name),
    edges,
  );
  if (problems.length > 0) throw new BadRequestError(problems.join('; '));
  return { name, description, tasks, edges };
}

function parseTask(raw: unknown, index: number): TaskDefinition {
  if (!isPlainObject(raw)) {
    throw new BadRequestError(`task ${index} must be an object, got ${describeType(raw)}`);
  }
  // Name the task by its name once it has a usable one: that is what the user wrote.
  const where =
    typeof raw.name === 'string' && raw.name.trim() !== '' ? `task ${quote(raw.name)}` : `task ${index}`;
  rejectUnknownFields(raw, TASK_FIELDS, where);
  const name = requiredString(raw, 'name', `task ${index}`, { maxLength: WORKFLOW_LIMITS.taskNameLength });
  if (hasControlChars(name)) {
    throw new BadRequestError(`task ${index}: "name" must not contain control characters`);
  }
  const type = requiredString(raw, 'type', where, { maxLength: 100 });
  if (!(TASK_TYPES as readonly string[]).includes(type)) {
    throw new BadRequestError(
      `unknown task type ${quote(type)} for task ${quote(name)} (known: ${TASK_TYPES.join(', ')})`,
    );
  }
  const command = requiredString(raw, 'command', where, { maxLength: WORKFLOW_LIMITS.commandLength });
  return {
    name,
    type: type as TaskType,
    command,
    retries: optionalInteger(raw, 'retries', where, 0, WORKFLOW_LIMITS.retries, 0),
    retryIntervalMs: optionalInteger(raw, 'retryIntervalMs', where, 0, WORKFLOW_LIMITS.maxMs, 1000),
    // 0 means no timeout.
    timeoutMs: optionalInteger(raw, 'timeoutMs', where, 0, WORKFLOW_LIMITS.maxMs, 0),
    workerGroup: optionalString(
      raw,
      'workerGroup',
      where,
      { maxLength: 64, pattern: WORKER_GROUP_PATTERN, patternText: '1 to 64 of A-Z a-z 0-9 . _ -' },
      'default',
    ),
  };
}

function parseEdge(raw: unknown, index: number): EdgeDefinition {
  const where = `edge ${index}`;
  if (!isPlainObject(raw)) throw new BadRequestError(`${where} must be an object, got ${describeType(raw)}`);
  const edge: JsonObject = raw;
  rejectUnknownFields(edge, EDGE_FIELDS, where);
  const from = requiredString(edge, 'from', where, { maxLength: WORKFLOW_LIMITS.taskNameLength });
  const to = requiredString(edge, 'to', where, { maxLength: WORKFLOW_LIMITS.taskNameLength });
  return { from, to };
}
