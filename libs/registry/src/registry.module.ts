import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { CLOCK, PORPOISE_CONFIG, type Clock, type NodeConfig } from '@porpoise/common';
import { createRegistry } from './registry.factory';
import type { Registry } from './registry.interface';
import { RegistrySchemaMissingError } from './registry.errors';

/** Injection token of the started Registry client. */
export const REGISTRY = Symbol('REGISTRY');

/** How often a node on the JDBC registry looks again for the registry's tables. */
const SCHEMA_RETRY_MS = 1000;
/** ...and says so in its log, every this many tries. */
const SCHEMA_LOG_EVERY = 10;

/**
 * Starts the JDBC registry once its tables exist. The registry never migrates: masters and API
 * servers do at start (DaoModule, unless MIGRATIONS=off), so a worker needs no right to change
 * the schema; it waits here until one of them (or `npm run migration:run`) has. A master
 * starting on a fresh database waits the same way for its own DaoModule, which runs alongside.
 */
async function startWhenSchemaExists(registry: Registry, logger: Logger, clock: Clock): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await registry.start();
      return;
    } catch (err) {
      if (!(err instanceof RegistrySchemaMissingError)) throw err;
      if (attempt % SCHEMA_LOG_EVERY === 0) {
        logger.warn(
          'waiting for the registry tables: the database is not migrated yet (a master or an API ' +
            'server migrates at start; with MIGRATIONS=off run `npm run migration:run`)',
        );
      }
      await new Promise<void>((resolve) => clock.setTimeout(resolve, SCHEMA_RETRY_MS));
    }
  }
}

@Global()
@Module({
  providers: [
    {
      provide: REGISTRY,
      inject: [PORPOISE_CONFIG, CLOCK],
      useFactory: async (config: NodeConfig, clock: Clock): Promise<Registry> => {
        const logger = new Logger('Registry');
        const registry = createRegistry(config.registry, logger, clock);
        await startWhenSchemaExists(registry, logger, clock);
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
