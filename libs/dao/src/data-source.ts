import { DataSource } from 'typeorm';

/** Entities are added here as the schema grows (libs/dao/src/entities). */
export const ENTITIES: Function[] = [];

/** The TypeORM data source of a node. The schema comes from migrations only, never synchronize. */
export function createDataSource(databaseUrl: string, applicationName: string): DataSource {
  return new DataSource({
    type: 'postgres',
    url: databaseUrl,
    entities: ENTITIES,
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra: { max: 10, application_name: applicationName },
  });
}
