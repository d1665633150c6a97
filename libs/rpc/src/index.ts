export * from './rpc.types';
export * from './rpc.errors';
export * from './proto-loader';
export * from './grpc-server';
export * from './grpc-clients';
