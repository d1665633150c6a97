import { BadRequestError } from '../common/api-errors';
import { describeType, isPlainObject, quote, rejectUnknownFields } from '../common/input';

export const PARAM_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const RUN_LIMITS = {
  params: 100,
  paramNameLength: 128,
  /** Per value, in UTF-8 bytes. */
  paramValueBytes: 64 * 1024,
  /**
   * All names and values together, in UTF-8 bytes: they travel in every Dispatch of the run, and
   * a worker accepts gRPC messages up to 4 MiB (leaving room for the task and upstream outputs).
   */
  totalBytes: 1024 * 1024,
  idempotencyKeyLength: 200,
} as const;

/**
 * Validates the optional POST /workflows/{code}/runs body: nothing, `{}` or `{ "params": {...} }`
 * with names usable as PORPOISE_PARAM_<NAME> and string values. Pure.
 */
export function parseRunBody(body: unknown): Record<string, string> {
  if (body === undefined || body === null) return {};
  if (!isPlainObject(body)) {
    throw new BadRequestError(`request body must be a JSON object, got ${describeType(body)}`);
  }
  rejectUnknownFields(body, ['params'], 'run');
  if (body.params === undefined) return {};
  return parseParams(body.params, 'run');
}

/**
 * A run's `params` object (also a backfill's and a schedule's): names usable as
 * PORPOISE_PARAM_<NAME>, string values, within RUN_LIMITS. `where` starts each message ("run",
 * "backfill", "schedule"). Pure.
 */
export function parseParams(raw: unknown, where: string): Record<string, string> {
  if (!isPlainObject(raw)) {
    throw new BadRequestError(`${where}: "params" must be an object of strings, got ${describeType(raw)}`);
  }
  const entries = Object.entries(raw);
  if (entries.length > RUN_LIMITS.params) {
    throw new BadRequestError(`${where}: more than ${RUN_LIMITS.params} params`);
  }
  const params: Record<string, string> = {};
  let totalBytes = 0;
  for (const [name, value] of entries) {
    if (!PARAM_NAME_PATTERN.test(name) || name.length > RUN_LIMITS.paramNameLength) {
      throw new BadRequestError(
        `${where}: param name ${quote(name)} is invalid (letters, digits and _, not starting with a digit, ` +
          `at most ${RUN_LIMITS.paramNameLength} characters)`,
      );
    }
    if (typeof value !== 'string') {
      throw new BadRequestError(
        `${where}: param ${quote(name)} must be a string, got ${describeType(value)}`,
      );
    }
    if (Buffer.byteLength(value, 'utf8') > RUN_LIMITS.paramValueBytes) {
      throw new BadRequestError(
        `${where}: param ${quote(name)} is larger than ${RUN_LIMITS.paramValueBytes} bytes`,
      );
    }
    if (value.includes('\u0000')) {
      throw new BadRequestError(
        `${where}: param ${quote(name)} must not contain NUL (it becomes an environment variable)`,
      );
    }
    totalBytes += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value, 'utf8');
    if (totalBytes > RUN_LIMITS.totalBytes) {
      throw new BadRequestError(
        `${where}: params are larger than ${RUN_LIMITS.totalBytes} bytes in all (they travel with every task to its worker)`,
      );
    }
    params[name] = value;
  }
  return params;
}

/** The optional Idempotency-Key header: absent, or 1..200 characters. */
export function parseIdempotencyKey(raw: string | string[] | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) throw new BadRequestError('Idempotency-Key header must be given once');
  if (raw.trim() === '') throw new BadRequestError('Idempotency-Key header must not be empty');
  if (raw.length > RUN_LIMITS.idempotencyKeyLength) {
    throw new BadRequestError(
      `Idempotency-Key header is longer than ${RUN_LIMITS.idempotencyKeyLength} characters`,
    );
  }
  return raw;
}
