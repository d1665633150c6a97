import { silentLogger, systemClock, type Clock, type Logger } from '@porpoise/common';
import type { RegistryConfig } from './registry.config';
import type { Registry } from './registry.interface';
import { ZooKeeperRegistry } from './zookeeper/zookeeper.registry';
import { JdbcRegistry } from './jdbc/jdbc.registry';
import { EtcdRegistry } from './etcd/etcd.registry';

/**
 * Builds the backend named by config.type; call start() on the result. The backends log
 * through logger (never given secrets) and take local timers and durations from clock.
 */
export function createRegistry(
  config: RegistryConfig,
  logger: Logger = silentLogger,
  clock: Clock = systemClock,
): Registry {
  switch (config.type) {
    case 'zookeeper':
      return new ZooKeeperRegistry(config, logger, clock);
    case 'jdbc':
      return new JdbcRegistry(config, logger, clock);
    case 'etcd':
      return new EtcdRegistry(config, logger, clock);
  }
}
