import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { PORPOISE_CONFIG, type ApiServerConfig, type MasterConfig } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { createDataSource } from './data-source';
import { pendingMigrations, runMigrations } from './migration-runner';

/** MIGRATIONS=off and the schema lacks migrations this code needs. */
export class SchemaBehindError extends Error {
  constructor(readonly pending: readonly string[]) {
    super(
      `the database schema lacks ${pending.length} migration(s) (${pending.join(', ')}); with MIGRATIONS=off ` +
        'run `npm run migration:run` with the migration role first, or start a node with MIGRATIONS=on',
    );
    this.name = 'SchemaBehindError';
  }
}

/**
 * Migrates the schema (under pg_advisory_lock, so nodes starting together cannot race; unless
 * MIGRATIONS=off, then only checks it is current) and provides the initialised TypeORM
 * DataSource. Only masters and API servers import it: workers never touch the schema.
 */
@Global()
@Module({
  providers: [
    {
      provide: DataSource,
      inject: [PORPOISE_CONFIG],
      // Only the roles that use the database import this module; their configuration has it.
      useFactory: async (config: MasterConfig | ApiServerConfig): Promise<DataSource> => {
        const logger = new Logger('Dao');
        if (config.runMigrations) {
          const { applied } = await runMigrations(config.databaseUrl);
          if (applied.length > 0) logger.log(`applied migrations: ${applied.join(', ')}`);
        } else {
          // MIGRATIONS=off: the node's role may not own the schema; refuse to run on an old one.
          const pending = await pendingMigrations(config.databaseUrl);
          if (pending.length > 0) throw new SchemaBehindError(pending);
        }
        const dataSource = createDataSource(config.databaseUrl, `porpoise-${config.role}`);
        return dataSource.initialize();
      },
    },
  ],
  exports: [DataSource],
})
export class DaoModule implements OnApplicationShutdown {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
