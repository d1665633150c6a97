import { chmodSync, mkdirSync, statSync } from 'node:fs';

/**
 * Makes `dir` (and missing parents) mode 700, and narrows an existing one: a node's DATA_DIR
 * holds its secrets (datasource.key, admin-token), task logs and undelivered results, so only
 * its own user may enter it; tasks run as another user (docs/security.md). Bits are only ever
 * taken away. One exception: a directory deliberately given to another group than the process's
 * own keeps that group's search bit (never read or write): a standalone node running as root
 * gives its DATA_DIR to the `postgres` group, whose user must pass through to the embedded
 * Postgres's data directory inside it. Throws when `dir` is not a directory.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = statSync(dir);
  if (!stat.isDirectory()) throw new Error(`${dir} is not a directory`);
  const current = stat.mode & 0o777;
  const ownGroup = process.getgid?.();
  const allowed = ownGroup !== undefined && stat.gid !== ownGroup ? 0o710 : 0o700;
  if ((current & ~allowed) !== 0) chmodSync(dir, current & allowed);
}
