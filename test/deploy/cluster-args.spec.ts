/** The command line and environment of `npm run cluster` (scripts/cluster): pure logic. */
import { parseClusterArgs, UsageError } from '../../scripts/cluster/args';
import { resolveSettings } from '../../scripts/cluster/settings';

describe('npm run cluster: command line', () => {
  it('defaults to one node of each role on ZooKeeper, building when needed', () => {
    expect(parseClusterArgs([])).toEqual({
      masters: 1,
      workers: 1,
      apiServers: 1,
      registry: 'zookeeper',
      build: true,
      readyTimeoutMs: 180_000,
      tls: false,
      help: false,
    });
  });

  it('takes --tls as a flag without a value', () => {
    expect(parseClusterArgs(['--tls']).tls).toBe(true);
    expect(() => parseClusterArgs(['--tls=yes'])).toThrow(UsageError);
    expect(() => parseClusterArgs(['--tls=yes'])).toThrow('--tls takes no value');
  });

  it('reads --name value and --name=value', () => {
    const args = parseClusterArgs([
      '--masters',
      '3',
      '--workers=4',
      '--api-servers',
      '2',
      '--registry=etcd',
      '--no-build',
      '--ready-timeout',
      '60',
    ]);
    expect(args).toMatchObject({
      masters: 3,
      workers: 4,
      apiServers: 2,
      registry: 'etcd',
      build: false,
      readyTimeoutMs: 60_000,
    });
  });

  it('takes the registry from REGISTRY_TYPE unless --registry is given', () => {
    expect(parseClusterArgs([], { REGISTRY_TYPE: 'jdbc' }).registry).toBe('jdbc');
    expect(parseClusterArgs(['--registry', 'etcd'], { REGISTRY_TYPE: 'jdbc' }).registry).toBe('etcd');
    expect(() => parseClusterArgs([], { REGISTRY_TYPE: 'consul' })).toThrow(
      'REGISTRY_TYPE must be one of zookeeper, jdbc, etcd, got "consul"',
    );
  });

  it.each([
    [['--masters', '0'], '--masters must be a whole number from 1 to 32, got "0"'],
    [['--workers', '33'], '--workers must be a whole number from 1 to 32, got "33"'],
    [['--api-servers', '1.5'], '--api-servers must be a whole number from 1 to 32, got "1.5"'],
    [['--masters', '-1'], '--masters must be a whole number from 1 to 32, got "-1"'],
    [['--masters', 'two'], '--masters must be a whole number from 1 to 32, got "two"'],
    [['--masters'], '--masters needs a value'],
    [['--masters', '--workers', '2'], '--masters needs a value'],
    [['--masters=', '2'], '--masters needs a value'],
    [['--masters', '2', '--masters', '3'], '--masters is given twice'],
    [['--registry', 'consul'], '--registry must be one of zookeeper, jdbc, etcd, got "consul"'],
    [['--ready-timeout', '0'], '--ready-timeout must be a whole number of seconds from 1 to 3600, got "0"'],
    [['--nodes', '3'], 'unknown option --nodes (try --help)'],
    [['3'], 'unexpected argument "3"'],
    [['--no-build=yes'], '--no-build takes no value'],
  ])('refuses %j with a clear message', (argv, message) => {
    expect(() => parseClusterArgs(argv)).toThrow(new UsageError(message));
  });

  it('knows --help', () => {
    expect(parseClusterArgs(['--help']).help).toBe(true);
    expect(parseClusterArgs(['-h']).help).toBe(true);
  });
});

describe('npm run cluster: environment', () => {
  it('uses the documented defaults and generates a secret', () => {
    const s = resolveSettings({}, 'zookeeper');
    expect(s).toMatchObject({
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 2_000,
      secretFromEnv: false,
      databaseUrl: undefined,
      zookeeperConnect: undefined,
    });
    expect(s.clusterSecret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(resolveSettings({}, 'zookeeper').clusterSecret).not.toBe(s.clusterSecret);
  });

  it('takes the session timeout from the environment and keeps the heartbeat below it', () => {
    expect(resolveSettings({ REGISTRY_SESSION_TIMEOUT_MS: '5000' }, 'jdbc')).toMatchObject({
      sessionTimeoutMs: 5000,
      heartbeatIntervalMs: 1666,
    });
    expect(resolveSettings({ REGISTRY_SESSION_TIMEOUT_MS: '30000' }, 'jdbc').heartbeatIntervalMs).toBe(2000);
    expect(
      resolveSettings({ REGISTRY_SESSION_TIMEOUT_MS: '3000', HEARTBEAT_INTERVAL_MS: '500' }, 'jdbc'),
    ).toMatchObject({ sessionTimeoutMs: 3000, heartbeatIntervalMs: 500 });
  });

  it('passes LOG_FORMAT on to the nodes only when it is set', () => {
    expect(resolveSettings({ LOG_FORMAT: 'json' }, 'jdbc').logFormat).toBe('json');
    expect(resolveSettings({}, 'jdbc')).not.toHaveProperty('logFormat');
  });

  it('uses existing servers only for the chosen registry', () => {
    const env = {
      DATABASE_URL: 'postgres://u:p@db:5432/porpoise',
      ZOOKEEPER_CONNECT: 'zk:2181',
      ETCD_ENDPOINTS: 'http://etcd:2379',
      CLUSTER_SECRET: 'a-secret-of-enough-length',
    };
    expect(resolveSettings(env, 'zookeeper')).toMatchObject({
      databaseUrl: env.DATABASE_URL,
      zookeeperConnect: 'zk:2181',
      etcdEndpoints: undefined,
      clusterSecret: env.CLUSTER_SECRET,
      secretFromEnv: true,
    });
    expect(resolveSettings(env, 'etcd')).toMatchObject({
      zookeeperConnect: undefined,
      etcdEndpoints: 'http://etcd:2379',
    });
  });

  it.each([
    [{ REGISTRY_SESSION_TIMEOUT_MS: '100' }, 'REGISTRY_SESSION_TIMEOUT_MS: must be between 400 and 600000'],
    [{ REGISTRY_SESSION_TIMEOUT_MS: 'soon' }, 'REGISTRY_SESSION_TIMEOUT_MS: must be a whole number'],
    [
      { HEARTBEAT_INTERVAL_MS: '10000' },
      'HEARTBEAT_INTERVAL_MS: must be less than REGISTRY_SESSION_TIMEOUT_MS',
    ],
    [{ DATABASE_URL: 'mysql://db/x' }, 'DATABASE_URL: must use postgres://'],
    [{ ZOOKEEPER_CONNECT: 'zk' }, 'ZOOKEEPER_CONNECT: expected host:port'],
    [{ CLUSTER_SECRET: 'short' }, 'CLUSTER_SECRET: must be at least 16 characters'],
    [{ LOG_FORMAT: 'xml' }, 'LOG_FORMAT: must be one of text, json'],
    [{ ADMIN_TOKEN: 'short' }, 'ADMIN_TOKEN: must be at least 32 characters'],
  ])('refuses %j, naming the variable', (env, message) => {
    expect(() => resolveSettings(env, 'zookeeper')).toThrow(UsageError);
    expect(() => resolveSettings(env, 'zookeeper')).toThrow(`invalid configuration: ${message}`);
  });
});

describe('npm run cluster: admin token', () => {
  it('takes ADMIN_TOKEN from its environment; otherwise none (it generates .porpoise/admin-token)', () => {
    const token = 'a'.repeat(40);
    expect(resolveSettings({ ADMIN_TOKEN: token }, 'jdbc').adminToken).toBe(token);
    expect(resolveSettings({}, 'jdbc')).not.toHaveProperty('adminToken');
  });
});
