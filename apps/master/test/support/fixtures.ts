/** Booting masters in-process and writing/reading rows the way the API server does. */
import type { INestApplicationContext, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig, type MasterConfig } from '@porpoise/common';
import { freePort, waitFor } from '@porpoise/test-harness';
import { MasterModule } from '../../src/master.module';
import type { MasterOptions } from '../../src/master.constants';
import { MasterMembershipService } from '../../src/registry/master-membership.service';

export { task } from './tasks';
export { Db, type InstanceRow, type TaskRowView } from './db';

export const SECRET = 'master-test-secret-0123456789';

/** Nest logs: errors and warnings only, unless MASTER_TEST_LOGS=1. */
const LOG_LEVELS: LogLevel[] = process.env.MASTER_TEST_LOGS ? ['log', 'warn', 'error'] : ['error', 'warn'];

export async function masterConfig(databaseUrl: string, port?: number): Promise<MasterConfig> {
  return loadConfig(
    {
      DATABASE_URL: databaseUrl,
      REGISTRY_TYPE: 'jdbc',
      REGISTRY_SESSION_TIMEOUT_MS: '3000',
      HEARTBEAT_INTERVAL_MS: '300',
      CLUSTER_SECRET: SECRET,
      NODE_HOST: '127.0.0.1',
      MASTER_PORT: String(port ?? (await freePort())),
      // Several masters share this process: none serves /health and /metrics (a test that
      // wants them runs the built master as a process, test/e2e/observability.int-spec.ts).
      METRICS_PORT: '0',
    },
    'master',
  );
}

export interface RunningMaster {
  app: INestApplicationContext;
  address: string;
  config: MasterConfig;
  membership: MasterMembershipService;
}

/** Short timers so tests do not wait on fallbacks; behaviour is the same. */
export const TEST_OPTIONS: Partial<MasterOptions> = {
  commandPollIntervalMs: 500,
  scheduleTickMs: 250,
  parkedRetryMs: 1000,
  workerCallDeadlineMs: 3000,
  shutdownGraceMs: 2000,
  // Sweeps only where a test asks for them (a start-up pass and REMOVE events still run).
  failoverSweepIntervalMs: 600_000,
};

export async function bootMaster(
  databaseUrl: string,
  options: Partial<MasterOptions> = {},
): Promise<RunningMaster> {
  const config = await masterConfig(databaseUrl);
  const app = await NestFactory.createApplicationContext(
    MasterModule.forRoot(config, { ...TEST_OPTIONS, ...options }),
    {
      logger: LOG_LEVELS,
    },
  );
  return {
    app,
    config,
    address: `${config.nodeHost}:${config.masterPort}`,
    membership: app.get(MasterMembershipService),
  };
}

/** Waits until every master sees exactly the given set of live masters. */
export async function waitForMembership(masters: RunningMaster[]): Promise<void> {
  const expected = masters
    .map((m) => m.address)
    .sort()
    .join(',');
  await waitFor(
    `masters to see ${expected}`,
    () => masters.every((m) => [...m.membership.liveMasters].join(',') === expected),
    20_000,
  );
}
