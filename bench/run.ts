/**
 * `npm run bench`: runs the benchmarks, prints a table and writes bench/results/*.json.
 *
 *   --only registry-expiry|failover   one benchmark (default: both)
 *   --session-timeout-ms N --rounds N registry expiry (default 10000, 3)
 *   --failover-timeouts 10000,5000    failover: the session timeouts to measure at
 *   --failover-rounds N               failover: kills per kind and timeout (default 5)
 *
 * The failover benchmark starts nodes from dist: `npm run build` first.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchFailover, type FailoverResult } from './failover.bench';
import { benchRegistryExpiry } from './registry-expiry.bench';

const BENCHMARKS = ['registry-expiry', 'failover'] as const;
type Benchmark = (typeof BENCHMARKS)[number];

function write(name: string, results: unknown): void {
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), results }, null, 2));
  console.log(`written ${file}`);
}

async function registryExpiry(sessionTimeoutMs: number, rounds: number): Promise<void> {
  const expiry = await benchRegistryExpiry(sessionTimeoutMs, rounds);
  console.log(
    `\nregistry: SIGKILL of a client -> REMOVE seen by a subscriber (session timeout ${sessionTimeoutMs} ms)`,
  );
  console.table(
    expiry.map((r) => ({
      backend: r.backend,
      median_ms: r.medianMs,
      max_ms: r.maxMs,
      samples_ms: r.samplesMs.join(' '),
    })),
  );
  write(`registry-expiry-${sessionTimeoutMs}`, expiry);
}

async function failover(timeouts: number[], rounds: number): Promise<void> {
  const results: FailoverResult[] = [];
  for (const timeout of timeouts) results.push(...(await benchFailover(timeout, rounds)));
  console.log(
    '\nfailover (ZooKeeper, 3 masters, 3 workers): master SIGKILL -> every instance it drove has a new host; ' +
      'worker SIGKILL -> each of its tasks has a new attempt dispatched to another worker',
  );
  console.table(
    results.map((r) => ({
      killed: r.kind,
      session_timeout_ms: r.sessionTimeoutMs,
      median_ms: r.medianMs,
      max_ms: r.maxMs,
      samples_ms: r.samplesMs.join(' '),
      victim_load: r.victimLoad.join(' '),
      timeouts: r.timeouts,
    })),
  );
  write('failover', results);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const number = (name: string, fallback: number) => {
    const value = arg(name);
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  const only = arg('only');
  if (only !== undefined && !BENCHMARKS.includes(only as Benchmark)) {
    throw new Error(`--only must be one of ${BENCHMARKS.join(', ')}`);
  }
  const run = (b: Benchmark) => only === undefined || only === b;

  if (run('registry-expiry')) await registryExpiry(number('session-timeout-ms', 10_000), number('rounds', 3));
  if (run('failover')) {
    const timeouts = (arg('failover-timeouts') ?? '10000,5000').split(',').map(Number);
    if (timeouts.some((t) => !Number.isInteger(t) || t < 400)) {
      throw new Error('--failover-timeouts must be a comma-separated list of milliseconds (>= 400)');
    }
    await failover(timeouts, number('failover-rounds', 5));
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
