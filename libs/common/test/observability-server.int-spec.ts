/**
 * The masters' and workers' /health and /metrics server (libs/common) on real sockets: what it
 * answers, a check that fails or hangs, a metric that throws, and a port that is taken.
 */
import { createServer, type Server } from 'node:net';
import { Gauge } from 'prom-client';
import {
  createNodeMetricsRegistry,
  DEFAULT_METRICS_PORT,
  ObservabilityService,
  systemClock,
  type HealthCheck,
  type WorkerConfig,
} from '@porpoise/common';
import { freePort } from '@porpoise/test-harness';

const config = (metricsPort: number) =>
  ({ role: 'worker', metricsPort, bindHost: '127.0.0.1' }) as unknown as WorkerConfig;

/** Holds a port (resolves false when someone else holds it already: taken either way). */
function hold(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('ObservabilityService', () => {
  const started: ObservabilityService[] = [];
  afterEach(async () => {
    for (const s of started.splice(0)) await s.onApplicationShutdown();
  });

  async function start(port: number, checks: HealthCheck[] = []) {
    const registry = createNodeMetricsRegistry('porpoise_test_');
    const service = new ObservabilityService(config(port), registry, checks, systemClock);
    started.push(service);
    await service.onModuleInit();
    return { service, registry, url: `http://127.0.0.1:${service.port}` };
  }

  it('answers /health (200, or 503 naming the check that failed or did not answer) and /metrics', async () => {
    let database: () => Promise<unknown> = () => Promise.resolve();
    const { url, registry } = await start(await freePort(), [
      { name: 'database', probe: () => database() },
      { name: 'registry', probe: () => Promise.resolve(true) },
    ]);
    new Gauge({ name: 'porpoise_test_value', help: 'a test gauge', registers: [registry] }).set(3);

    let res = await fetch(`${url}/health`);
    expect([res.status, await res.json()]).toEqual([200, { status: 'ok', database: 'ok', registry: 'ok' }]);

    database = () =>
      Promise.reject(
        Object.assign(new Error('password authentication failed for x'), { name: 'QueryFailedError' }),
      );
    res = await fetch(`${url}/health`);
    // The error's name, never its message.
    expect([res.status, await res.json()]).toEqual([
      503,
      { status: 'unavailable', database: 'QueryFailedError', registry: 'ok' },
    ]);
    database = () => new Promise(() => undefined);
    res = await fetch(`${url}/health`);
    expect([res.status, await res.json()]).toEqual([
      503,
      { status: 'unavailable', database: 'timeout', registry: 'ok' },
    ]);

    res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^porpoise_test_value 3$/m);
    expect(text).toMatch(/^porpoise_test_process_cpu_seconds_total /m);

    const head = await fetch(`${url}/metrics`, { method: 'HEAD' });
    expect([head.status, await head.text()]).toEqual([200, '']);
    expect((await fetch(`${url}/metrics?x=1`)).status).toBe(200);
    expect((await fetch(`${url}/`)).status).toBe(404);
    expect((await fetch(`${url}/health`, { method: 'DELETE' })).status).toBe(405);
  }, 20_000);

  it('answers 500 when a metric cannot be collected, and keeps serving', async () => {
    const { url, registry } = await start(await freePort());
    let fail = true;
    new Gauge({
      name: 'porpoise_test_flaky',
      help: 'a gauge whose collect throws',
      registers: [registry],
      collect() {
        if (fail) throw new Error('collect failed');
        this.set(1);
      },
    });
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({
      statusCode: 500,
      error: 'Internal Server Error',
      message: 'see the node log',
    });
    fail = false;
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
  });

  it('METRICS_PORT=0 serves nothing', async () => {
    const { service } = await start(0);
    expect(service.port).toBeUndefined();
  });

  it('an explicit METRICS_PORT that is taken stops the start, naming the variable', async () => {
    const port = await freePort();
    const taken = await hold(port);
    try {
      const service = new ObservabilityService(
        config(port),
        createNodeMetricsRegistry('x_'),
        [],
        systemClock,
      );
      await expect(service.onModuleInit()).rejects.toThrow(
        `cannot serve /health and /metrics on 127.0.0.1:${port} (METRICS_PORT): EADDRINUSE`,
      );
    } finally {
      taken?.close();
    }
  });

  it("the role's default port taken (another node on this host): the node starts without the endpoint", async () => {
    const port = DEFAULT_METRICS_PORT.worker;
    const taken = await hold(port);
    try {
      const { service } = await start(port);
      expect(service.port).toBeUndefined();
    } finally {
      taken?.close();
    }
  });
});
