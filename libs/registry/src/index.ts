export * from './registry.interface';
export * from './registry.config';
export * from './registry.errors';
export * from './registry-path';
export * from './registry.factory';
export * from './registry.module';
