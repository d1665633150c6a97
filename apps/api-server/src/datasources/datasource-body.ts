import { BadRequestError } from '../common/api-errors';
import { describeType, isPlainObject, rejectUnknownFields, requiredString } from '../common/input';

/** Names of data sources: what SQL tasks write in `sql.datasource`. */
export const DATASOURCE_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const DATASOURCE_TYPES = ['postgres'] as const;
export type DatasourceType = (typeof DATASOURCE_TYPES)[number];

export interface DatasourceInput {
  readonly name: string;
  readonly type: DatasourceType;
  /** The full URL, password included: only ever sealed, never answered or logged. */
  readonly url: string;
  /** The URL with its password replaced, safe to store in clear and show. */
  readonly urlRedacted: string;
}

/**
 * Validates a POST /datasources body. No message ever repeats the URL: it carries the password.
 */
export function parseDatasourceBody(body: unknown): DatasourceInput {
  if (!isPlainObject(body)) {
    throw new BadRequestError(
      `request body must be a JSON object (Content-Type: application/json), got ${describeType(body)}`,
    );
  }
  rejectUnknownFields(body, ['name', 'type', 'url'], 'datasource');
  const name = requiredString(body, 'name', 'datasource', {
    maxLength: 64,
    pattern: DATASOURCE_NAME_PATTERN,
    patternText: 'use 1 to 64 letters, digits, dots, dashes or underscores',
  });
  const type = requiredString(body, 'type', 'datasource', { maxLength: 32 });
  if (!(DATASOURCE_TYPES as readonly string[]).includes(type)) {
    throw new BadRequestError(`datasource: "type" must be one of ${DATASOURCE_TYPES.join(', ')}`);
  }
  if (typeof body.url !== 'string' || body.url.trim() === '') {
    throw new BadRequestError(
      'datasource: "url" must be a non-empty string (postgres://user:password@host:port/db)',
    );
  }
  if (body.url.length > 2048) throw new BadRequestError('datasource: "url" is longer than 2048 characters');
  const url = body.url.trim();
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BadRequestError(
      'datasource: "url" is not a URL (expected postgres://user:password@host:port/db)',
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new BadRequestError(
      `datasource: "url" must use postgres:// or postgresql://, got ${parsed.protocol}//`,
    );
  }
  if (!parsed.hostname) throw new BadRequestError('datasource: "url" has no host');
  if (parsed.pathname.length <= 1) throw new BadRequestError('datasource: "url" names no database');
  return { name, type: type as DatasourceType, url, urlRedacted: redactUrl(parsed) };
}

/** The URL with its password (if any) replaced by "****". */
export function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password) copy.password = '****';
  return copy.href;
}
