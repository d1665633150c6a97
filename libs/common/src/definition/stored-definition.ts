/**
 * A definition as stored in workflow_definition_version: name, description, tasks and edges
 * columns, and the settings column (the workflow-level fields). Readers for the master (strict)
 * and for answers (lenient, in the documented field order).
 */
import { readStoredConcurrency } from './concurrency';
import { DEFINITION_LIMITS, type DefinitionLimits } from './definition-limits';
import {
  FAILURE_STRATEGIES,
  PRIORITIES,
  type EdgeDefinition,
  type TaskDefinition,
  type WorkflowDefinition,
  type WorkflowSettings,
} from './definition-types';
import { parseWorkflowDefinition } from './parse-definition';

export const SETTINGS_FIELDS = [
  'params',
  'failureStrategy',
  'timeoutMs',
  'priority',
  'concurrency',
  'tenant',
] as const;

/** The name parseStoredDefinition gives a definition read without its name column. */
export const STORED_NAME_UNREAD = '(name not read)';

/** What a master reading a stored version enforces: semantics (timer range), not sizes. */
const STORED_LIMITS: Partial<DefinitionLimits> = Object.fromEntries(
  Object.keys(DEFINITION_LIMITS)
    .filter((k) => !['retries', 'maxMs', 'workerGroupLength'].includes(k))
    .map((k) => [k, Number.POSITIVE_INFINITY]),
);

/** The columns of a stored version (workflow_definition_version), as read from the database. */
export interface StoredDefinition {
  /** Absent when the reader did not select it: the result's name is then STORED_NAME_UNREAD. */
  readonly name?: unknown;
  readonly description?: unknown;
  readonly tasks: unknown;
  readonly edges: unknown;
  /** The settings column; absent or `{}` for versions stored before it existed. */
  readonly settings?: unknown;
}

/**
 * Re-validates a stored version for a master (jsonb read back is a boundary too: a master must
 * not crash or loop on a bad row). The same checks as the API, without its size limits (a
 * version runs under the limits it was stored with); settings keys it does not know (a later
 * version's) are ignored. Throws DefinitionError.
 */
export function parseStoredDefinition(stored: StoredDefinition): WorkflowDefinition {
  const settings = isObject(stored.settings) ? stored.settings : {};
  const known = Object.fromEntries(
    SETTINGS_FIELDS.filter((k) => settings[k] !== undefined).map((k) => [k, settings[k]]),
  );
  return parseWorkflowDefinition(
    {
      name: stored.name ?? STORED_NAME_UNREAD,
      description: stored.description ?? '',
      ...known,
      tasks: stored.tasks,
      edges: stored.edges,
    },
    { limits: STORED_LIMITS },
  );
}

/** The settings column of a definition. */
export function definitionSettings(definition: WorkflowSettings): WorkflowSettings {
  return {
    params: definition.params,
    failureStrategy: definition.failureStrategy,
    timeoutMs: definition.timeoutMs,
    ...(definition.priority === undefined ? {} : { priority: definition.priority }),
    ...(definition.concurrency === undefined ? {} : { concurrency: definition.concurrency }),
    ...(definition.tenant === undefined ? {} : { tenant: definition.tenant }),
  };
}

/**
 * The settings column as read back for an answer, with defaults for what is absent (versions
 * stored before the column existed hold `{}`). Lenient: a value of the wrong shape reads as its
 * default rather than failing a GET; parseStoredDefinition is the strict reader.
 */
export function readStoredSettings(json: unknown): WorkflowSettings {
  const s = isObject(json) ? json : {};
  const params = isObject(s.params)
    ? Object.fromEntries(
        Object.entries(s.params).filter((e): e is [string, string] => typeof e[1] === 'string'),
      )
    : {};
  const failureStrategy = FAILURE_STRATEGIES.find((f) => f === s.failureStrategy) ?? 'END';
  const timeoutMs = typeof s.timeoutMs === 'number' && Number.isInteger(s.timeoutMs) ? s.timeoutMs : 0;
  const priority = PRIORITIES.find((p) => p === s.priority);
  return {
    params,
    failureStrategy,
    timeoutMs,
    ...(priority === undefined ? {} : { priority }),
    concurrency: readStoredConcurrency(s.concurrency),
    ...(typeof s.tenant === 'string' ? { tenant: s.tenant } : {}),
  };
}

// jsonb keeps an object's keys sorted by length, then bytes: give them back in the order the API
// documents. Keys not listed (none today) follow in the stored order.
const TASK_KEY_ORDER = [
  'name',
  'type',
  'command',
  'http',
  'sql',
  'subWorkflow',
  'conditions',
  'switch',
  'dependent',
  'retries',
  'retryIntervalMs',
  'timeoutMs',
  'workerGroup',
  'priority',
  'taskGroup',
];
const NESTED_KEY_ORDER: Readonly<Record<string, readonly string[]>> = {
  http: ['method', 'url', 'headers', 'body', 'expectStatus', 'timeoutMs'],
  sql: ['datasource', 'statement'],
  subWorkflow: ['workflowCode', 'params'],
  conditions: ['success', 'failure'],
  switch: ['cases', 'default'],
  dependent: ['workflowCode', 'taskName', 'interval', 'offset', 'checkIntervalMs'],
};
const SWITCH_CASE_KEY_ORDER = ['when', 'then'];

/** A stored task with its keys (and its type object's keys) in the documented order. No checks. */
export function canonicalTaskDefinition(task: TaskDefinition): TaskDefinition {
  const ordered = orderKeys(task as unknown as Record<string, unknown>, TASK_KEY_ORDER);
  for (const [key, order] of Object.entries(NESTED_KEY_ORDER)) {
    const inner = ordered[key];
    if (!isObject(inner)) continue;
    const sorted = orderKeys(inner, order);
    if (key === 'switch' && Array.isArray(sorted.cases)) {
      sorted.cases = sorted.cases.map((c: unknown) =>
        isObject(c) ? orderKeys(c, SWITCH_CASE_KEY_ORDER) : c,
      );
    }
    ordered[key] = sorted;
  }
  return ordered as unknown as TaskDefinition;
}

/** A stored edge as `{ from, to }`. */
export function canonicalEdgeDefinition(edge: EdgeDefinition): EdgeDefinition {
  return { from: edge.from, to: edge.to };
}

function orderKeys(obj: Record<string, unknown>, order: readonly string[]): Record<string, unknown> {
  const keys = [
    ...order.filter((k) => Object.hasOwn(obj, k)),
    ...Object.keys(obj).filter((k) => !order.includes(k)),
  ];
  // fromEntries defines own properties (a header or param named __proto__ stays one).
  return Object.fromEntries(keys.map((k) => [k, obj[k]]));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
