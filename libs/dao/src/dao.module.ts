import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { PORPOISE_CONFIG, type ApiServerConfig, type MasterConfig } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { createDataSource } from './data-source';
import { runMigrations } from './migration-runner';

/**
 * Migrates the schema (under pg_advisory_lock, so nodes starting together cannot race) and
 * provides the initialised TypeORM DataSource.
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
        const { applied } = await runMigrations(config.databaseUrl);
        if (applied.length > 0) logger.log(`applied migrations: ${applied.join(', ')}`);
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
