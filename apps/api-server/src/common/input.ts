import { BadRequestError, NotFoundError } from './api-errors';

/**
 * Small, strict readers for request input. Every failure is a BadRequestError whose message
 * names the field and the problem. Unknown fields are refused rather than ignored, so a
 * misspelt option ("retry" for "retries") is an error instead of a silent default.
 */

export type JsonObject = Record<string, unknown>;

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON.stringify for messages, shortened so a huge bad value cannot flood a response. */
export function quote(value: unknown, max = 80): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value));
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export function describeType(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

export function rejectUnknownFields(obj: JsonObject, allowed: readonly string[], where: string): void {
  const unknown = Object.keys(obj).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new BadRequestError(
      `${where}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => quote(k)).join(', ')}` +
        ` (allowed: ${allowed.join(', ')})`,
    );
  }
}

export interface StringRule {
  readonly maxLength: number;
  readonly pattern?: RegExp;
  readonly patternText?: string;
}

/** A required, non-empty string field. */
export function requiredString(obj: JsonObject, field: string, where: string, rule: StringRule): string {
  if (!(field in obj) || obj[field] === undefined) {
    throw new BadRequestError(`${where}: missing field "${field}"`);
  }
  return checkString(obj[field], field, where, rule);
}

/** An optional string field: the default when absent. */
export function optionalString(
  obj: JsonObject,
  field: string,
  where: string,
  rule: StringRule & { allowEmpty?: boolean },
  fallback: string,
): string {
  if (!(field in obj) || obj[field] === undefined) return fallback;
  return checkString(obj[field], field, where, rule);
}

function checkString(
  value: unknown,
  field: string,
  where: string,
  rule: StringRule & { allowEmpty?: boolean },
): string {
  if (typeof value !== 'string') {
    throw new BadRequestError(`${where}: "${field}" must be a string, got ${describeType(value)}`);
  }
  if (!rule.allowEmpty && value.trim() === '') {
    throw new BadRequestError(`${where}: "${field}" must not be empty`);
  }
  if (value.length > rule.maxLength) {
    throw new BadRequestError(`${where}: "${field}" is longer than ${rule.maxLength} characters`);
  }
  if (rule.pattern && !rule.pattern.test(value)) {
    throw new BadRequestError(
      `${where}: "${field}" ${quote(value)} is invalid (${rule.patternText ?? `must match ${rule.pattern}`})`,
    );
  }
  return value;
}

/** An optional integer field within [min, max]: the default when absent. */
export function optionalInteger(
  obj: JsonObject,
  field: string,
  where: string,
  min: number,
  max: number,
  fallback: number,
): number {
  if (!(field in obj) || obj[field] === undefined) return fallback;
  const value = obj[field];
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new BadRequestError(`${where}: "${field}" must be an integer, got ${quote(value)}`);
  }
  if (value < min || value > max) {
    throw new BadRequestError(`${where}: "${field}" must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/** Query strings: each parameter at most once, only the known ones. */
export function queryReader(
  query: unknown,
  allowed: readonly string[],
): (name: string) => string | undefined {
  const q: JsonObject = isPlainObject(query) ? query : {};
  const unknown = Object.keys(q).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new BadRequestError(
      `unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => quote(k)).join(', ')}` +
        (allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ' (none are accepted)'),
    );
  }
  return (name) => {
    const v = q[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new BadRequestError(`query parameter "${name}" must be given once`);
    return v;
  };
}

/** An optional integer query parameter in [min, max]. */
export function queryInteger(
  read: (name: string) => string | undefined,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  const raw = read(name);
  if (raw === undefined) return fallback;
  if (!/^-?\d{1,16}$/.test(raw)) {
    throw new BadRequestError(`query parameter "${name}" must be an integer, got ${quote(raw)}`);
  }
  const value = Number(raw);
  if (value < min || value > max) {
    throw new BadRequestError(`query parameter "${name}" must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

export interface Page {
  readonly limit: number;
  readonly offset: number;
}

export const MAX_PAGE_LIMIT = 1000;
export const DEFAULT_PAGE_LIMIT = 50;

export function readPage(read: (name: string) => string | undefined): Page {
  return {
    limit: queryInteger(read, 'limit', 1, MAX_PAGE_LIMIT, DEFAULT_PAGE_LIMIT),
    offset: queryInteger(read, 'offset', 0, Number.MAX_SAFE_INTEGER, 0),
  };
}

/**
 * A numeric id from the path. Not a positive integer → 400; beyond bigint → 404 (it cannot
 * exist), so the database never sees a value it would reject.
 */
export function parseId(raw: string, what: string): number {
  if (!/^[1-9]\d*$/.test(raw)) {
    throw new BadRequestError(`${what} id must be a positive integer, got ${quote(raw)}`);
  }
  const id = Number(raw);
  if (!Number.isSafeInteger(id)) throw new NotFoundError(`${what} ${raw} not found`);
  return id;
}

/** Workflow codes are generated by us; anything else cannot name a workflow. */
export const WORKFLOW_CODE_PATTERN = /^[A-Za-z0-9_.-]{1,200}$/;
