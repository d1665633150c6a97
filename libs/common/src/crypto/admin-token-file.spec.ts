import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_TOKEN_PATTERN } from './api-token';
import { loadOrCreateAdminTokenFile } from './admin-token-file';

describe('loadOrCreateAdminTokenFile', () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'porpoise-admin-token-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('generates a token once (file 600, directory 700) and reuses it', () => {
    const path = join(root, 'data', 'admin-token');
    const first = loadOrCreateAdminTokenFile(path);
    expect(first.created).toBe(true);
    expect(first.token).toMatch(API_TOKEN_PATTERN);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(root, 'data')).mode & 0o777).toBe(0o700);
    expect(loadOrCreateAdminTokenFile(path)).toEqual({ token: first.token, created: false });
  });

  it('refuses a file that holds no token', () => {
    const path = join(root, 'admin-token');
    writeFileSync(path, 'short\n');
    expect(() => loadOrCreateAdminTokenFile(path)).toThrow(/does not hold an admin token/);
  });
});
