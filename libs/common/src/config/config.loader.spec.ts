import { ConfigError } from './config.errors';
import { loadConfig, type ConfigEnv } from './config.loader';

const cluster: ConfigEnv = {
  DATABASE_URL: 'postgres://u:p@db:5432/porpoise',
  CLUSTER_SECRET: 'a-secret-of-enough-length',
};

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig(cluster, 'master');
    expect(c.registry).toEqual({
      type: 'zookeeper',
      zookeeperConnect: '127.0.0.1:2181',
      etcdEndpoints: ['http://127.0.0.1:2379'],
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 2_000,
    });
    expect([c.nodeHost, c.bindHost, c.apiPort, c.masterPort, c.workerPort, c.workerGroup]).toEqual([
      '127.0.0.1',
      '127.0.0.1',
      12345,
      5678,
      1234,
      'default',
    ]);
  });

  it('defaults standalone to the JDBC registry and lets it go without DATABASE_URL and CLUSTER_SECRET', () => {
    const c = loadConfig({}, 'standalone');
    expect(c.registry.type).toBe('jdbc');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.clusterSecret).toBeUndefined();
  });

  it('reads every variable', () => {
    const c = loadConfig(
      {
        ...cluster,
        REGISTRY_TYPE: 'etcd',
        ETCD_ENDPOINTS: 'http://e1:2379, https://e2:2379',
        ZOOKEEPER_CONNECT: 'z1:2181,z2:2181/porpoise',
        REGISTRY_SESSION_TIMEOUT_MS: '5000',
        HEARTBEAT_INTERVAL_MS: '1000',
        NODE_HOST: 'master-1',
        BIND_HOST: '0.0.0.0',
        API_PORT: '8080',
        MASTER_PORT: '5679',
        WORKER_PORT: '1235',
        WORKER_GROUP: 'gpu',
        DATA_DIR: '/var/lib/porpoise',
      },
      'worker',
    );
    expect(c.registry.type).toBe('etcd');
    expect(c.registry.etcdEndpoints).toEqual(['http://e1:2379', 'https://e2:2379']);
    expect(c.registry.zookeeperConnect).toBe('z1:2181,z2:2181/porpoise');
    expect([c.nodeHost, c.bindHost, c.apiPort, c.masterPort, c.workerPort, c.workerGroup, c.dataDir]).toEqual(
      ['master-1', '0.0.0.0', 8080, 5679, 1235, 'gpu', '/var/lib/porpoise'],
    );
  });

  it.each<[ConfigEnv, string]>([
    [{ CLUSTER_SECRET: cluster.CLUSTER_SECRET }, 'DATABASE_URL'],
    [{ ...cluster, DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
    [{ ...cluster, DATABASE_URL: 'mysql://h/db' }, 'DATABASE_URL'],
    [{ ...cluster, REGISTRY_TYPE: 'consul' }, 'REGISTRY_TYPE'],
    [{ ...cluster, ZOOKEEPER_CONNECT: 'nohostport' }, 'ZOOKEEPER_CONNECT'],
    [{ ...cluster, ZOOKEEPER_CONNECT: 'h:99999' }, 'ZOOKEEPER_CONNECT'],
    [{ ...cluster, ETCD_ENDPOINTS: 'e1:2379' }, 'ETCD_ENDPOINTS'],
    [{ ...cluster, REGISTRY_SESSION_TIMEOUT_MS: '10s' }, 'REGISTRY_SESSION_TIMEOUT_MS'],
    [{ ...cluster, REGISTRY_SESSION_TIMEOUT_MS: '100' }, 'REGISTRY_SESSION_TIMEOUT_MS'],
    [{ ...cluster, HEARTBEAT_INTERVAL_MS: '-5' }, 'HEARTBEAT_INTERVAL_MS'],
    [{ ...cluster, HEARTBEAT_INTERVAL_MS: '20000' }, 'HEARTBEAT_INTERVAL_MS'],
    [{ ...cluster, NODE_HOST: 'bad host' }, 'NODE_HOST'],
    [{ ...cluster, API_PORT: '70000' }, 'API_PORT'],
    [{ ...cluster, MASTER_PORT: 'x' }, 'MASTER_PORT'],
    [{ ...cluster, WORKER_PORT: '0' }, 'WORKER_PORT'],
    [{ ...cluster, WORKER_GROUP: 'a/b' }, 'WORKER_GROUP'],
    [{ ...cluster, WORKER_CAPACITY: '0' }, 'WORKER_CAPACITY'],
    [{ DATABASE_URL: cluster.DATABASE_URL }, 'CLUSTER_SECRET'],
    [{ ...cluster, CLUSTER_SECRET: 'short' }, 'CLUSTER_SECRET'],
  ])('rejects %j naming %s', (env, variable) => {
    expect(() => loadConfig(env, 'master')).toThrow(ConfigError);
    expect(() => loadConfig(env, 'master')).toThrow(new RegExp(`^${variable}: `));
  });

  it('never puts the secret in an error message', () => {
    const secret = 'x'.repeat(10);
    try {
      loadConfig({ ...cluster, CLUSTER_SECRET: secret }, 'master');
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect((err as Error).message).not.toContain(secret);
    }
  });
});
