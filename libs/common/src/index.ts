export * from './config/config.types';
export * from './config/config.errors';
export * from './config/config.loader';
export * from './config/config.module';
export * from './lifecycle/graceful-shutdown';
export * from './domain/states';
export * from './net/ports';
export * from './domain/node-heartbeat';
