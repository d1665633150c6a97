import type { INestApplication } from '@nestjs/common';
import { loadConfig, type ApiServerConfig } from '@porpoise/common';
import { TEST_ADMIN_TOKEN } from '@porpoise/test-harness/api-token';
import { createApiServerApp } from '../../src/api-app';

export interface ApiUnderTest {
  readonly app: INestApplication;
  readonly config: ApiServerConfig;
  /** http://127.0.0.1:<port> */
  readonly base: string;
}

/**
 * An API server booted in-process as main.ts boots it, on the given Postgres and the JDBC
 * registry there, listening on a free loopback port, with ADMIN_TOKEN = TEST_ADMIN_TOKEN (env
 * adds or overrides variables). The caller closes `app`.
 */
export async function startApiUnderTest(
  databaseUrl: string,
  secret: string,
  env: Record<string, string> = {},
): Promise<ApiUnderTest> {
  const config = loadConfig(
    {
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      DATABASE_URL: databaseUrl,
      REGISTRY_TYPE: 'jdbc',
      CLUSTER_SECRET: secret,
      REGISTRY_SESSION_TIMEOUT_MS: '3000',
      HEARTBEAT_INTERVAL_MS: '500',
      ...env,
    },
    'api-server',
  );
  const app = await createApiServerApp(config, { logger: ['error'] });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return { app, config, base: `http://127.0.0.1:${port}` };
}
