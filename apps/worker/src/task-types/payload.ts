import { RpcInvalidArgument, type TaskSpec } from '@porpoise/rpc';

/** Field names in refusals: `task.payloadJson.url must be ...`. */
const ROOT = 'task.payloadJson';

export function invalidPayload(field: string, problem: string): never {
  throw new RpcInvalidArgument(`${field ? `${ROOT}.${field}` : ROOT} ${problem}`);
}

/**
 * Reads the fields of a task's payload object, each checked as it is read; `finish()` then
 * refuses any field nobody read, so a misspelt one (`expectedStatus`) is an error instead of
 * silently meaning the default.
 */
export class PayloadFields {
  private readonly read = new Set<string>();

  constructor(private readonly fields: Readonly<Record<string, unknown>>) {}

  /**
   * The payload of the spec: a JSON object. `emptyAllowed`: "" means {} (SHELL and EMPTY need
   * nothing, and a master from before task types sends nothing).
   */
  static of(spec: Pick<TaskSpec, 'payloadJson' | 'taskType'>, { emptyAllowed }: { emptyAllowed: boolean }) {
    if (spec.payloadJson.trim() === '') {
      if (emptyAllowed) return new PayloadFields({});
      invalidPayload('', `is required for a ${spec.taskType} task`);
    }
    let value: unknown;
    try {
      value = JSON.parse(spec.payloadJson);
    } catch (err) {
      invalidPayload('', `is not JSON: ${(err as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      invalidPayload('', `must be a JSON object, got ${describe(value)}`);
    }
    return new PayloadFields(value as Record<string, unknown>);
  }

  private take(name: string): unknown {
    this.read.add(name);
    return Object.hasOwn(this.fields, name) ? this.fields[name] : undefined;
  }

  /** A string; `undefined` when absent (or null) and optional. */
  string(name: string, opts: { maxLength?: number; nonEmpty?: boolean; optional: true }): string | undefined;
  string(name: string, opts?: { maxLength?: number; nonEmpty?: boolean; optional?: false }): string;
  string(
    name: string,
    {
      maxLength,
      nonEmpty = false,
      optional = false,
    }: { maxLength?: number; nonEmpty?: boolean; optional?: boolean } = {},
  ): string | undefined {
    const v = this.take(name);
    if (v === undefined || v === null) {
      if (optional) return undefined;
      invalidPayload(name, 'is required');
    }
    if (typeof v !== 'string') invalidPayload(name, `must be a string, got ${describe(v)}`);
    if (nonEmpty && v.trim() === '') invalidPayload(name, 'must be a non-empty string');
    if (maxLength !== undefined && v.length > maxLength) {
      invalidPayload(name, `must be at most ${maxLength} characters, got ${v.length}`);
    }
    return v;
  }

  /** An integer in [min, max]; `undefined` when absent (or null). */
  integer(name: string, min: number, max: number): number | undefined {
    const v = this.take(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      invalidPayload(name, `must be an integer between ${min} and ${max}, got ${describe(v)}`);
    }
    return v;
  }

  /** An array of integers in [min, max]; `undefined` when absent (or null). */
  integers(name: string, min: number, max: number, maxItems: number): number[] | undefined {
    const v = this.take(name);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) invalidPayload(name, `must be an array of integers, got ${describe(v)}`);
    if (v.length > maxItems) invalidPayload(name, `must have at most ${maxItems} items, got ${v.length}`);
    return v.map((item: unknown, i) => {
      if (typeof item !== 'number' || !Number.isSafeInteger(item) || item < min || item > max) {
        invalidPayload(
          `${name}[${i}]`,
          `must be an integer between ${min} and ${max}, got ${describe(item)}`,
        );
      }
      return item;
    });
  }

  /** An array whose items are strings or null (bind values); the array itself is required. */
  nullableStrings(name: string, maxItems: number): (string | null)[] {
    const v = this.take(name);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) invalidPayload(name, `must be an array of strings, got ${describe(v)}`);
    if (v.length > maxItems) invalidPayload(name, `must have at most ${maxItems} items, got ${v.length}`);
    return v.map((item: unknown, i) => {
      if (item !== null && typeof item !== 'string') {
        invalidPayload(`${name}[${i}]`, `must be a string or null, got ${describe(item)}`);
      }
      return item;
    });
  }

  /** An object of strings; `undefined` when absent (or null). */
  stringMap(name: string): [string, string][] | undefined {
    const v = this.take(name);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) {
      invalidPayload(name, `must be an object of strings, got ${describe(v)}`);
    }
    return Object.entries(v as Record<string, unknown>).map(([key, item]) => {
      if (typeof item !== 'string') {
        invalidPayload(`${name}.${key}`, `must be a string, got ${describe(item)}`);
      }
      return [key, item];
    });
  }

  /** Refuses every field not read: the type does not know it. */
  finish(): void {
    const unknown = Object.keys(this.fields).filter((k) => !this.read.has(k));
    if (unknown.length > 0) {
      invalidPayload(
        '',
        `has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}`,
      );
    }
  }
}

/** What a value is, for a refusal: never the value itself when it may be long or secret. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}
