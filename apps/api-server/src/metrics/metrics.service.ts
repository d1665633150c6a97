import { Injectable, Logger } from '@nestjs/common';
import { InstanceQueryRepository } from '@porpoise/dao';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * This API server's Prometheus metrics: process defaults, HTTP requests by route and status,
 * and workflow instances by state (one grouped query per scrape). A registry of its own,
 * not prom-client's global one, so several API servers can live in one process (standalone,
 * tests) without "metric already registered".
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private readonly logger = new Logger('MetricsService');
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly durations: Histogram<'method' | 'route' | 'status'>;

  constructor(instances: InstanceQueryRepository) {
    collectDefaultMetrics({ register: this.registry, prefix: 'porpoise_api_' });
    this.requests = new Counter({
      name: 'porpoise_api_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.durations = new Histogram({
      name: 'porpoise_api_http_request_duration_seconds',
      help: 'HTTP request duration, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    const logger = this.logger;
    new Gauge({
      name: 'porpoise_workflow_instances',
      help: 'Workflow instances by state (queried at scrape time)',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        try {
          const counts = await instances.countByState();
          this.reset();
          for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
        } catch (err) {
          // A scrape must still answer when the database is away; the gauge is just absent.
          this.reset();
          logger.warn(
            `instances by state not collected: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
      },
    });
  }

  /** route is the matched pattern (/api/v1/workflows/:code), never the raw URL: bounded label values. */
  observe(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.requests.inc(labels);
    this.durations.observe(labels, seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
