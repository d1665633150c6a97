/**
 * A URL as it may appear in a log or a message: the password (in the user info, or a
 * `password=` query parameter as libpq and node-postgres read it) replaced by `***`.
 * Something that does not parse as a URL is not shown at all.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(not a valid URL)';
  }
  if (parsed.password !== '') parsed.password = '***';
  for (const key of [...parsed.searchParams.keys()]) {
    if (key.toLowerCase() === 'password') parsed.searchParams.set(key, '***');
  }
  return parsed.toString();
}

/** Removes every occurrence of a secret from a message (a driver's error may echo its input). */
export function scrub(message: string, secret: string | undefined): string {
  if (!secret) return message;
  return message.split(secret).join('***');
}
