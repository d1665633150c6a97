/**
 * Pure decisions the API makes about a request before any handler (and before its body is
 * parsed): its bearer token, its Host header, its body's media type. No I/O here.
 */

/** What the Authorization header holds. */
export type BearerResult = { readonly token: string } | { readonly problem: string };

export function readBearer(header: string | undefined): BearerResult {
  if (header === undefined || header.trim() === '') {
    return { problem: 'missing bearer token: send "Authorization: Bearer <token>"' };
  }
  const m = /^Bearer +([^\s]+) *$/i.exec(header);
  if (!m?.[1]) {
    return { problem: 'malformed Authorization header: expected "Bearer <token>"' };
  }
  return { token: m[1] };
}

/** Methods whose calls change something: they are audited and take JSON bodies only. */
export const CHANGING_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The one body type changing routes take (parameters such as charset allowed). */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const type = contentType.split(';')[0]?.trim().toLowerCase();
  return type === 'application/json';
}

/** Whether the request carries a body (a declared length above 0, or a chunked one). */
export function hasBody(headers: { 'content-length'?: string; 'transfer-encoding'?: string }): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length.trim() !== '0';
}

/** 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1' || h === '[::1]') return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return v4 !== null && v4.slice(1).every((n) => Number(n) <= 255);
}

/**
 * The host part of a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`), or undefined
 * when it is not one.
 */
export function hostOfHeader(header: string): string | undefined {
  const h = header.trim();
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(h);
  if (v6) return `[${v6[1]}]`;
  const named = /^([A-Za-z0-9.-]+)(?::\d{1,5})?$/.exec(h);
  return named?.[1];
}

/**
 * A Host header a server bound to loopback accepts: a loopback name or address, with or
 * without a port. Anything else is a page on another name whose DNS was pointed at 127.0.0.1
 * (DNS rebinding): the browser thinks it talks to that site and would let the page read the
 * answers. A request without Host (HTTP/1.0 tools) is not a browser's and is accepted.
 */
export function loopbackHostAccepted(header: string | undefined): boolean {
  if (header === undefined) return true;
  const host = hostOfHeader(header);
  return host !== undefined && isLoopbackHost(host);
}
