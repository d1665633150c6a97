import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** Bytes of a secret-box key (AES-256). */
export const SECRET_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 1;

/** A stored secret that cannot be opened: wrong key (rotated?), or not something we sealed. */
export class SecretBoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

/**
 * Seals a secret (a data source URL with its password) for storage: AES-256-GCM with a random
 * IV; the result is version || iv || tag || ciphertext. Authenticated: a changed byte, or another
 * key, makes openSecret fail instead of returning garbage.
 */
export function sealSecret(key: Buffer, plaintext: string): Buffer {
  checkKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
}

export function openSecret(key: Buffer, sealed: Buffer): string {
  checkKey(key);
  if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) {
    throw new SecretBoxError('not a sealed secret (unknown format)');
  }
  const iv = sealed.subarray(1, 1 + IV_BYTES);
  const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([
      decipher.update(sealed.subarray(1 + IV_BYTES + TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    throw new SecretBoxError('the secret cannot be opened with this key (was DATASOURCE_KEY changed?)');
  }
}

/**
 * The data-source key of a node that was given none: derived from the cluster secret (every
 * master and API server has it), so a cluster needs no extra variable. Rotating the cluster
 * secret then makes stored data sources unreadable; set DATASOURCE_KEY to decouple them.
 */
export function deriveDatasourceKey(clusterSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', clusterSecret, 'porpoise', 'datasource-key v1', SECRET_KEY_BYTES));
}

function checkKey(key: Buffer): void {
  if (key.length !== SECRET_KEY_BYTES) throw new SecretBoxError(`a key must be ${SECRET_KEY_BYTES} bytes`);
}
