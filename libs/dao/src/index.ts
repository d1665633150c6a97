export * from './data-source';
export * from './migration-runner';
export * from './dao.module';
export * from './entities/workflow-definition.entity';
export * from './entities/workflow-instance.entity';
export * from './repositories/sql';
