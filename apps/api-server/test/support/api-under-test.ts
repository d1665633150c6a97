import type { INestApplication } from '@nestjs/common';
import { loadConfig, type ApiServerConfig } from '@porpoise/common';
import { createApiServerApp } from '../../src/api-app';

export interface ApiUnderTest {
  readonly app: INestApplication;
  readonly config: ApiServerConfig;
  /** http://127.0.0.1:<port> */
  readonly base: string;
}

/**
 * An API server booted in-process as main.ts boots it, on the given Postgres and the JDBC
 * registry there, listening on a free loopback port. The caller closes `app`.
 */
export async function startApiUnderTest(databaseUrl: string, secret: string): Promise<ApiUnderTest> {
  const config = loadConfig(
    {
      DATABASE_URL: databaseUrl,
      REGISTRY_TYPE: 'jdbc',
      CLUSTER_SECRET: secret,
      REGISTRY_SESSION_TIMEOUT_MS: '3000',
      HEARTBEAT_INTERVAL_MS: '500',
    },
    'api-server',
  );
  const app = await createApiServerApp(config, { logger: ['error'] });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  return { app, config, base: `http://127.0.0.1:${port}` };
}
