import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { CLOCK, PORPOISE_CONFIG, type Clock, type NodeConfig } from '@porpoise/common';
// The one allowed import of the database layer (see layeringExceptions in eslint.config.mjs).
import { runMigrations } from '@porpoise/dao';
import { createRegistry } from './registry.factory';
import type { Registry } from './registry.interface';

/** Injection token of the started Registry client. */
export const REGISTRY = Symbol('REGISTRY');

@Global()
@Module({
  providers: [
    {
      provide: REGISTRY,
      inject: [PORPOISE_CONFIG, CLOCK],
      useFactory: async (config: NodeConfig, clock: Clock): Promise<Registry> => {
        const logger = new Logger('Registry');
        // The JDBC registry's tables come from the migrations; a node may start before any
        // master has migrated (a worker has no DaoModule), so make sure they exist. Cheap
        // when the schema is current: one advisory lock and one query.
        if (config.registry.type === 'jdbc') await runMigrations(config.registry.databaseUrl);
        const registry = createRegistry(config.registry, logger, clock);
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
