import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ADMIN_TOKEN_MIN_LENGTH } from '../config/config.loader';
import { generateApiToken } from './api-token';

/**
 * The admin token `npm start` and `npm run cluster` generate where ADMIN_TOKEN is not set
 * (DESIGN.md section 11): kept in a file readable by its owner only, in a directory only its
 * owner can list, and reused across restarts. `created` says whether this call made it.
 */
export function loadOrCreateAdminTokenFile(path: string): { token: string; created: boolean } {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode does not apply to a directory that was already there.
  chmodSync(dir, 0o700);
  try {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length < ADMIN_TOKEN_MIN_LENGTH || /\s/.test(token)) {
      throw new Error(
        `${path} does not hold an admin token (${ADMIN_TOKEN_MIN_LENGTH}+ characters, no spaces); ` +
          'remove it to generate a new one',
      );
    }
    chmodSync(path, 0o600);
    return { token, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = generateApiToken();
  // wx: two starts racing cannot both write a token; the loser reads the winner's.
  try {
    writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return { token, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateAdminTokenFile(path);
    throw err;
  }
}

/** Writes a given token where ADMIN_TOKEN_FILE will point (mode 600), replacing any old one. */
export function writeAdminTokenFile(path: string, token: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}
