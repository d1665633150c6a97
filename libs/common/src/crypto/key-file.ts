import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SECRET_KEY_BYTES } from './secret-box';

/**
 * A node-local key kept in a file (readable by its owner only): read it, or create it once.
 * Standalone and the cluster launcher keep their data-source key this way, so data sources
 * stay readable across restarts. Returns the key as hex (the DATASOURCE_KEY format).
 */
export function loadOrCreateKeyFile(path: string): string {
  try {
    const text = readFileSync(path, 'utf8').trim();
    if (/^[0-9a-f]{64}$/.test(text)) return text;
    throw new Error(`${path} does not hold a key (64 hex digits); remove it to generate a new one`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(path), { recursive: true });
  const key = randomBytes(SECRET_KEY_BYTES).toString('hex');
  // wx: two starts racing cannot both write a key; the loser reads the winner's.
  try {
    writeFileSync(path, `${key}\n`, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateKeyFile(path);
    throw err;
  }
}
