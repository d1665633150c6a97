/**
 * The HTTP task type against a local node:http server: status checks, what reaches the server,
 * the log (status line, body cut at 64 KiB), its own timeout (on a ManualClock) and a stop.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '@porpoise/test-harness';
import { HTTP_LOG_BODY_BYTES, HttpTaskType } from '../../src/task-types/http.task-type';
import { taskSpec, TestRun } from '../support/run-context';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

describe('HTTP task type', () => {
  const type = new HttpTaskType();
  let server: Server;
  let base: string;
  const seen: Seen[] = [];
  /** Requests the server holds without answering (for timeouts and stops). */
  const held: { req: IncomingMessage; res: ServerResponse; closed: Promise<void> }[] = [];
  const runs: TestRun[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        });
        const url = new URL(req.url ?? '/', 'http://x');
        const status = Number(url.searchParams.get('status') ?? '200');
        const size = url.searchParams.get('size');
        if (url.pathname === '/hang') {
          held.push({ req, res, closed: new Promise((r) => res.once('close', () => r())) });
          return;
        }
        res.writeHead(status, { 'content-type': 'text/plain' });
        if (size !== null) {
          // In several writes, so the client reads it in chunks.
          const body = Buffer.alloc(Number(size), 'abcdefghij');
          for (let at = 0; at < body.length; at += 10_000) res.write(body.subarray(at, at + 10_000));
          res.end();
        } else {
          res.end(url.pathname === '/nonl' ? 'no newline' : `hello from ${url.pathname}\n`);
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    for (const h of held.splice(0)) h.res.destroy();
    for (const r of runs.splice(0)) await r.dispose();
    seen.length = 0;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  async function run(payload: Record<string, unknown>, clock?: ManualClock) {
    const spec = taskSpec({ taskType: 'HTTP', payloadJson: JSON.stringify(payload) });
    const r = await TestRun.start(spec, clock);
    runs.push(r);
    return { r, result: type.run(r.ctx, type.parsePayload(spec)) };
  }

  it('succeeds on a 2xx, logs the request line, status line and body, and outputs the status', async () => {
    const { r, result } = await run({ method: 'get', url: `${base}/ok` });
    expect(await result).toEqual({ state: 'SUCCESS', exitCode: 0, message: '', outputs: { status: '200' } });
    expect(await r.text()).toBe(`GET ${base}/ok\nHTTP 200 OK\nhello from /ok\n`);
  });

  it('fails on a status that is not expected, still with the status as output', async () => {
    const { result } = await run({ method: 'GET', url: `${base}/missing?status=404` });
    expect(await result).toEqual({
      state: 'FAILURE',
      exitCode: -1,
      message: 'HTTP status 404 is not expected (expected any 2xx)',
      outputs: { status: '404' },
    });
    const listed = await run({ method: 'GET', url: `${base}/x?status=200`, expectStatus: [201, 202] });
    expect((await listed.result).message).toBe('HTTP status 200 is not expected (expected 201, 202)');
  });

  it('succeeds on a listed status, even outside 2xx', async () => {
    const { result } = await run({ method: 'GET', url: `${base}/gone?status=410`, expectStatus: [410] });
    expect(await result).toMatchObject({ state: 'SUCCESS', outputs: { status: '410' } });
  });

  it('sends the method, headers and body', async () => {
    const { r, result } = await run({
      method: 'PUT',
      url: `${base}/put`,
      headers: { 'X-Token': 'abc', 'Content-Type': 'application/json' },
      body: '{"a":1}',
    });
    expect((await result).state).toBe('SUCCESS');
    expect(seen).toEqual([
      expect.objectContaining({
        method: 'PUT',
        url: '/put',
        body: '{"a":1}',
        headers: expect.objectContaining({ 'x-token': 'abc', 'content-type': 'application/json' }),
      }),
    ]);
    // Headers are not logged: they often carry credentials.
    expect(await r.text()).not.toContain('abc');
  });

  it('logs the first 64 KiB of a larger body and says it was cut', async () => {
    const { r, result } = await run({ method: 'GET', url: `${base}/big?size=200000` });
    expect((await result).state).toBe('SUCCESS');
    const log = await r.text();
    const body = log.slice(log.indexOf('HTTP 200 OK\n') + 'HTTP 200 OK\n'.length);
    expect(body).toBe(
      `${'abcdefghij'.repeat(HTTP_LOG_BODY_BYTES / 10 + 1).slice(0, HTTP_LOG_BODY_BYTES)}\n` +
        `[porpoise] body truncated after ${HTTP_LOG_BODY_BYTES} bytes\n`,
    );
  });

  it('logs a body of exactly 64 KiB whole, and ends the log line', async () => {
    const { r, result } = await run({ method: 'GET', url: `${base}/exact?size=${HTTP_LOG_BODY_BYTES}` });
    expect((await result).state).toBe('SUCCESS');
    expect(await r.text()).toBe(
      `GET ${base}/exact?size=${HTTP_LOG_BODY_BYTES}\nHTTP 200 OK\n${Buffer.alloc(HTTP_LOG_BODY_BYTES, 'abcdefghij').toString()}\n`,
    );
    const nonl = await run({ method: 'GET', url: `${base}/nonl` });
    await nonl.result;
    expect(await nonl.r.text()).toMatch(/\nno newline\n$/);
  });

  it('fails at its own timeoutMs, aborting the request', async () => {
    const clock = new ManualClock();
    const { result } = await run({ method: 'GET', url: `${base}/hang`, timeoutMs: 500 }, clock);
    await waitUntil(() => held.length === 1);
    clock.advance(499);
    clock.advance(1);
    expect(await result).toEqual({
      state: 'FAILURE',
      exitCode: -1,
      message: 'HTTP request timed out after 500 ms',
      outputs: {},
    });
    await held[0]?.closed;
  });

  it('ends when the worker stops it (Kill, task timeout): the request is aborted', async () => {
    const { r, result } = await run({ method: 'POST', url: `${base}/hang`, body: 'x' });
    await waitUntil(() => held.length === 1);
    r.stop(2000);
    expect(await result).toMatchObject({ state: 'FAILURE', message: 'HTTP request aborted' });
    await held[0]?.closed;
  });

  it('fails with the cause when the server cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((res) => closed.close(res));
    const { result } = await run({ method: 'GET', url: `http://127.0.0.1:${port}/` });
    expect(await result).toMatchObject({
      state: 'FAILURE',
      message: expect.stringMatching(/^HTTP request failed: .*ECONNREFUSED/),
    });
  });
});

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error('condition not reached');
}
