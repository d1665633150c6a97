import { InvalidArgumentError, InvalidPathError, ValueTooLargeError } from './registry.errors';
import { DEFAULT_MAX_VALUE_BYTES } from './registry.config';

const SEGMENT = /^[A-Za-z0-9._:@-]+$/;
const MAX_PATH_LENGTH = 1024;

/**
 * Checks a registry key: absolute, no empty, `.` or `..` segments, no trailing slash, and
 * only characters every backend stores the same way. Throws InvalidPathError naming the fault.
 */
export function validatePath(path: unknown): string {
  if (typeof path !== 'string') throw new InvalidPathError(String(path), 'not a string');
  if (path.length === 0) throw new InvalidPathError(path, 'empty');
  if (path.length > MAX_PATH_LENGTH) {
    throw new InvalidPathError(path, `longer than ${MAX_PATH_LENGTH} characters`);
  }
  if (!path.startsWith('/')) throw new InvalidPathError(path, 'must start with /');
  if (path === '/') return path;
  if (path.endsWith('/')) throw new InvalidPathError(path, 'must not end with /');
  for (const segment of path.slice(1).split('/')) {
    if (segment === '') throw new InvalidPathError(path, 'empty segment');
    if (segment === '.' || segment === '..') throw new InvalidPathError(path, `segment "${segment}"`);
    if (!SEGMENT.test(segment)) {
      throw new InvalidPathError(path, `segment "${segment}" may hold only letters, digits and . _ : @ -`);
    }
  }
  return path;
}

/** Checks a value's type and size before it is sent anywhere. */
export function validateValue(key: string, value: unknown, maxBytes = DEFAULT_MAX_VALUE_BYTES): string {
  if (typeof value !== 'string') {
    throw new InvalidArgumentError(`value for ${key} must be a string, got ${typeof value}`);
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > maxBytes) throw new ValueTooLargeError(key, bytes, maxBytes);
  return value;
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** True when key is prefix itself or lies under it. */
export function isUnder(key: string, prefix: string): boolean {
  if (prefix === '/') return true;
  return key === prefix || key.startsWith(prefix + '/');
}

export function joinPath(parent: string, child: string): string {
  return parent === '/' ? `/${child}` : `${parent}/${child}`;
}

/** Checks LockOptions.timeoutMs: absent, or a finite number >= 0. */
export function validateLockTimeout(timeoutMs: unknown): number | undefined {
  if (timeoutMs === undefined) return undefined;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
    const got = typeof timeoutMs === 'number' ? String(timeoutMs) : typeof timeoutMs;
    throw new InvalidArgumentError(`lock timeoutMs must be a finite number >= 0, got ${got}`);
  }
  return timeoutMs;
}
