import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONSOLE_CSP, isServerPath, loadConsoleFiles, resolveConsolePath } from './console-files';

describe('the console build served at /', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'console-files-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(
      join(dir, 'index.html'),
      '<!doctype html><script type="module" src="/assets/a-1.js"></script>',
    );
    writeFileSync(join(dir, 'assets', 'a-1.js'), 'console.log(1)');
    writeFileSync(join(dir, 'favicon.svg'), '<svg/>');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every built file by its URL path, typed, with an ETag; hashed assets are immutable', () => {
    const files = loadConsoleFiles(dir);
    expect([...files.keys()].sort()).toEqual(['/assets/a-1.js', '/favicon.svg', '/index.html']);
    expect(files.get('/assets/a-1.js')).toMatchObject({
      type: 'text/javascript; charset=utf-8',
      immutable: true,
    });
    expect(files.get('/index.html')).toMatchObject({ type: 'text/html; charset=utf-8', immutable: false });
    expect(files.get('/index.html')?.etag).toMatch(/^"[\w-]{27}"$/);
  });

  it('is empty when nothing was built (no index.html), or no directory is known', () => {
    expect(loadConsoleFiles(join(dir, 'assets')).size).toBe(0);
    expect(loadConsoleFiles(join(dir, 'missing')).size).toBe(0);
    expect(loadConsoleFiles(undefined).size).toBe(0);
  });

  it('answers a file, index.html for client-side routes, and nothing for the server’s own paths', () => {
    const files = loadConsoleFiles(dir);
    const index = files.get('/index.html');
    expect(resolveConsolePath(files, '/')).toBe(index);
    expect(resolveConsolePath(files, '/runs/42')).toBe(index);
    expect(resolveConsolePath(files, '/workflows/wf_abc')).toBe(index);
    expect(resolveConsolePath(files, '/assets/a-1.js')).toBe(files.get('/assets/a-1.js'));
    // A missing asset or file is a 404, not the page (a stale bundle must not parse HTML as JS).
    expect(resolveConsolePath(files, '/assets/gone.js')).toBeUndefined();
    expect(resolveConsolePath(files, '/robots.txt')).toBeUndefined();
    // No path reaches the file system: a traversal is just an unknown name.
    expect(resolveConsolePath(files, '/../package.json')).toBeUndefined();
    for (const path of ['/api/v1/workflows', '/api/docs', '/API/v1', '/health', '/metrics', '/api']) {
      expect(isServerPath(path)).toBe(true);
      expect(resolveConsolePath(files, path)).toBeUndefined();
    }
    expect(isServerPath('/apiary')).toBe(false);
  });

  it('allows scripts, styles and calls from this server only: no inline script, no eval, no framing', () => {
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).toContain("frame-ancestors 'none'");
    expect(CONSOLE_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  });
});
