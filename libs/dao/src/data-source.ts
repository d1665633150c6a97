import { DataSource } from 'typeorm';
import {
  WorkflowDefinitionEntity,
  WorkflowDefinitionVersionEntity,
} from './entities/workflow-definition.entity';
import {
  CommandEntity,
  ScheduleEntity,
  TaskInstanceEntity,
  WorkflowInstanceEntity,
} from './entities/workflow-instance.entity';

/** Every entity; the schema itself comes from migrations/. */
export const ENTITIES: Function[] = [
  WorkflowDefinitionEntity,
  WorkflowDefinitionVersionEntity,
  WorkflowInstanceEntity,
  TaskInstanceEntity,
  CommandEntity,
  ScheduleEntity,
];

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
