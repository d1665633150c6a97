import { join } from 'node:path';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';

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

let loaded: LoadedServices | undefined;

/** Loads the .proto files at run time (once per process). */
export function services(): LoadedServices {
  if (loaded) return loaded;
  const root = protoRoot();
  const definition = loadSync(
    ['porpoise/v1/worker.proto', 'porpoise/v1/master.proto', 'grpc/health/v1/health.proto'],
    { ...OPTIONS, includeDirs: [root] },
  );
  const pkg = loadPackageDefinition(definition) as GrpcObject & {
    porpoise: { v1: Record<string, ServiceClientConstructor> };
    grpc: { health: { v1: Record<string, ServiceClientConstructor> } };
  };
  loaded = {
    WorkerTaskService: pkg.porpoise.v1.WorkerTaskService,
    MasterTaskEventService: pkg.porpoise.v1.MasterTaskEventService,
    Health: pkg.grpc.health.v1.Health,
  };
  return loaded;
}

export function serviceDefinition(name: keyof LoadedServices): ServiceDefinition {
  return services()[name].service;
}
