export * from './net';
export * from './test-server';
export * from './docker';
export * from './postgres';
export * from './zookeeper';
export * from './etcd';
export * from './child-process';
export * from './registry-child';
