import type { Registry, RegistryCommonOptions } from './registry.interface';
import { ZooKeeperRegistry } from './zookeeper/zookeeper.registry';
import { JdbcRegistry } from './jdbc/jdbc.registry';
import { EtcdRegistry } from './etcd/etcd.registry';

export type RegistryConfig =
  | ({ type: 'zookeeper'; connect: string } & RegistryCommonOptions)
  | ({ type: 'jdbc'; databaseUrl: string } & RegistryCommonOptions)
  | ({ type: 'etcd'; endpoints: string[] } & RegistryCommonOptions);

/** Builds the backend named by config.type; call start() on the result. */
export function createRegistry(config: RegistryConfig, logger?: RegistryLogger): Registry {
  switch (config.type) {
    case 'zookeeper':
      return new ZooKeeperRegistry(config, logger);
    case 'jdbc':
      return new JdbcRegistry(config, logger);
    case 'etcd':
      return new EtcdRegistry(config, logger);
  }
}

/** What the backends log through; Nest's Logger fits. Never given secrets. */
export interface RegistryLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}
