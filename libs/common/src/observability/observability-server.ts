import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Logger as NestLogger,
  type FactoryProvider,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { PORPOISE_CONFIG } from '../config/config.module';
import { DEFAULT_METRICS_PORT } from '../config/config.loader';
import type { MasterConfig, WorkerConfig } from '../config/config.types';
import type { Logger } from '../logging/logger';
import { CLOCK, type Clock } from '../time/clock';
import { runHealthChecks, type HealthCheck, type HealthReport } from './health';

/**
 * The node's own Prometheus registry (never prom-client's global one, so several nodes can live
 * in one process, as in the standalone node). Services add their metrics to it.
 */
export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');
/** The node's HealthCheck[] (what GET /health probes). */
export const HEALTH_CHECKS = Symbol('HEALTH_CHECKS');

/** A registry with the process metrics (CPU, memory, event loop lag, GC), named prefix + name. */
export function createNodeMetricsRegistry(prefix: string): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}

export interface ObservabilityServerOptions {
  readonly registry: Registry;
  readonly health: () => Promise<HealthReport>;
  readonly logger: Logger;
}

/** A whole request (headers and body) must arrive within this long. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * A small HTTP server for a node without an HTTP API (masters, workers): GET /health (200 when
 * every check is ok, 503 otherwise, JSON) and GET /metrics (Prometheus text). HEAD is answered
 * like GET without a body; any other path is 404, any other method 405. A failure while
 * answering (a metric whose collect() throws) is a 500, never a crash.
 */
export class ObservabilityHttpServer {
  private server: Server | undefined;

  constructor(private readonly options: ObservabilityServerOptions) {}

  /** Listens on host:port (0: any free port); resolves with the port bound. */
  listen(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => void this.answer(req, res));
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.headersTimeout = REQUEST_TIMEOUT_MS;
    // Scrapes are seconds apart: keep no idle connection long enough to hold the node's stop.
    server.keepAliveTimeout = 5_000;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        server.close();
        reject(err);
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.options.logger.error(`metrics server: ${err.message}`));
        this.server = server;
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops listening and ends open connections. Safe to call twice. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/health' && path !== '/metrics') {
        return send(res, req, 404, 'application/json', error(404, 'Not Found', `no route ${path}`));
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return send(res, req, 405, 'application/json', error(405, 'Method Not Allowed', `${path} takes GET`));
      }
      if (path === '/health') {
        const report = await this.options.health();
        return send(res, req, report.status === 'ok' ? 200 : 503, 'application/json', JSON.stringify(report));
      }
      const text = await this.options.registry.metrics();
      return send(res, req, 200, this.options.registry.contentType, text);
    } catch (err) {
      this.options.logger.warn(`metrics server: ${req.url ?? ''} failed: ${(err as Error).message}`);
      if (!res.headersSent) {
        send(res, req, 500, 'application/json', error(500, 'Internal Server Error', 'see the node log'));
      } else res.destroy();
    }
  }
}

function error(statusCode: number, name: string, message: string): string {
  return JSON.stringify({ statusCode, error: name, message });
}

function send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Serves /health and /metrics of a master or worker on METRICS_PORT, bound to BIND_HOST, from
 * module init (before the node registers and takes work) until the application shuts down (after
 * it stopped). METRICS_PORT=0: not served. An explicit port that cannot be bound stops the node
 * at start; the role's default port already taken (another node on this host) is a warning, and
 * the node runs without the endpoint: give each node its own METRICS_PORT.
 * The app module provides METRICS_REGISTRY and HEALTH_CHECKS, and this service with
 * observabilityProvider() (a factory: libs/common stays free of parameter decorators, so the
 * scripts that import it run under tsx without TypeScript's experimental decorators).
 */
export class ObservabilityService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new NestLogger('Observability');
  private readonly server: ObservabilityHttpServer;
  private boundPort: number | undefined;

  constructor(
    private readonly config: MasterConfig | WorkerConfig,
    readonly registry: Registry,
    private readonly checks: readonly HealthCheck[],
    private readonly clock: Clock,
  ) {
    this.server = new ObservabilityHttpServer({ registry, health: () => this.health(), logger: this.logger });
  }

  /** The port /health and /metrics are served on; undefined when they are not. */
  get port(): number | undefined {
    return this.boundPort;
  }

  health(): Promise<HealthReport> {
    return runHealthChecks(this.checks, this.clock);
  }

  async onModuleInit(): Promise<void> {
    const { metricsPort, bindHost, role } = this.config;
    if (metricsPort === 0) {
      this.logger.log('METRICS_PORT=0: /health and /metrics are not served');
      return;
    }
    try {
      this.boundPort = await this.server.listen(bindHost, metricsPort);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      const problem = `cannot serve /health and /metrics on ${bindHost}:${metricsPort} (METRICS_PORT): ${code}`;
      if (metricsPort === DEFAULT_METRICS_PORT[role] && code === 'EADDRINUSE') {
        this.logger.warn(
          `${problem}; the ${role}'s default port is taken (another node on this host?): running without ` +
            'them. Give each node its own METRICS_PORT',
        );
        return;
      }
      throw new Error(problem);
    }
    this.logger.log(`/health and /metrics on http://${bindHost}:${this.boundPort}`);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.server.close();
  }
}

/** The ObservabilityService of a master or worker module (its config, registry, checks and clock). */
export function observabilityProvider(): FactoryProvider<ObservabilityService> {
  return {
    provide: ObservabilityService,
    useFactory: (
      config: MasterConfig | WorkerConfig,
      registry: Registry,
      checks: HealthCheck[],
      clock: Clock,
    ) => new ObservabilityService(config, registry, checks, clock),
    inject: [PORPOISE_CONFIG, METRICS_REGISTRY, HEALTH_CHECKS, CLOCK],
  };
}
