export * from './data-source';
export * from './migration-runner';
export * from './dao.module';
