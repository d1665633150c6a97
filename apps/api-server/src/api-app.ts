import type { INestApplication, LoggerService, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { ApiServerConfig } from '@porpoise/common';
import type { NextFunction, Request, Response } from 'express';
import { ApiServerModule } from './api-server.module';
import { installAuthGates } from './auth/auth-gates';
import { installConsole } from './console/console-static';
import { trackHttpMetrics } from './metrics/http-metrics.middleware';
import { MetricsService } from './metrics/metrics.service';

/** Large enough for a big workflow definition; body-parser's default 100 KiB is not. */
export const BODY_LIMIT = '8mb';

/**
 * The app-level settings ApiServerModule cannot make itself; call once, before listen().
 * The module alone already serves every route with the /api/v1 prefix, JSON errors, docs and
 * metrics; this adds a larger JSON body limit, counts in /metrics the requests the body
 * parser refuses before any Nest middleware runs, and puts the Host check, CORS, authentication
 * and the JSON-only check in front of the body parser (auth-gates.ts), so that a caller without
 * a token never gets a body parsed. The web console's build is served at / (console/).
 */
export function configureApiApp(app: INestApplication): void {
  const metrics = app.get(MetricsService);
  app.use((req: Request, res: Response, next: NextFunction) => {
    trackHttpMetrics(metrics, req, res);
    next();
  });
  installAuthGates(app);
  // The web console's static files at / (after the Host check, outside /api/v1).
  installConsole(app);
  // Registered now, this parser runs before Nest's default one, which then is not added.
  (app as NestExpressApplication).useBodyParser('json', { limit: BODY_LIMIT });
}

/** Creates (does not listen) the API server's Nest application, configured. */
export async function createApiServerApp(
  config: ApiServerConfig,
  options: { logger?: LoggerService | LogLevel[] | false } = {},
): Promise<INestApplication> {
  const app = await NestFactory.create(ApiServerModule.forRoot(config), {
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
    // A failed start rejects instead of Nest calling process.exit: the caller decides.
    abortOnError: false,
  });
  configureApiApp(app);
  return app;
}
