import { startZooKeeper } from '@porpoise/test-harness';
import { describeRegistryConformance } from './registry.conformance';

describeRegistryConformance({
  name: 'zookeeper',
  serverKind: 'zookeeper',
  startServer: startZooKeeper,
  config: (server, sessionTimeoutMs) => ({ type: 'zookeeper', connect: server.endpoint, sessionTimeoutMs }),
  deliversEveryChange: false,
});
