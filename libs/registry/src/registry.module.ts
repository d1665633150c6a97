import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { PORPOISE_CONFIG, type PorpoiseConfig } from '@porpoise/common';
import { runMigrations } from '@porpoise/dao/migration-runner';
import { createRegistry, type RegistryConfig } from './registry.factory';
import type { Registry } from './registry.interface';

/** Injection token of the started Registry client. */
export const REGISTRY = Symbol('REGISTRY');

/** Maps the node configuration to the backend chosen by REGISTRY_TYPE. */
export function registryConfigFrom(config: PorpoiseConfig): RegistryConfig {
  const common = {
    sessionTimeoutMs: config.registry.sessionTimeoutMs,
    heartbeatIntervalMs: config.registry.heartbeatIntervalMs,
  };
  switch (config.registry.type) {
    case 'zookeeper':
      return { type: 'zookeeper', connect: config.registry.zookeeperConnect, ...common };
    case 'etcd':
      return { type: 'etcd', endpoints: config.registry.etcdEndpoints, ...common };
    case 'jdbc':
      if (!config.databaseUrl) throw new Error('the jdbc registry needs DATABASE_URL');
      return { type: 'jdbc', databaseUrl: config.databaseUrl, ...common };
  }
}

@Global()
@Module({
  providers: [
    {
      provide: REGISTRY,
      inject: [PORPOISE_CONFIG],
      useFactory: async (config: PorpoiseConfig): Promise<Registry> => {
        const logger = new Logger('Registry');
        // The JDBC registry's tables come from the migrations; a node may start before any
        // master has migrated (a worker has no DaoModule), so make sure they exist. Cheap
        // when the schema is current: one advisory lock and one query.
        if (config.registry.type === 'jdbc' && config.databaseUrl) await runMigrations(config.databaseUrl);
        const registry = createRegistry(registryConfigFrom(config), {
          log: (m) => logger.log(m),
          warn: (m) => logger.warn(m),
          error: (m) => logger.error(m),
        });
        await registry.start();
        logger.log(`connected to the ${config.registry.type} registry`);
        return registry;
      },
    },
  ],
  exports: [REGISTRY],
})
export class RegistryModule implements OnApplicationShutdown {
  constructor(@Inject(REGISTRY) private readonly registry: Registry) {}

  async onApplicationShutdown(): Promise<void> {
    await this.registry.close();
  }
}
