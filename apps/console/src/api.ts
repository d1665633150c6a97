/**
 * The console's only way to the server: the REST API under /api/v1 with the bearer token
 * (DESIGN.md sections 4 and 11). No cookies: the token lives in sessionStorage, per tab.
 */

const TOKEN_KEY = 'porpoise.token';

export function readToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * A `/#token=<token>` link signs in directly: the token is kept and removed from the address
 * bar and history at once (it must not stay visible or be bookmarked).
 */
export function takeTokenFromHash(): void {
  const match = /^#token=([^&]+)/.exec(window.location.hash);
  if (!match?.[1]) return;
  saveToken(decodeURIComponent(match[1]));
  window.history.replaceState(null, '', window.location.pathname + window.location.search);
}

/** An answer other than 2xx (or 304), with the API's own message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type Listener = (message: string) => void;
const unauthorizedListeners = new Set<Listener>();

/** Called when the API answers 401: the token is gone or was revoked. */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text();
  let message = text || res.statusText;
  try {
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === 'string') message = body.message;
    else if (Array.isArray(body.message)) message = body.message.join('; ');
  } catch {
    // Not JSON (a proxy's page, say): the text itself.
  }
  return new ApiError(res.status, `${res.status}: ${message}`);
}

function headers(extra: Record<string, string> = {}, token = readToken()): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}`, ...extra } : extra;
}

async function send(method: string, path: string, body?: unknown, token?: string): Promise<Response> {
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }, token ?? readToken()),
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  if (res.status === 401 && token === undefined) {
    const err = await errorOf(res);
    unauthorizedListeners.forEach((l) => l(err.message));
    throw err;
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

/** A JSON call; rejects with ApiError carrying the API's message. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await send(method, path, body);
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string): Promise<T> => api<T>('GET', path);
export const post = <T>(path: string, body?: unknown): Promise<T> => api<T>('POST', path, body);

/** Checks a token before keeping it (any GET it may make; a 403 still proves it is valid). */
export async function checkToken(token: string): Promise<void> {
  try {
    await send('GET', '/workflows?limit=1', undefined, token);
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) return;
    throw err;
  }
}

/**
 * A GET that revalidates with If-None-Match: the API answers 304 (no body) while nothing
 * changed, so polling a run every second costs the server little and the page no re-render.
 */
export async function getIfChanged<T>(
  path: string,
  etag: string | null,
): Promise<{ changed: false } | { changed: true; body: T; etag: string | null }> {
  const res = await fetch(`/api/v1${path}`, {
    // The browser adds "Cache-Control: no-cache" to a request carrying its own If-None-Match unless
    // the request has a Cache-Control already, and a server must then answer in full (no 304).
    headers: headers(etag ? { 'If-None-Match': etag, 'Cache-Control': 'max-age=0' } : {}),
    cache: 'no-store',
  });
  if (res.status === 304) return { changed: false };
  if (res.status === 401) {
    const err = await errorOf(res);
    unauthorizedListeners.forEach((l) => l(err.message));
    throw err;
  }
  if (!res.ok) throw await errorOf(res);
  return { changed: true, body: (await res.json()) as T, etag: res.headers.get('ETag') };
}

/**
 * At most `maxBytes` of a task's log from a byte offset (the rest of the stream is cancelled: a log
 * may be 64 MiB, a page should not hold it all); null while it has none yet (404).
 */
export async function readLog(
  taskInstanceId: number,
  offset: number,
  maxBytes: number,
): Promise<Uint8Array | null> {
  const res = await fetch(`/api/v1/task-instances/${taskInstanceId}/log?offset=${offset}`, {
    headers: headers(),
    cache: 'no-store',
  });
  if (res.status === 404) return null;
  if (!res.ok) throw await errorOf(res);
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < maxBytes) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  if (size >= maxBytes) await reader.cancel();
  const bytes = new Uint8Array(Math.min(size, maxBytes));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - at);
    bytes.set(part, at);
    at += part.length;
    if (at >= bytes.length) break;
  }
  return bytes;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
