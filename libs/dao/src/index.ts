// The database layer's public surface: the data source, the migration runner, and the
// repositories. Every query is parameterized SQL; there are no TypeORM entities. Helpers the
// repositories share among themselves (the ownership CTE, transactions) stay inside.
export { POOL_LIMITS, createDataSource } from './data-source';
export { pendingMigrations, runMigrations, type MigrationResult } from './migration-runner';
export { DaoModule } from './dao.module';
export { MissingRowError, firstRow, queryResult, queryRows } from './repositories/sql';
export * from './repositories/backfill.repository';
export * from './repositories/command.repository';
export * from './repositories/instance-query.repository';
export {
  InstanceStateRepository,
  type InstanceFence,
  type InstanceOwnership,
  type HostedInstance,
} from './repositories/instance-state.repository';
export * from './repositories/schedule.repository';
export * from './repositories/task-instance.repository';
export * from './repositories/workflow-definition.repository';
export * from './repositories/workflow-run.repository';
export * from './repositories/datasource.repository';
export * from './repositories/dependency.repository';
export * from './repositories/task-group.repository';
export {
  SubWorkflowRepository,
  STOPPED_WHILE_PAUSED,
  type ChildState,
  type HaltAction,
  type HaltedInstance,
  type StartChildInput,
  type StartChildOutcome,
} from './repositories/sub-workflow.repository';
export * from './repositories/run-gate.repository';
export * from './repositories/api-token.repository';
export * from './repositories/audit.repository';
export * from './repositories/retention.repository';
