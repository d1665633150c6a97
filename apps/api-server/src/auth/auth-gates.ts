import { Logger, type INestApplication } from '@nestjs/common';
import { PORPOISE_CONFIG, type ApiServerConfig } from '@porpoise/common';
import { AuditRepository } from '@porpoise/dao';
import type { NextFunction, Request, Response } from 'express';
import { STATUS_CODES } from 'node:http';
import { ApiExceptionFilter, type ErrorBody } from '../common/api-exception.filter';
import { ApiAuthenticator } from './authenticator.service';
import { auditRouteOf, setPrincipal, type Principal } from './principal';
import {
  CHANGING_METHODS,
  hasBody,
  isJsonMediaType,
  isLoopbackHost,
  loopbackHostAccepted,
} from './request-checks';

/** The longest route an audit row keeps (an unmatched path is the client's text). */
const MAX_ROUTE_LENGTH = 500;
/** The request headers a configured browser origin may send. */
const CORS_HEADERS = ['Authorization', 'Content-Type', 'Idempotency-Key'];

const logger = new Logger('ApiAuth');

function refuse(res: Response, status: number, message: string): void {
  const body: ErrorBody = { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message };
  res.status(status).json(body);
}

/** /api/v1 and below, however Express would match it (its routing ignores case). */
function isApiV1(req: Request): boolean {
  const path = req.path.toLowerCase();
  return path === '/api/v1' || path.startsWith('/api/v1/');
}

/**
 * The checks that run as Express middleware ahead of the body parser (configureApiApp installs
 * them in this order), so a caller without a token never makes the server parse a body:
 *
 * 1. Host (421): when the API listens on loopback, only a loopback Host is served (a web page
 *    on a rebound DNS name would otherwise reach a local `npm start` as same-origin).
 * 2. CORS: only when CORS_ORIGINS is set, for those origins (preflights are answered here,
 *    without a token, as browsers send none on them).
 * 3. Authentication (401) on /api/v1; the principal is kept on the request for ScopeGuard,
 *    and a call that changes something gets its audit row once the response is sent.
 * 4. JSON only (415): a changing call with a body of another type (a form, text/plain,
 *    multipart: what a web page may send cross-site without a preflight) is refused unparsed.
 */
export function installAuthGates(app: INestApplication): void {
  const config = app.get<ApiServerConfig>(PORPOISE_CONFIG);
  const authenticator = app.get(ApiAuthenticator);
  const audit = app.get(AuditRepository);
  const errors = new ApiExceptionFilter();

  if (isLoopbackHost(config.bindHost)) {
    app.use((req: Request, res: Response, next: NextFunction) => {
      if (loopbackHostAccepted(req.headers.host)) return next();
      refuse(
        res,
        421,
        `this API listens on ${config.bindHost} and serves only loopback Host names ` +
          '(localhost, 127.0.0.1, [::1]); use one of them',
      );
    });
  }

  if (config.corsOrigins.length > 0) {
    app.enableCors({
      origin: [...config.corsOrigins],
      allowedHeaders: CORS_HEADERS,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      // Bearer tokens only: no cookies, so no credentials mode.
      credentials: false,
      maxAge: 600,
    });
  }

  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!isApiV1(req)) return next();
    authenticator.authenticate(req.headers.authorization).then(
      (result) => {
        // A 401 is answered here and never audited: whoever floods the API without a token
        // would otherwise fill the audit table at will.
        if ('problem' in result) return refuse(res, 401, result.problem);
        setPrincipal(req, result.principal);
        if (CHANGING_METHODS.has(req.method)) auditWhenSent(req, res, result.principal);
        next();
      },
      (err: unknown) => {
        // Outside Nest's routes, so not through its filter: the same JSON answer, here (a lost
        // database is a 503, anything else a 500 that is logged, never shown).
        const { status, message } = errors.describe(err);
        refuse(res, status, message);
      },
    );
  });

  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!isApiV1(req) || !CHANGING_METHODS.has(req.method)) return next();
    if (!hasBody(req.headers) || isJsonMediaType(req.headers['content-type'])) return next();
    refuse(
      res,
      415,
      `request body must be application/json, got ${JSON.stringify(req.headers['content-type'] ?? 'no Content-Type')}`,
    );
  });

  /** Writes the audit row after the response: who, what, when, and the status sent. */
  function auditWhenSent(req: Request, res: Response, principal: Principal): void {
    res.once('finish', () => {
      // The guard noted the route pattern when a route matched; otherwise (404, 415, a body
      // the parser refused) the path itself, cut short. Never the body, never a header.
      const noted = auditRouteOf(req);
      void audit
        .record({
          tokenId: principal.tokenId,
          tokenName: principal.name,
          method: req.method,
          route: storable((noted?.route ?? req.path).slice(0, MAX_ROUTE_LENGTH)),
          target: noted?.target == null ? null : storable(noted.target),
          status: res.statusCode,
        })
        .catch((err: Error) => logger.error(`audit row not written: ${err.message}`));
    });
  }
}

/**
 * Text Postgres can store: a NUL (a path or id with %00 in it) would make the INSERT fail, and
 * the request would go unaudited. It becomes U+FFFD, so the row says something odd was sent.
 */
export function storable(text: string): string {
  return text.replaceAll('\u0000', '\uFFFD');
}
