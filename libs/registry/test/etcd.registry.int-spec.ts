import { startEtcd } from '@porpoise/test-harness';
import { describeRegistryConformance } from './registry.conformance';

describeRegistryConformance({
  name: 'etcd',
  serverKind: 'etcd',
  startServer: startEtcd,
  config: (server, sessionTimeoutMs) => ({ type: 'etcd', endpoints: [server.endpoint], sessionTimeoutMs }),
  deliversEveryChange: true,
});
