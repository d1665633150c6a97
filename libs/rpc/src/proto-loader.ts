import { join } from 'node:path';
import {
  loadPackageDefinition,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import { RpcProtoError } from './rpc.errors';
import { tolerantDecoding } from './request-decoding';

/** proto/ at the repository root; the same relative place from src (ts) and dist (js). */
function protoRoot(): string {
  // libs/rpc/src -> repo root, or dist/libs/rpc/src -> repo root
  const up = __dirname.includes(`${join('dist', 'libs')}`) ? ['..', '..', '..', '..'] : ['..', '..', '..'];
  return join(__dirname, ...up, 'proto');
}

const OPTIONS: Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface LoadedServices {
  WorkerTaskService: ServiceClientConstructor;
  MasterTaskEventService: ServiceClientConstructor;
  Health: ServiceClientConstructor;
}

const PROTO_FILES = ['porpoise/v1/worker.proto', 'porpoise/v1/master.proto', 'grpc/health/v1/health.proto'];

let loaded: LoadedServices | undefined;

/** Loads the .proto files at run time (once per process). */
export function services(): LoadedServices {
  if (loaded) return loaded;
  const pkg = loadPackageDefinition(loadSync(PROTO_FILES, { ...OPTIONS, includeDirs: [protoRoot()] }));
  loaded = {
    WorkerTaskService: serviceAt(pkg, 'porpoise.v1.WorkerTaskService'),
    MasterTaskEventService: serviceAt(pkg, 'porpoise.v1.MasterTaskEventService'),
    Health: serviceAt(pkg, 'grpc.health.v1.Health'),
  };
  return loaded;
}

/** The client constructor of a fully qualified service name in the loaded package tree. */
function serviceAt(pkg: GrpcObject, fullName: string): ServiceClientConstructor {
  let node: GrpcObject[string] | undefined = pkg;
  for (const part of fullName.split('.')) {
    node = isNamespace(node) ? node[part] : undefined;
  }
  if (typeof node !== 'function') {
    throw new RpcProtoError(`no service ${fullName} in ${PROTO_FILES.join(', ')} under ${protoRoot()}`);
  }
  return node;
}

/** A package (namespace) node: neither a service constructor nor a message or enum type. */
function isNamespace(node: GrpcObject[string] | undefined): node is GrpcObject {
  return typeof node === 'object' && !('format' in node && 'fileDescriptorProtos' in node);
}

/** A service for a server to add: a request that does not decode reaches it as UndecodableRequest. */
export function serviceDefinition(name: keyof LoadedServices): ServiceDefinition {
  return tolerantDecoding(services()[name].service);
}
