import { randomBytes } from 'node:crypto';
import { deriveDatasourceKey, openSecret, sealSecret, SecretBoxError } from './secret-box';

describe('secret box', () => {
  const key = randomBytes(32);
  const url = 'postgres://app:s3cr3t-pa55@db.internal:5432/sales';

  it('round-trips, and the sealed form does not contain the secret', () => {
    const sealed = sealSecret(key, url);
    expect(sealed.toString('utf8')).not.toContain('s3cr3t-pa55');
    expect(sealed.toString('latin1')).not.toContain('s3cr3t-pa55');
    expect(openSecret(key, sealed)).toBe(url);
  });

  it('seals the same secret differently each time (random IV)', () => {
    expect(sealSecret(key, url).equals(sealSecret(key, url))).toBe(false);
  });

  it('refuses another key, a changed byte and foreign data with a SecretBoxError', () => {
    const sealed = sealSecret(key, url);
    expect(() => openSecret(randomBytes(32), sealed)).toThrow(SecretBoxError);
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    expect(() => openSecret(key, tampered)).toThrow(SecretBoxError);
    expect(() => openSecret(key, Buffer.from('hello'))).toThrow(/unknown format/);
    expect(() => sealSecret(randomBytes(16), url)).toThrow(/32 bytes/);
  });

  it('derives the same key from the same cluster secret, and another from another', () => {
    const a = deriveDatasourceKey('cluster-secret-aaaaaaaa');
    expect(a).toHaveLength(32);
    expect(deriveDatasourceKey('cluster-secret-aaaaaaaa').equals(a)).toBe(true);
    expect(deriveDatasourceKey('cluster-secret-bbbbbbbb').equals(a)).toBe(false);
    expect(openSecret(deriveDatasourceKey('cluster-secret-aaaaaaaa'), sealSecret(a, url))).toBe(url);
  });
});
