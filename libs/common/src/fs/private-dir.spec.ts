import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDir } from './private-dir';

describe('ensurePrivateDir', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'porpoise-private-dir-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const mode = (dir: string) => statSync(dir).mode & 0o777;

  it('creates a missing directory, and its parents, mode 700', () => {
    const dir = join(root, 'a', 'b');
    ensurePrivateDir(dir);
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(root, 'a'))).toBe(0o700);
  });

  it('tightens an existing one, and never adds a bit', () => {
    const open = join(root, 'open');
    ensurePrivateDir(open);
    chmodSync(open, 0o777);
    ensurePrivateDir(open);
    expect(mode(open)).toBe(0o700);
    chmodSync(open, 0o500);
    ensurePrivateDir(open);
    expect(mode(open)).toBe(0o500);
  });

  // Giving a directory to another group needs root.
  const asRoot =
    process.getuid?.() === 0
      ? it
      : (name: string, fn: () => void) => it.skip(`${name} (skipped: not running as root)`, fn);
  asRoot(
    "keeps only the search bit of a group the directory was given on purpose (the embedded Postgres's)",
    () => {
      const dir = join(root, 'shared');
      ensurePrivateDir(dir);
      chownSync(dir, 0, (process.getgid?.() ?? 0) + 4242);
      chmodSync(dir, 0o775);
      ensurePrivateDir(dir);
      expect(mode(dir)).toBe(0o710);
    },
  );

  it('refuses a path that is a file', () => {
    const file = join(root, 'file');
    writeFileSync(file, '');
    expect(() => ensurePrivateDir(file)).toThrow();
  });
});
