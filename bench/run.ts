/** `npm run bench`: runs the benchmarks, prints a table and writes bench/results/*.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchRegistryExpiry } from './registry-expiry.bench';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string, fallback: number) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const sessionTimeoutMs = arg('session-timeout-ms', 10_000);
  const rounds = arg('rounds', 3);

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
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `registry-expiry-${sessionTimeoutMs}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), results: expiry }, null, 2));
  console.log(`written ${file}`);
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
