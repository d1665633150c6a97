import {
  API_TOKEN_PATTERN,
  generateApiToken,
  hashApiToken,
  isApiScope,
  scopeAllows,
  tokensEqual,
} from './api-token';

describe('API tokens', () => {
  it('generates pp_ tokens of 32 random bytes, each different', () => {
    const a = generateApiToken();
    const b = generateApiToken();
    expect(a).toMatch(API_TOKEN_PATTERN);
    expect(Buffer.from(a.slice(3), 'base64url')).toHaveLength(32);
    expect(a).not.toBe(b);
  });

  it('hashes with SHA-256', () => {
    expect(hashApiToken('abc').toString('hex')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('compares tokens of any lengths', () => {
    const t = generateApiToken();
    expect(tokensEqual(t, t)).toBe(true);
    expect(tokensEqual(t, `${t}x`)).toBe(false);
    expect(tokensEqual('', t)).toBe(false);
  });

  it('lets admin do everything and every other scope only itself', () => {
    expect(scopeAllows(['admin'], 'run')).toBe(true);
    expect(scopeAllows(['read'], 'read')).toBe(true);
    expect(scopeAllows(['read'], 'run')).toBe(false);
    expect(scopeAllows(['run', 'edit'], 'admin')).toBe(false);
    expect(scopeAllows([], 'read')).toBe(false);
    expect([isApiScope('edit'), isApiScope('root'), isApiScope(1)]).toEqual([true, false, false]);
  });
});
