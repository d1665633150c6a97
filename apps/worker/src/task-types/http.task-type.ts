import { Injectable } from '@nestjs/common';
import { TASK_PAYLOAD_LIMITS, type TaskSpec } from '@porpoise/rpc';
import { redactUrl } from '../domain/redact';
import { describe, invalidPayload, PayloadFields } from './payload';
import {
  failed,
  succeeded,
  type TaskLogSink,
  type TaskRunContext,
  type TaskRunResult,
  type TaskType,
} from './task-type';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
/** The most of a response body that goes to the task log. */
export const HTTP_LOG_BODY_BYTES = 64 * 1024;
/** An RFC 9110 token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A checked HTTP payload (libs/rpc HttpTaskPayload). */
export interface HttpRequestSpec {
  readonly method: (typeof HTTP_METHODS)[number];
  readonly url: string;
  readonly headers: readonly [string, string][];
  readonly body: string | undefined;
  /** undefined: any 2xx. */
  readonly expectStatus: readonly number[] | undefined;
  /** 0: no limit of its own. */
  readonly timeoutMs: number;
}

/**
 * HTTP (DESIGN.md section 9): one request with Node's fetch. The task fails when the status is not
 * expected (default: any 2xx). The request line (password hidden), the status line and the first
 * 64 KiB of the body go to the task log; headers do not (they often carry credentials). Output
 * `status`. A Kill, the task's timeout or the request's own `timeoutMs` aborts the request.
 */
@Injectable()
export class HttpTaskType implements TaskType<HttpRequestSpec> {
  readonly type = 'HTTP' as const;
  readonly startsProcess = false;

  parsePayload(spec: TaskSpec): HttpRequestSpec {
    const f = PayloadFields.of(spec, { emptyAllowed: false });
    const given = f.string('method', { nonEmpty: true });
    const method = HTTP_METHODS.find((m) => m === given.toUpperCase());
    if (!method) {
      invalidPayload('method', `must be one of ${HTTP_METHODS.join(', ')}, got ${describe(given)}`);
    }
    const url = f.string('url', { nonEmpty: true, maxLength: TASK_PAYLOAD_LIMITS.httpUrlLength });
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      parsed = undefined;
    }
    // The URL itself is never echoed: it may carry credentials.
    if (parsed?.protocol !== 'http:' && parsed?.protocol !== 'https:') {
      invalidPayload('url', 'must be an absolute http:// or https:// URL');
    }
    // fetch refuses them (and its error would show them): credentials go in a header.
    if (parsed.username !== '' || parsed.password !== '') {
      invalidPayload('url', 'must not hold credentials (user:password@); send an Authorization header');
    }
    const headers = f.stringMap('headers') ?? [];
    if (headers.length > TASK_PAYLOAD_LIMITS.httpHeaders) {
      invalidPayload(
        'headers',
        `must have at most ${TASK_PAYLOAD_LIMITS.httpHeaders} entries, got ${headers.length}`,
      );
    }
    for (const [name, value] of headers) {
      if (!HEADER_NAME.test(name)) invalidPayload('headers', `name ${describe(name)} is not an HTTP token`);
      if (['\r', '\n', '\u0000'].some((c) => value.includes(c))) {
        invalidPayload(`headers.${name}`, 'must not contain CR, LF or NUL');
      }
      if (value.length > TASK_PAYLOAD_LIMITS.httpHeaderValueLength) {
        invalidPayload(
          `headers.${name}`,
          `must be at most ${TASK_PAYLOAD_LIMITS.httpHeaderValueLength} characters`,
        );
      }
    }
    const body = f.string('body', { optional: true });
    if (body !== undefined && (method === 'GET' || method === 'HEAD')) {
      invalidPayload('body', `is not allowed with ${method}`);
    }
    const expectStatus = f.integers('expectStatus', 100, 599, TASK_PAYLOAD_LIMITS.expectStatus);
    const timeoutMs = f.integer('timeoutMs', 0, MAX_TIMER_MS) ?? 0;
    f.finish();
    return {
      method,
      url,
      headers,
      body,
      // An empty list means the default, as an absent one does.
      expectStatus: expectStatus && expectStatus.length > 0 ? expectStatus : undefined,
      timeoutMs,
    };
  }

  async run(ctx: TaskRunContext, req: HttpRequestSpec): Promise<TaskRunResult> {
    const { log, clock } = ctx;
    await log.write(`${req.method} ${redactUrl(req.url)}\n`);
    const own = new AbortController();
    let timedOut = false;
    const timer =
      req.timeoutMs > 0
        ? clock.setTimeout(() => {
            timedOut = true;
            own.abort();
          }, req.timeoutMs)
        : undefined;
    let status: number | undefined;
    try {
      const response = await fetch(req.url, {
        method: req.method,
        headers: [...req.headers],
        body: req.body,
        signal: AbortSignal.any([ctx.signal, own.signal]),
      });
      status = response.status;
      await log.write(`HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}\n`);
      await logBody(response, log);
      const outputs = { status: String(status) };
      if (req.expectStatus ? req.expectStatus.includes(status) : status >= 200 && status <= 299) {
        return succeeded(outputs);
      }
      const expected = req.expectStatus ? req.expectStatus.join(', ') : 'any 2xx';
      return failed(`HTTP status ${status} is not expected (expected ${expected})`, outputs);
    } catch (err) {
      const outputs: Record<string, string> = status === undefined ? {} : { status: String(status) };
      // A stop of the worker's (Kill, the task's timeout) is reported as that stop.
      if (ctx.signal.aborted) return failed('HTTP request aborted', outputs);
      if (timedOut) return failed(`HTTP request timed out after ${req.timeoutMs} ms`, outputs);
      return failed(`HTTP request failed: ${reason(err)}`, outputs);
    } finally {
      clock.clearTimeout(timer);
    }
  }
}

/** The first HTTP_LOG_BODY_BYTES of the body to the log; the rest is not read. */
async function logBody(response: Response, log: TaskLogSink): Promise<void> {
  if (!response.body) return;
  // Node's fetch types the body loosely; its chunks are bytes.
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  let kept = 0;
  let last = 0x0a;
  let truncated = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const room = HTTP_LOG_BODY_BYTES - kept;
      const part = value.length > room ? value.subarray(0, room) : value;
      if (part.length > 0) {
        await log.write(part);
        kept += part.length;
        last = part[part.length - 1] ?? last;
      }
      if (value.length > room) {
        truncated = true;
        break;
      }
    }
  } finally {
    if (truncated) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
  if (last !== 0x0a) await log.write('\n');
  if (truncated) await log.write(`[porpoise] body truncated after ${HTTP_LOG_BODY_BYTES} bytes\n`);
}

/** fetch's own message is "fetch failed"; the cause says what (ECONNREFUSED, a bad header ...). */
function reason(err: unknown): string {
  // Duck-typed: fetch's errors may come from another realm than this module's Error.
  const cause = messageOf((err as { cause?: unknown } | null)?.cause);
  return cause ?? messageOf(err) ?? String(err);
}

function messageOf(value: unknown): string | undefined {
  const message = (value as { message?: unknown } | null | undefined)?.message;
  return typeof message === 'string' && message !== '' ? message : undefined;
}
