import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import { STATUS_CODES } from 'node:http';
import { ApiError } from './api-errors';

export interface ErrorBody {
  readonly statusCode: number;
  readonly error: string;
  readonly message: string;
}

/** Postgres error codes (and socket errors) that mean "the database is not there", not "your request is wrong". */
const DB_UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

/**
 * Every error leaves the API as `{ statusCode, error, message }`: our named errors with
 * their status, Nest's HttpExceptions (unknown route, malformed JSON) and body-parser's
 * errors (too large, bad charset) with theirs, a lost database as 503, and anything else as
 * a 500 that is logged with its stack but never shown to the client.
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('ApiExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const { status, message } = this.describe(exception);
    if (res.headersSent) {
      // Part of a response already went out (a streamed body): all we can do is cut it.
      res.end();
      return;
    }
    const body: ErrorBody = { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message };
    res.status(status).json(body);
  }

  describe(exception: unknown): { status: number; message: string } {
    if (exception instanceof ApiError) return { status: exception.status, message: exception.message };
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const message = httpExceptionMessage(exception);
      // Nest turns body-parser's SyntaxError into a plain 400 carrying the parser's message.
      if (status === 400 && /JSON/.test(message)) {
        return { status, message: `malformed JSON body: ${message}` };
      }
      return { status, message };
    }
    const err = exception as {
      status?: unknown;
      expose?: unknown;
      type?: unknown;
      message?: unknown;
      code?: unknown;
    };
    // body-parser (http-errors): 413 too large, 415 unsupported charset/encoding, 400 aborted...
    if (
      typeof err?.status === 'number' &&
      err.status >= 400 &&
      err.status < 500 &&
      err.expose === true &&
      typeof err.message === 'string'
    ) {
      const message =
        err.type === 'entity.too.large' ? `request body is too large (${err.message})` : err.message;
      return { status: err.status, message };
    }
    if (isDatabaseUnavailable(exception)) {
      this.logger.warn(`database unavailable: ${errorText(exception)}`);
      return { status: 503, message: 'database unavailable' };
    }
    this.logger.error(
      `unhandled error: ${errorText(exception)}`,
      exception instanceof Error ? exception.stack : undefined,
    );
    return { status: 500, message: 'internal error' };
  }
}

function httpExceptionMessage(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) return message.map(String).join('; ');
  return typeof message === 'string' ? message : exception.message;
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (DB_UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
  return /Connection terminated|timeout exceeded when trying to connect/.test(err.message);
}
