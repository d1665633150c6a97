import { startPostgres } from '@porpoise/test-harness';
import { runMigrations } from '@porpoise/dao';
import { describeRegistryConformance } from './registry.conformance';

describeRegistryConformance({
  name: 'jdbc',
  serverKind: 'postgres',
  startServer: startPostgres,
  prepare: async (server) => {
    await runMigrations(server.endpoint);
  },
  config: (server, sessionTimeoutMs) => ({ type: 'jdbc', databaseUrl: server.endpoint, sessionTimeoutMs }),
  deliversEveryChange: true,
});
