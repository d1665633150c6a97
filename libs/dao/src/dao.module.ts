import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import { PORPOISE_CONFIG, type PorpoiseConfig } from '@porpoise/common';
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
      useFactory: async (config: PorpoiseConfig): Promise<DataSource> => {
        const logger = new Logger('Dao');
        if (!config.databaseUrl) throw new Error('DATABASE_URL is not set');
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
