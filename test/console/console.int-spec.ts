/**
 * The web console (DESIGN.md section 13) in a real headless Chromium against a real Porpoise: a
 * standalone node from the built code (embedded Postgres, API server, master and worker in one
 * process), serving the console build at /. The browser signs in, creates a workflow (after the
 * API refused a broken one, its message shown), sees its DAG, triggers it, watches every node turn
 * green, reads a task's log, follows the log of a long run, stops it, and sees the API's refusal
 * of an action that does not apply. Screenshots go to docs/console/ (the README shows them) with
 * UPDATE_SCREENSHOTS=1.
 * Skipped, with the reason, where there is no Chromium (scripts/install-test-deps.sh installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { describeUnless, freePort, stopProcess, waitFor } from '@porpoise/test-harness';

const ROOT = join(__dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'apps', 'standalone', 'src', 'main.js');
/**
 * The screenshots: the README's ones in docs/console/ with UPDATE_SCREENSHOTS=1, else a scratch
 * directory (taken either way; a plain `npm test` leaves the checkout clean).
 */
const SHOTS =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? join(ROOT, 'docs', 'console')
    : join(tmpdir(), `porpoise-console-shots-${process.pid}`);
const TOKEN = 'console-test-admin-token-0123456789abcdef';

/** Debian's chromium (or CHROMIUM_PATH); the test needs a browser, not a download. */
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => p !== undefined && p !== '' && existsSync(p),
);
const skipReason = CHROMIUM
  ? undefined
  : 'no Chromium at /usr/bin/chromium (scripts/install-test-deps.sh installs Debian\'s "chromium")';

describeUnless(skipReason)('the web console in headless Chromium (a standalone node)', () => {
  let node: ChildProcess | undefined;
  let output = '';
  let scratch = '';
  let base = '';
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** What the page's console and errors said: a CSP violation or an uncaught error fails the test. */
  const problems: string[] = [];
  /** Answers of the run page's polls: 304 while nothing changed (If-None-Match). */
  const runPolls: number[] = [];

  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const shot = (name: string, mask: Locator[] = []) =>
    page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true, mask });
  const watch = (p: Page) => {
    p.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
    });
    p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  };
  /** The data-state of a task's node in the DAG. */
  const nodeState = (name: string) =>
    page.locator(`[data-testid="dag-node-${name}"]`).getAttribute('data-state', { timeout: 5000 });
  const waitForNodeState = async (name: string, state: string, timeoutMs = 60_000) =>
    waitFor(
      `task ${name} to be ${state} in the DAG`,
      async () => (await nodeState(name)) === state,
      timeoutMs,
      250,
    );

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'porpoise-console-'));
    // The embedded Postgres runs as its own user (the node is root here): it must pass through.
    chmodSync(scratch, 0o711);
    mkdirSync(SHOTS, { recursive: true });
    const [apiPort, masterPort, workerPort] = [await freePort(), await freePort(), await freePort()];
    base = `http://127.0.0.1:${apiPort}`;
    node = spawn(process.execPath, [MAIN], {
      cwd: scratch,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        DATA_DIR: join(scratch, 'data'),
        ADMIN_TOKEN: TOKEN,
        API_PORT: String(apiPort),
        MASTER_PORT: String(masterPort),
        WORKER_PORT: String(workerPort),
        METRICS_PORT: '0',
        // The tasks here only echo and sleep; as root, they run as the test's own user.
        ...(process.getuid?.() === 0 ? { TASK_USER: 'root' } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-30_000));
    node.stdout?.on('data', keep);
    node.stderr?.on('data', keep);
    // Ready, or failed at once when the node exits (its output says why).
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`standalone not ready in 180 s: ${output}`)), 180_000);
      const check = () => {
        if (!output.includes('Porpoise is ready at')) return;
        clearTimeout(timer);
        resolve();
      };
      node?.stdout?.on('data', check);
      node?.stderr?.on('data', check);
      node?.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`standalone exited ${code}: ${output}`));
      });
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
    watch(page);
    page.on('response', (r) => {
      if (/\/api\/v1\/workflow-instances\/\d+$/.test(new URL(r.url()).pathname)) runPolls.push(r.status());
    });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    if (node) await stopProcess(node, 'SIGTERM', 30_000);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    if (process.env.UPDATE_SCREENSHOTS !== '1') rmSync(SHOTS, { recursive: true, force: true });
  }, 60_000);

  afterEach(() => {
    // No Content-Security-Policy violation, no uncaught error, on any page the test opened.
    expect(problems.splice(0)).toEqual([]);
  });

  it('serves the build at / without a token, under a strict CSP; /api/v1 still needs one; the Host check holds', async () => {
    const index = await fetch(`${base}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/text\/html/);
    const csp = index.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const html = await index.text();
    // No inline script: every <script> has a src on this server.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc="\/)[^>]*>/);
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const js = await fetch(`${base}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toContain('immutable');
    // A client-side route is the same page (reload of /runs/7 works); a missing asset is not.
    expect((await fetch(`${base}/runs/7`)).headers.get('content-type')).toMatch(/text\/html/);
    expect((await fetch(`${base}/assets/missing.js`)).status).toBe(404);
    expect((await fetch(`${base}/api/v1/workflows`)).status).toBe(401);
    // Node's fetch will not send another Host; a raw request does.
    const { request } = await import('node:http');
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request(`${base}/`, { headers: { host: 'rebound.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(421);
  });

  it('signs in with a token (a wrong one is refused with the API’s message)', async () => {
    await page.goto(`${base}/`);
    await page.fill('[data-testid="token-input"]', 'not-a-valid-token-at-all');
    await page.click('[data-testid="sign-in"]');
    await page.locator('[role="alert"]').filter({ hasText: '401' }).waitFor();
    await shot('sign-in');
    await page.fill('[data-testid="token-input"]', TOKEN);
    await page.click('[data-testid="sign-in"]');
    await page.locator('[data-testid="workflows-table"]').waitFor();
    expect(await page.evaluate('sessionStorage.getItem("porpoise.token")')).toBe(TOKEN);
  });

  it('creates a workflow as JSON: the API’s validation message is shown, then the DAG is drawn', async () => {
    await page.click('[data-testid="new-workflow"]');
    const broken = {
      name: 'console-etl',
      description: 'made in the browser test',
      params: { day: 'today' },
      tasks: [
        { name: 'extract', type: 'SHELL', command: 'echo extracting ${day}' },
        { name: 'transform', type: 'SHELL', command: 'echo transforming' },
        { name: 'load', type: 'SHELL', command: 'echo "loaded ${day}"' },
      ],
      edges: [
        { from: 'extract', to: 'transform' },
        { from: 'transform', to: 'load' },
        { from: 'load', to: 'publish' },
      ],
    };
    await page.fill('[data-testid="wf-json"]', JSON.stringify(broken, null, 2));
    await page.click('[data-testid="save-workflow"]');
    const refusal = page.locator('[data-testid="save-error"]');
    await refusal.waitFor();
    expect(await refusal.textContent()).toMatch(/^400: .*publish/);
    await shot('workflow-validation');

    const fixed = { ...broken, edges: broken.edges.slice(0, 2) };
    await page.fill('[data-testid="wf-json"]', JSON.stringify(fixed, null, 2));
    await page.click('[data-testid="save-workflow"]');
    await page.waitForURL(/\/workflows\/wf_/);
    for (const name of ['extract', 'transform', 'load']) {
      await page.locator(`[data-testid="dag-node-${name}"]`).waitFor();
    }
    // Laid out left to right in dependency order.
    const x = async (name: string) =>
      (await page.locator(`[data-testid="dag-node-${name}"]`).boundingBox())?.x ?? Number.NaN;
    expect(await x('extract')).toBeLessThan(await x('transform'));
    expect(await x('transform')).toBeLessThan(await x('load'));
    expect(await page.locator('.react-flow__edge').count()).toBe(2);
    await shot('workflow');
  });

  it('triggers it with params, watches every task turn green, and reads a task’s log', async () => {
    await page.fill('[data-testid="run-params"]', 'day=2026-12-02');
    await page.click('[data-testid="trigger"]');
    await page.waitForURL(/\/runs\/\d+$/);
    for (const name of ['extract', 'transform', 'load']) await waitForNodeState(name, 'SUCCESS');
    await page
      .locator('[data-testid="state"]', { hasText: /^SUCCESS$/ })
      .first()
      .waitFor();
    await page.click('[data-testid="log-load-1"]');
    await waitFor(
      'the log of load',
      async () =>
        (await page.locator('[data-testid="task-log"]').textContent())?.includes('loaded 2026-12-02'),
      30_000,
      250,
    );
    await shot('run');
    await page.click('[data-testid="tab-gantt"]');
    await page.locator('[data-testid="gantt"] .gantt-bar').nth(2).waitFor();
    await shot('run-gantt');
  });

  it('follows the log of a long run, stops it, and shows the API’s refusal of a resume', async () => {
    const wf = await call<{ code: string }>('POST', '/workflows', {
      name: 'console-long',
      tasks: [
        { name: 'setup', type: 'SHELL', command: 'echo ready' },
        {
          name: 'long',
          type: 'SHELL',
          command: 'for i in $(seq 1 600); do echo "tick $i"; sleep 0.5; done',
        },
      ],
      edges: [{ from: 'setup', to: 'long' }],
    });
    await page.goto(`${base}/workflows/${wf.code}`);
    await page.click('[data-testid="trigger"]');
    await page.waitForURL(/\/runs\/\d+$/);
    await waitForNodeState('setup', 'SUCCESS');
    await waitForNodeState('long', 'RUNNING_EXECUTION');
    // The diagnosis says what holds each unfinished task: nothing, it runs.
    await page.locator('[data-testid="diagnosis"] tr', { hasText: /long.*it runs/ }).waitFor();
    await page.click('[data-testid="log-long-1"]');
    const log = page.locator('[data-testid="task-log"]');
    // Following: lines written after the log was opened appear without a reload.
    await waitFor(
      'tick 2 in the log',
      async () => (await log.textContent())?.includes('tick 2'),
      30_000,
      250,
    );
    await waitFor(
      'tick 6 in the log',
      async () => (await log.textContent())?.includes('tick 6'),
      30_000,
      250,
    );
    await shot('run-following-log');
    // While the long task only writes its log, the run does not change: the polls are 304s.
    expect(runPolls.filter((s) => s === 304).length).toBeGreaterThan(0);

    await page.click('[data-testid="control-stop"]');
    await page
      .locator('[data-testid="state"]', { hasText: /^STOP$/ })
      .first()
      .waitFor({ timeout: 60_000 });
    await waitForNodeState('long', 'KILL');

    // Resume applies to a paused run only: the API says so (409), and the page shows it.
    await page.click('[data-testid="control-resume"]');
    const refusal = page.locator('[data-testid="control-error"]');
    await refusal.waitFor();
    expect(await refusal.textContent()).toMatch(/^409: /);
    await shot('run-stopped-refusal');
  });

  it('reruns a finished run: every task runs again as attempt 2, and turns green again', async () => {
    await page.goto(`${base}/runs/1`);
    await waitForNodeState('load', 'SUCCESS');
    await page.click('[data-testid="control-rerun"]');
    await page.locator('[data-testid="notice"]', { hasText: 'rerun: accepted' }).waitFor();
    await page.locator('[data-testid="log-load-2"]').waitFor({ timeout: 60_000 });
    for (const name of ['extract', 'transform', 'load']) await waitForNodeState(name, 'SUCCESS');
  });

  it('pauses and resumes a run, and resumes the failed tasks of a failed one', async () => {
    const wf = await call<{ code: string }>('POST', '/workflows', {
      name: 'console-pause',
      tasks: [
        { name: 'first', type: 'SHELL', command: 'sleep 2' },
        { name: 'second', type: 'SHELL', command: 'echo second' },
      ],
      edges: [{ from: 'first', to: 'second' }],
    });
    const paused = await call<{ workflowInstanceId: number }>('POST', `/workflows/${wf.code}/runs`, {});
    await page.goto(`${base}/runs/${paused.workflowInstanceId}`);
    await waitForNodeState('first', 'RUNNING_EXECUTION');
    await page.click('[data-testid="control-pause"]');
    // The running task finishes; nothing new starts.
    await page
      .locator('[data-testid="state"]', { hasText: /^PAUSE$/ })
      .first()
      .waitFor({ timeout: 60_000 });
    expect(await nodeState('second')).toBe('NOT_STARTED');
    await page.click('[data-testid="control-resume"]');
    await page.locator('[data-testid="notice"]', { hasText: 'resume: accepted' }).waitFor();
    await waitForNodeState('second', 'SUCCESS');

    const failing = await call<{ code: string }>('POST', '/workflows', {
      name: 'console-fail',
      tasks: [{ name: 'flaky', type: 'SHELL', command: 'exit 3' }],
    });
    const failed = await call<{ workflowInstanceId: number }>('POST', `/workflows/${failing.code}/runs`, {});
    await page.goto(`${base}/runs/${failed.workflowInstanceId}`);
    await waitForNodeState('flaky', 'FAILURE');
    await page
      .locator('[data-testid="state"]', { hasText: /^FAILURE$/ })
      .first()
      .waitFor({ timeout: 60_000 });
    await page.click('[data-testid="control-resume-failed"]');
    await page.locator('[data-testid="notice"]', { hasText: 'resume-failed: accepted' }).waitFor();
    await page.locator('[data-testid="log-flaky-2"]').waitFor({ timeout: 60_000 });
  });

  it('edits a workflow with the form (a field and a new task) and stores a new version', async () => {
    await page.click('[data-testid="nav-workflows"]');
    await page.click('[data-testid="workflow-console-etl"]');
    await page.click('[data-testid="edit-workflow"]');
    await page.fill('[data-testid="wf-description"]', 'edited in the browser');
    await page.fill('[data-testid="new-task-name"]', 'notify');
    await page.fill('[data-testid="new-task-command"]', 'echo done');
    await page.selectOption('[data-testid="new-task-after"]', 'load');
    await page.click('[data-testid="add-task"]');
    await page.locator('[data-testid="dag-node-notify"]').waitFor();
    expect(JSON.parse((await page.inputValue('[data-testid="wf-json"]')) || '{}')).toMatchObject({
      description: 'edited in the browser',
      edges: expect.arrayContaining([{ from: 'load', to: 'notify' }]),
    });
    await page.click('[data-testid="save-workflow"]');
    await page.locator('[data-testid="notice"]', { hasText: 'Saved as version 2' }).waitFor();
    await page.click('[data-testid="edit-workflow"]');
    await page.locator('h2', { hasText: 'console-etl · v2' }).waitFor();
    await page.locator('[data-testid="dag-node-notify"]').waitFor();
  });

  it('shows the first 4 MiB of a big log and says how to read the rest', async () => {
    const wf = await call<{ code: string }>('POST', '/workflows', {
      name: 'console-big-log',
      tasks: [{ name: 'big', type: 'SHELL', command: 'yes porpoise | head -c 6000000' }],
    });
    const run = await call<{ workflowInstanceId: number }>('POST', `/workflows/${wf.code}/runs`, {});
    await page.goto(`${base}/runs/${run.workflowInstanceId}`);
    await waitForNodeState('big', 'SUCCESS');
    await page.click('[data-testid="log-big-1"]');
    await page.locator('.notice', { hasText: 'shows the first 4 MiB' }).waitFor({ timeout: 30_000 });
    const shown = (await page.locator('[data-testid="task-log"]').textContent())?.length;
    expect(shown).toBe(4 * 1024 * 1024);
  });

  it('signs in directly from a /#token= link, and drops the token from the address bar', async () => {
    const other = await context.browser()!.newContext({ viewport: { width: 1400, height: 900 } });
    const tab = await other.newPage();
    watch(tab);
    await tab.goto(`${base}/runs#token=${encodeURIComponent(TOKEN)}`);
    await tab.locator('[data-testid="runs-table"]').waitFor();
    expect(tab.url()).toBe(`${base}/runs`);
    await tab.locator('[data-testid="runs-table"] tbody tr').nth(1).waitFor();
    // The state filter: only the stopped run is left.
    await tab.selectOption('[data-testid="filter-state"]', 'STOP');
    await waitFor(
      'only STOP runs listed',
      async () => {
        const states = await tab
          .locator('[data-testid="runs-table"] [data-testid="state"]')
          .allTextContents();
        return states.length === 1 && states[0] === 'STOP';
      },
      10_000,
      200,
    );
    expect(tab.url()).toBe(`${base}/runs?state=STOP`);
    await other.close();
  });

  it('shows schedules with a readable cron preview, the cluster, tokens and the audit trail', async () => {
    await page.click('[data-testid="nav-schedules"]');
    const option = page.locator('[data-testid="schedule-workflow"] option', { hasText: 'console-etl' });
    await option.waitFor({ state: 'attached' });
    await page.selectOption('[data-testid="schedule-workflow"]', (await option.getAttribute('value')) ?? '');
    await page.fill('[data-testid="schedule-cron"]', '30 2 * * 1-5');
    expect(await page.locator('[data-testid="cron-preview"]').textContent()).toMatch(
      /02:30.*Monday through Friday/,
    );
    await page.click('[data-testid="create-schedule"]');
    await page.locator('[data-testid="schedules-table"] tbody tr').first().waitFor();
    const toggle = page.locator('[data-testid^="toggle-schedule-"]').first();
    expect(await toggle.textContent()).toMatch(/^Enabled/);
    await toggle.click();
    await waitFor(
      'the schedule disabled',
      async () => /^Disabled/.test((await toggle.textContent()) ?? ''),
      10_000,
      200,
    );
    await shot('schedules');

    // A backfill of two days: its runs and progress are shown.
    await page.selectOption('[data-testid="backfill-workflow"]', (await option.getAttribute('value')) ?? '');
    await page.fill('[data-testid="backfill-start"]', '2026-01-01');
    await page.fill('[data-testid="backfill-end"]', '2026-01-02');
    await page.fill('[data-testid="backfill-cron"]', '0 0 * * *');
    await page.click('[data-testid="start-backfill"]');
    await page.locator('[data-testid="notice"]', { hasText: /Backfill \d+: 2 runs/ }).waitFor();
    await page
      .locator('[data-testid="backfill-status"]', {
        hasText: /SUCCESS · 2\/2 created · 0 running · 2 succeeded/,
      })
      .waitFor({ timeout: 60_000 });

    await page.click('[data-testid="nav-cluster"]');
    await page.locator('[data-testid="masters-table"] tbody tr').first().waitFor();
    await page.locator('[data-testid="workers-table"] tbody tr').first().waitFor();
    await shot('cluster');

    await page.click('[data-testid="nav-tokens"]');
    await page.fill('[data-testid="token-name"]', 'ci-reader');
    await page.click('text=Create token');
    expect(await page.locator('[data-testid="created-token"]').textContent()).toMatch(/pp_/);
    await page.locator('[data-testid="tokens-table"] td', { hasText: 'ci-reader' }).waitFor();
    // The new token's secret is blacked out in the committed picture (it died with the test's database).
    await shot('tokens', [page.locator('[data-testid="created-token"] code')]);

    await page.click('[data-testid="nav-audit"]');
    await page
      .locator('[data-testid="audit-table"] td', { hasText: '/api/v1/workflows/:code/runs' })
      .first()
      .waitFor();
    await shot('audit');
  });
});
