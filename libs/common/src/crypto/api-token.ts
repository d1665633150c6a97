import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API bearer tokens (DESIGN.md section 11). A token is `pp_` and 32 random bytes in base64url:
 * 256 bits cannot be guessed, so one SHA-256 (no salt, no slow hash) is enough to store it,
 * and the hash can be looked up directly in an index.
 */
export const API_TOKEN_PREFIX = 'pp_';
export const API_TOKEN_BYTES = 32;
/** `pp_` + 43 base64url characters. */
export const API_TOKEN_PATTERN = /^pp_[A-Za-z0-9_-]{43}$/;

export const API_SCOPES = ['read', 'run', 'edit', 'admin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export function isApiScope(value: unknown): value is ApiScope {
  return typeof value === 'string' && (API_SCOPES as readonly string[]).includes(value);
}

/** A new token, to be shown once and stored only as its hash. */
export function generateApiToken(): string {
  return API_TOKEN_PREFIX + randomBytes(API_TOKEN_BYTES).toString('base64url');
}

/** What is stored and looked up: SHA-256 of the token's UTF-8 text. */
export function hashApiToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * Compares a presented token with a known one in time that does not depend on where they
 * differ (or on their lengths: both are hashed to 32 bytes first).
 */
export function tokensEqual(presented: string, known: string): boolean {
  return timingSafeEqual(hashApiToken(presented), hashApiToken(known));
}

/** Whether tokens with `held` may use a route that needs `needed`: admin implies every scope. */
export function scopeAllows(held: readonly ApiScope[], needed: ApiScope): boolean {
  return held.includes('admin') || held.includes(needed);
}
