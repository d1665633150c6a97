/**
 * A workflow's run concurrency (DESIGN.md section 10, README "Run concurrency"):
 * `concurrency: { policy, maxRuns? }`. PARALLEL (the default) runs every trigger at once, at most
 * `maxRuns` when given; SERIAL_WAIT queues a run while another runs (state SERIAL_WAIT, in trigger
 * order); SERIAL_DISCARD ends a run triggered while another runs as STOP, with no task run.
 * The API stores it in the version's settings and denormalises it onto workflow_definition
 * (concurrency_policy, max_runs), where the run gate reads it in SQL.
 */
import { DefinitionError } from './definition-error';

export const CONCURRENCY_POLICIES = ['PARALLEL', 'SERIAL_WAIT', 'SERIAL_DISCARD'] as const;
export type ConcurrencyPolicy = (typeof CONCURRENCY_POLICIES)[number];

/** The bounds of `concurrency.maxRuns`. */
export const MAX_RUNS_LIMITS = { min: 1, max: 10_000 } as const;

export interface ConcurrencySettings {
  policy: ConcurrencyPolicy;
  /** Only with PARALLEL: at most this many runs at once (absent: no limit). */
  maxRuns?: number;
}

export const DEFAULT_CONCURRENCY: ConcurrencySettings = { policy: 'PARALLEL' };

export const CONCURRENCY_FIELDS = ['policy', 'maxRuns'] as const;

/**
 * True when runs of the workflow pass the run gate (they start as SERIAL_WAIT): any policy but
 * PARALLEL, or a maxRuns. The SQL twin is the gate's `limited` condition.
 */
export function isLimitedConcurrency(c: ConcurrencySettings): boolean {
  return c.policy !== 'PARALLEL' || c.maxRuns !== undefined;
}

/**
 * Validates the workflow's `concurrency` field (absent: PARALLEL, no limit). Throws a
 * DefinitionError naming the field (`concurrency.maxRuns`) and its JSON path.
 */
export function parseConcurrency(raw: unknown): ConcurrencySettings {
  if (raw === undefined) return { ...DEFAULT_CONCURRENCY };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw problem('concurrency', `"concurrency" must be an object, got ${describe(raw)}`);
  }
  const obj = raw as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((k) => !(CONCURRENCY_FIELDS as readonly string[]).includes(k));
  const first = unknown[0];
  if (first !== undefined) {
    throw problem(
      `concurrency.${first}`,
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(`concurrency.${k}`)).join(', ')}` +
        ` (allowed: ${CONCURRENCY_FIELDS.join(', ')})`,
    );
  }
  const policyValue = obj.policy === undefined ? 'PARALLEL' : obj.policy;
  const policy = CONCURRENCY_POLICIES.find((p) => p === policyValue);
  if (policy === undefined) {
    throw problem(
      'concurrency.policy',
      `"concurrency.policy" must be one of ${CONCURRENCY_POLICIES.join(', ')}, got ${describe(policyValue)}`,
    );
  }
  if (obj.maxRuns === undefined) return { policy };
  const maxRuns = obj.maxRuns;
  if (policy !== 'PARALLEL') {
    throw problem(
      'concurrency.maxRuns',
      `"concurrency.maxRuns" is only allowed with policy PARALLEL (${policy} runs one at a time)`,
    );
  }
  if (typeof maxRuns !== 'number' || !Number.isInteger(maxRuns)) {
    throw problem(
      'concurrency.maxRuns',
      `"concurrency.maxRuns" must be an integer, got ${describe(maxRuns)}`,
    );
  }
  if (maxRuns < MAX_RUNS_LIMITS.min || maxRuns > MAX_RUNS_LIMITS.max) {
    throw problem(
      'concurrency.maxRuns',
      `"concurrency.maxRuns" must be between ${MAX_RUNS_LIMITS.min} and ${MAX_RUNS_LIMITS.max}, got ${maxRuns}`,
    );
  }
  return { policy, maxRuns };
}

/**
 * Lenient reader of a stored settings value, for answers: anything malformed reads as the default
 * (parseConcurrency is the strict reader).
 */
export function readStoredConcurrency(raw: unknown): ConcurrencySettings {
  try {
    return parseConcurrency(raw);
  } catch {
    return { ...DEFAULT_CONCURRENCY };
  }
}

function problem(path: string, text: string): DefinitionError {
  return new DefinitionError(`workflow: ${text}`, path);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = String(JSON.stringify(value));
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
