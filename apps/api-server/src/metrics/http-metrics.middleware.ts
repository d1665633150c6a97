import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { MetricsService } from './metrics.service';

const TRACKED = Symbol('porpoise.httpMetricsTracked');

/**
 * Counts and times a request once its response is sent, labelled by the route pattern it
 * matched. Installed twice on purpose: as Nest middleware (always there with the module) and,
 * by configureApiApp, as the app's first express middleware, so that requests the body parser
 * refuses (malformed JSON, too large) are counted too. The marker makes the second a no-op.
 */
export function trackHttpMetrics(metrics: MetricsService, req: Request, res: Response): void {
  const marked = req as Request & { [TRACKED]?: true };
  if (marked[TRACKED]) return;
  marked[TRACKED] = true;
  const start = process.hrtime.bigint();
  res.once('finish', () => {
    // Express sets req.route when a route matched; unmatched URLs share one label, so the
    // label values stay bounded whatever clients send.
    const route = (req.route as { path?: unknown } | undefined)?.path;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    metrics.observe(req.method, typeof route === 'string' ? route : 'unmatched', res.statusCode, seconds);
  });
}

@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  constructor(private readonly metrics: MetricsService) {}

  use(req: Request, res: Response, next: NextFunction): void {
    trackHttpMetrics(this.metrics, req, res);
    next();
  }
}
