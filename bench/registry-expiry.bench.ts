/**
 * How long a SIGKILLed node stays visible: a registry client in a child process puts an
 * ephemeral key and is SIGKILLed; we time until a subscriber in this process gets the REMOVE.
 * Run per backend at the default session timeout (10 s) unless BENCH_SESSION_TIMEOUT_MS is set.
 */
import { runMigrations } from '@porpoise/dao';
import { createRegistry, type RegistryConfig } from '@porpoise/registry';
import { RegistryChild, startEtcd, startPostgres, startZooKeeper, type TestServer } from '../test/harness';
import { sampleStats, type SampleStats } from './sample-stats';

export interface ExpiryResult extends SampleStats {
  backend: string;
  sessionTimeoutMs: number;
  samplesMs: number[];
}

const backends: Array<{
  name: string;
  start: () => Promise<TestServer>;
  prepare?: (s: TestServer) => Promise<unknown>;
  config: (s: TestServer, t: number) => RegistryConfig;
}> = [
  {
    name: 'zookeeper',
    start: startZooKeeper,
    config: (s, t) => ({ type: 'zookeeper', connect: s.endpoint, sessionTimeoutMs: t }),
  },
  {
    name: 'jdbc',
    start: startPostgres,
    prepare: (s) => runMigrations(s.endpoint),
    config: (s, t) => ({ type: 'jdbc', databaseUrl: s.endpoint, sessionTimeoutMs: t }),
  },
  {
    name: 'etcd',
    start: startEtcd,
    config: (s, t) => ({ type: 'etcd', endpoints: [s.endpoint], sessionTimeoutMs: t }),
  },
];

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

export async function benchRegistryExpiry(sessionTimeoutMs: number, rounds: number): Promise<ExpiryResult[]> {
  const results: ExpiryResult[] = [];
  for (const backend of backends) {
    const server = await backend.start();
    try {
      await backend.prepare?.(server);
      const observer = createRegistry(backend.config(server, sessionTimeoutMs), quiet);
      await observer.start();
      const samplesMs: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const key = `/bench/expiry/${round}`;
        let removedAt = 0;
        const sub = await observer.subscribe(key, (e) => {
          if (e.type === 'REMOVE' && e.key === key) removedAt = Date.now();
        });
        const child = await RegistryChild.spawn(backend.config(server, sessionTimeoutMs));
        await child.call('put', key, 'alive', true);
        const killedAt = Date.now();
        await child.kill('SIGKILL');
        while (removedAt === 0) {
          if (Date.now() - killedAt > sessionTimeoutMs * 3 + 10_000) {
            throw new Error(`${backend.name}: no REMOVE`);
          }
          await new Promise((r) => setTimeout(r, 20));
        }
        samplesMs.push(removedAt - killedAt);
        sub.unsubscribe();
      }
      await observer.close();
      results.push({ backend: backend.name, sessionTimeoutMs, samplesMs, ...sampleStats(samplesMs) });
    } finally {
      await server.dispose();
    }
  }
  return results;
}
