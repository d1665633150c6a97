import { API_SCOPES, isApiScope, type ApiScope } from '@porpoise/common';
import { BadRequestError } from '../common/api-errors';
import { describeType, isPlainObject, quote, rejectUnknownFields, requiredString } from '../common/input';
import { ADMIN_TOKEN_NAME } from './principal';

export interface TokenInput {
  readonly name: string;
  readonly scopes: ApiScope[];
}

/** Validates a POST /tokens body: `{ name, scopes }`. */
export function parseTokenBody(body: unknown): TokenInput {
  if (!isPlainObject(body)) {
    throw new BadRequestError(
      `request body must be a JSON object (Content-Type: application/json), got ${describeType(body)}`,
    );
  }
  rejectUnknownFields(body, ['name', 'scopes'], 'token');
  const name = requiredString(body, 'name', 'token', {
    maxLength: 100,
    pattern: /^[A-Za-z0-9][A-Za-z0-9 ._@-]*$/,
    patternText:
      'use letters, digits, spaces, dots, dashes, underscores or @, starting with a letter or digit',
  });
  // The audit log names ADMIN_TOKEN "admin": a stored token may not pass for it.
  if (name.toLowerCase() === ADMIN_TOKEN_NAME) {
    throw new BadRequestError(`token: the name "${ADMIN_TOKEN_NAME}" is reserved for ADMIN_TOKEN`);
  }
  if (!('scopes' in body) || body.scopes === undefined) {
    throw new BadRequestError('token: missing field "scopes"');
  }
  const scopes = body.scopes;
  if (!Array.isArray(scopes) || scopes.length === 0) {
    throw new BadRequestError(`token: "scopes" must be a non-empty array of ${API_SCOPES.join(', ')}`);
  }
  const out: ApiScope[] = [];
  for (const s of scopes) {
    if (!isApiScope(s)) {
      throw new BadRequestError(`token: unknown scope ${quote(s)} (allowed: ${API_SCOPES.join(', ')})`);
    }
    if (out.includes(s)) throw new BadRequestError(`token: scope ${quote(s)} is given twice`);
    out.push(s);
  }
  return { name, scopes: out };
}
