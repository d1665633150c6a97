import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, sep } from 'node:path';

/**
 * The web console (DESIGN.md section 13) is a static build (`npm run build` writes it to
 * dist/console). Every file is read into memory once, at start: no path from a URL ever reaches
 * the file system, and a request for a name not in the build cannot read anything else.
 */

export interface ConsoleFile {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
  /** Vite names the files under assets/ by their content hash: they never change. */
  readonly immutable: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/**
 * What the console's pages may do: scripts and styles from this server only (no inline script,
 * no eval), calls to this server only, never framed. The token lives in sessionStorage, so an
 * injected script is what this guards against.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Paths that belong to the API server itself, never to the console's client-side routes. */
const SERVER_PREFIXES = ['/api', '/health', '/metrics'];

export function isServerPath(path: string): boolean {
  const p = path.toLowerCase();
  return SERVER_PREFIXES.some((prefix) => p === prefix || p.startsWith(`${prefix}/`));
}

/** The repository (or image) root: the nearest directory above this file holding package.json. */
function projectRoot(from: string): string | undefined {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Where the build is: dist/console under the project root, from the built code or the sources. */
export function defaultConsoleDir(): string | undefined {
  const root = projectRoot(__dirname);
  return root === undefined ? undefined : join(root, 'dist', 'console');
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

/** The built files by URL path ("/index.html", "/assets/index-abc.js"); empty when not built. */
export function loadConsoleFiles(dir: string | undefined): ReadonlyMap<string, ConsoleFile> {
  const files = new Map<string, ConsoleFile>();
  if (dir === undefined || !existsSync(join(dir, 'index.html'))) return files;
  for (const path of walk(dir)) {
    const body = readFileSync(path);
    const url = `/${relative(dir, path).split(sep).join('/')}`;
    files.set(url, {
      body,
      type: TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      immutable: url.startsWith('/assets/'),
    });
  }
  return files;
}

/**
 * Which file answers a GET of this path: the file itself, or, for any other path that is not the
 * server's (a client-side route such as /runs/42), index.html. A missing asset is not the page.
 */
export function resolveConsolePath(
  files: ReadonlyMap<string, ConsoleFile>,
  path: string,
): ConsoleFile | undefined {
  if (isServerPath(path)) return undefined;
  const own = files.get(path === '/' ? '/index.html' : path);
  if (own) return own;
  if (path.startsWith('/assets/') || extname(path) !== '') return undefined;
  return files.get('/index.html');
}
