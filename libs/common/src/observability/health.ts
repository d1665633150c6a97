import type { Clock } from '../time/clock';

/** One thing a node needs to work (Postgres, the registry): healthy when probe() resolves. */
export interface HealthCheck {
  /** The report's field: "database", "registry". */
  readonly name: string;
  probe(): Promise<unknown>;
}

/**
 * GET /health's answer: status, and per check "ok" or the name of the error it met ("timeout"
 * when it did not answer in time); never an error message, which could carry a URL or a host.
 * The same shape as the API server's /health.
 */
export type HealthReport = { readonly status: 'ok' | 'unavailable' } & Readonly<Record<string, string>>;

/** How long one probe may take before it counts as failed. */
export const HEALTH_PROBE_TIMEOUT_MS = 3000;

/** Runs every check at once, each bounded by timeoutMs. */
export async function runHealthChecks(
  checks: readonly HealthCheck[],
  clock: Clock,
  timeoutMs = HEALTH_PROBE_TIMEOUT_MS,
): Promise<HealthReport> {
  const results = await Promise.all(
    checks.map(async (check): Promise<[string, string]> => {
      let probe: Promise<string>;
      try {
        probe = check.probe().then(
          () => 'ok',
          (err: unknown) => (err instanceof Error ? err.name : 'error'),
        );
      } catch (err) {
        probe = Promise.resolve(err instanceof Error ? err.name : 'error');
      }
      const timeout = clock.sleep(timeoutMs).then(() => 'timeout');
      return [check.name, await Promise.race([probe, timeout])];
    }),
  );
  const status = results.every(([, r]) => r === 'ok') ? 'ok' : 'unavailable';
  // status first, as the API server's /health has it.
  const report: HealthReport = { status, ...Object.fromEntries(results) };
  return report;
}
