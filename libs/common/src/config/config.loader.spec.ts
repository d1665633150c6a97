import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority } from '../../../../scripts/cluster/certificates';
import { ConfigError } from './config.errors';
import { CONFIG_VARIABLES, loadConfig, standaloneRoles, type ConfigEnv } from './config.loader';
import { resolveSecretFiles, SECRET_FILE_VARIABLES } from './secret-files';

const cluster: ConfigEnv = {
  DATABASE_URL: 'postgres://u:p@db:5432/porpoise',
  CLUSTER_SECRET: 'a-secret-of-enough-length',
};

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const master = loadConfig(cluster, 'master');
    expect(master.registry).toEqual({
      type: 'zookeeper',
      connect: '127.0.0.1:2181',
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 2_000,
    });
    expect([master.nodeHost, master.bindHost, master.masterPort, master.maxFaultReruns]).toEqual([
      '127.0.0.1',
      '127.0.0.1',
      5678,
      3,
    ]);
    expect(master.scheduleMisfireThresholdMs).toBe(60_000);
    expect(
      loadConfig({ ...cluster, SCHEDULE_MISFIRE_THRESHOLD_MS: '2000' }, 'master').scheduleMisfireThresholdMs,
    ).toBe(2000);
    expect(loadConfig(cluster, 'api-server').apiPort).toBe(12345);
    const worker = loadConfig(cluster, 'worker');
    expect([worker.workerPort, worker.workerGroup, worker.workerCapacity]).toEqual([1234, 'default', 32]);
  });

  it('gives each role what it needs, and nothing of the others', () => {
    const master = loadConfig(cluster, 'master');
    expect(master).toMatchObject({
      role: 'master',
      databaseUrl: cluster.DATABASE_URL,
      clusterSecret: cluster.CLUSTER_SECRET,
    });
    expect(master).not.toHaveProperty('workerPort');
    expect(master).not.toHaveProperty('apiPort');
    const worker = loadConfig(cluster, 'worker');
    expect(worker).toMatchObject({ role: 'worker', clusterSecret: cluster.CLUSTER_SECRET });
    // A worker on ZooKeeper or etcd never touches the database.
    expect(worker).not.toHaveProperty('databaseUrl');
    expect(loadConfig({ CLUSTER_SECRET: cluster.CLUSTER_SECRET }, 'worker').role).toBe('worker');
  });

  it('requires DATABASE_URL of a worker only on the JDBC registry, and puts it in the registry settings', () => {
    expect(() =>
      loadConfig({ CLUSTER_SECRET: cluster.CLUSTER_SECRET, REGISTRY_TYPE: 'jdbc' }, 'worker'),
    ).toThrow(/^DATABASE_URL: required with REGISTRY_TYPE=jdbc/);
    const worker = loadConfig({ ...cluster, REGISTRY_TYPE: 'jdbc' }, 'worker');
    expect(worker.registry).toMatchObject({ type: 'jdbc', databaseUrl: cluster.DATABASE_URL });
  });

  it('defaults standalone to the JDBC registry and lets it go without DATABASE_URL and CLUSTER_SECRET', () => {
    const c = loadConfig({}, 'standalone');
    expect(c.registryType).toBe('jdbc');
    expect(c.databaseUrl).toBeUndefined();
    expect(c.clusterSecret).toBeUndefined();
  });

  it('compiles the three roles of a standalone node once its database and secret are known', () => {
    const standalone = loadConfig({ MASTER_PORT: '5680', WORKER_GROUP: 'gpu' }, 'standalone');
    const roles = standaloneRoles(standalone, {
      databaseUrl: cluster.DATABASE_URL!,
      clusterSecret: 's'.repeat(16),
    });
    expect(roles.master).toMatchObject({
      role: 'master',
      masterPort: 5680,
      databaseUrl: cluster.DATABASE_URL,
    });
    expect(roles.worker).toMatchObject({ role: 'worker', workerGroup: 'gpu', clusterSecret: 's'.repeat(16) });
    expect(roles.api.registry).toMatchObject({ type: 'jdbc', databaseUrl: cluster.DATABASE_URL });
  });

  it('gives masters and API servers one data-source key: DATASOURCE_KEY, else derived from the cluster secret', () => {
    const derived = loadConfig(cluster, 'master').datasourceKey;
    expect(derived).toHaveLength(32);
    expect(loadConfig(cluster, 'api-server').datasourceKey.equals(derived)).toBe(true);
    const hex = 'ab'.repeat(32);
    const given = loadConfig({ ...cluster, DATASOURCE_KEY: hex }, 'api-server').datasourceKey;
    expect(given.toString('hex')).toBe(hex);
    const base64 = Buffer.from(hex, 'hex').toString('base64');
    expect(loadConfig({ ...cluster, DATASOURCE_KEY: base64 }, 'master').datasourceKey.equals(given)).toBe(
      true,
    );
    expect(loadConfig(cluster, 'worker')).not.toHaveProperty('datasourceKey');
  });

  it('reads every variable', () => {
    const env: ConfigEnv = {
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
      WORKER_CAPACITY: '7',
      DATA_DIR: '/var/lib/porpoise',
      METRICS_PORT: '9100',
      LOG_FORMAT: 'json',
    };
    const worker = loadConfig(env, 'worker');
    expect(worker.registry).toEqual({
      type: 'etcd',
      endpoints: ['http://e1:2379', 'https://e2:2379'],
      sessionTimeoutMs: 5000,
      heartbeatIntervalMs: 1000,
    });
    expect([
      worker.nodeHost,
      worker.bindHost,
      worker.workerPort,
      worker.workerGroup,
      worker.workerCapacity,
      worker.dataDir,
    ]).toEqual(['master-1', '0.0.0.0', 1235, 'gpu', 7, '/var/lib/porpoise']);
    expect(loadConfig(env, 'api-server').apiPort).toBe(8080);
    expect(loadConfig(env, 'master').masterPort).toBe(5679);
    expect([worker.metricsPort, worker.logFormat]).toEqual([9100, 'json']);
    expect(loadConfig(env, 'master').metricsPort).toBe(9100);
    expect(loadConfig(env, 'api-server').logFormat).toBe('json');
    expect(loadConfig({ ...env, REGISTRY_TYPE: 'zookeeper' }, 'master').registry).toMatchObject({
      connect: 'z1:2181,z2:2181/porpoise',
    });
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
    [{ ...cluster, DATASOURCE_KEY: 'abcd' }, 'DATASOURCE_KEY'],
    [{ ...cluster, MAX_FAULT_RERUNS: '-1' }, 'MAX_FAULT_RERUNS'],
    [{ ...cluster, SCHEDULE_MISFIRE_THRESHOLD_MS: '100' }, 'SCHEDULE_MISFIRE_THRESHOLD_MS'],
    [{ ...cluster, SCHEDULE_MISFIRE_THRESHOLD_MS: '1m' }, 'SCHEDULE_MISFIRE_THRESHOLD_MS'],
    [{ ...cluster, DATASOURCE_KEY: 'zz'.repeat(32) }, 'DATASOURCE_KEY'],
    [{ ...cluster, METRICS_PORT: '65536' }, 'METRICS_PORT'],
    [{ ...cluster, METRICS_PORT: '-1' }, 'METRICS_PORT'],
    [{ ...cluster, METRICS_PORT: '9100x' }, 'METRICS_PORT'],
    [{ ...cluster, METRICS_PORT: '5678' }, 'METRICS_PORT'],
    [{ ...cluster, MASTER_PORT: '5679' }, 'METRICS_PORT'],
    [{ ...cluster, LOG_FORMAT: 'xml' }, 'LOG_FORMAT'],
    [{ ...cluster, LOG_FORMAT: 'JSON' }, 'LOG_FORMAT'],
    [{ ...cluster, TASK_LOG_MAX_BYTES: '1023' }, 'TASK_LOG_MAX_BYTES'],
    [{ ...cluster, TASK_LOG_MAX_BYTES: '64MiB' }, 'TASK_LOG_MAX_BYTES'],
    [{ ...cluster, TASK_LOG_MAX_BYTES: String(2 ** 40 + 1) }, 'TASK_LOG_MAX_BYTES'],
    [{ ...cluster, RETENTION_DAYS: '0' }, 'RETENTION_DAYS'],
    [{ ...cluster, RETENTION_DAYS: '3651' }, 'RETENTION_DAYS'],
    [{ ...cluster, RETENTION_DAYS: '1.5' }, 'RETENTION_DAYS'],
    [{ ...cluster, AUDIT_RETENTION_DAYS: '0' }, 'AUDIT_RETENTION_DAYS'],
    [{ ...cluster, AUDIT_RETENTION_DAYS: '36501' }, 'AUDIT_RETENTION_DAYS'],
    [{ ...cluster, MASTER_MAX_RUNNING_INSTANCES: '0' }, 'MASTER_MAX_RUNNING_INSTANCES'],
    [{ ...cluster, MASTER_MAX_RUNNING_INSTANCES: '1000001' }, 'MASTER_MAX_RUNNING_INSTANCES'],
  ])('rejects %j naming %s', (env, variable) => {
    expect(() => loadConfig(env, 'master')).toThrow(ConfigError);
    expect(() => loadConfig(env, 'master')).toThrow(new RegExp(`^${variable}: `));
  });

  it('reads the bounds: defaults, values, and each role keeps only its own', () => {
    const master = loadConfig(cluster, 'master');
    expect([master.retentionDays, master.auditRetentionDays, master.maxRunningInstances]).toEqual([
      30, 365, 1000,
    ]);
    const worker = loadConfig(cluster, 'worker');
    expect([worker.taskLogMaxBytes, worker.retentionDays]).toEqual([67_108_864, 30]);
    expect(worker).not.toHaveProperty('maxRunningInstances');
    expect(master).not.toHaveProperty('taskLogMaxBytes');
    const env = {
      ...cluster,
      TASK_LOG_MAX_BYTES: '1024',
      RETENTION_DAYS: '3650',
      MASTER_MAX_RUNNING_INSTANCES: '2',
    };
    expect(loadConfig(env, 'worker')).toMatchObject({ taskLogMaxBytes: 1024, retentionDays: 3650 });
    expect(loadConfig(env, 'master')).toMatchObject({ retentionDays: 3650, maxRunningInstances: 2 });
    const roles = standaloneRoles(loadConfig({ RETENTION_DAYS: '7' }, 'standalone'), {
      databaseUrl: cluster.DATABASE_URL ?? '',
      clusterSecret: cluster.CLUSTER_SECRET ?? '',
    });
    expect([roles.master.retentionDays, roles.worker.retentionDays]).toEqual([7, 7]);
  });

  it('gives masters and workers a metrics port of their own: a default per role, 0 for none', () => {
    expect(loadConfig(cluster, 'master').metricsPort).toBe(5679);
    expect(loadConfig(cluster, 'worker').metricsPort).toBe(1235);
    expect(loadConfig(cluster, 'master').logFormat).toBe('text');
    expect(loadConfig({ ...cluster, METRICS_PORT: '0' }, 'master').metricsPort).toBe(0);
    expect(loadConfig({ ...cluster, METRICS_PORT: ' 9464 ' }, 'worker').metricsPort).toBe(9464);
    // The API server serves /metrics on API_PORT: nothing of its own.
    expect(loadConfig({ ...cluster, METRICS_PORT: '9464' }, 'api-server')).not.toHaveProperty('metricsPort');
    // Never the node's own gRPC port, whether given or defaulted; 0 never clashes.
    expect(() => loadConfig({ ...cluster, WORKER_PORT: '9000', METRICS_PORT: '9000' }, 'worker')).toThrow(
      /^METRICS_PORT: 9000 is WORKER_PORT too/,
    );
    expect(() => loadConfig({ ...cluster, WORKER_PORT: '1235' }, 'worker')).toThrow(
      /^METRICS_PORT: 1235 \(the worker's default\) is WORKER_PORT too/,
    );
    expect(loadConfig({ ...cluster, WORKER_PORT: '1235', METRICS_PORT: '0' }, 'worker').metricsPort).toBe(0);
  });

  it('gives the standalone master METRICS_PORT and its worker the next port, each role its default otherwise', () => {
    const resolved = { databaseUrl: cluster.DATABASE_URL!, clusterSecret: 's'.repeat(16) };
    const defaults = standaloneRoles(loadConfig({}, 'standalone'), resolved);
    expect([defaults.master.metricsPort, defaults.worker.metricsPort]).toEqual([5679, 1235]);
    const given = standaloneRoles(
      loadConfig({ METRICS_PORT: '9100', LOG_FORMAT: 'json' }, 'standalone'),
      resolved,
    );
    expect([given.master.metricsPort, given.worker.metricsPort]).toEqual([9100, 9101]);
    expect([given.master.logFormat, given.worker.logFormat, given.api.logFormat]).toEqual([
      'json',
      'json',
      'json',
    ]);
    const off = standaloneRoles(loadConfig({ METRICS_PORT: '0' }, 'standalone'), resolved);
    expect([off.master.metricsPort, off.worker.metricsPort]).toEqual([0, 0]);
  });

  it.each<[ConfigEnv, RegExp]>([
    [{ METRICS_PORT: '65535' }, /^METRICS_PORT: a standalone node serves the worker on METRICS_PORT \+ 1/],
    [{ METRICS_PORT: '12344' }, /^METRICS_PORT: port 12345 is both API_PORT and the worker's metrics port/],
    [{ METRICS_PORT: '1234' }, /^METRICS_PORT: port 1234 is both WORKER_PORT and the master's METRICS_PORT/],
    [{ API_PORT: '1235' }, /^METRICS_PORT: port 1235 is both API_PORT and the worker's metrics port/],
    [{ WORKER_PORT: '5678' }, /^WORKER_PORT: port 5678 is both MASTER_PORT and WORKER_PORT/],
  ])('refuses a standalone node whose listeners share a port: %j', (env, message) => {
    expect(() => loadConfig(env, 'standalone')).toThrow(ConfigError);
    expect(() => loadConfig(env, 'standalone')).toThrow(message);
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

describe('API access: ADMIN_TOKEN, ADMIN_TOKEN_FILE, CORS_ORIGINS', () => {
  const token = 't'.repeat(32);

  it('gives the API server ADMIN_TOKEN, and no other role', () => {
    expect(loadConfig({ ...cluster, ADMIN_TOKEN: token }, 'api-server').adminToken).toBe(token);
    expect(loadConfig(cluster, 'api-server').adminToken).toBeUndefined();
    expect(loadConfig({ ...cluster, ADMIN_TOKEN: token }, 'master')).not.toHaveProperty('adminToken');
    expect(loadConfig({ ...cluster, ADMIN_TOKEN: token }, 'worker')).not.toHaveProperty('adminToken');
  });

  it('refuses an ADMIN_TOKEN shorter than 32 characters, without showing it', () => {
    const short = 'x'.repeat(31);
    expect(() => loadConfig({ ...cluster, ADMIN_TOKEN: short }, 'api-server')).toThrow(
      /^ADMIN_TOKEN: must be at least 32 characters/,
    );
    expect(() => loadConfig({ ...cluster, ADMIN_TOKEN: short }, 'master')).toThrow(ConfigError);
    try {
      loadConfig({ ...cluster, ADMIN_TOKEN: short }, 'api-server');
    } catch (err) {
      expect((err as Error).message).not.toContain(short);
    }
  });

  it('reads ADMIN_TOKEN_FILE through resolveFileVariables, and only there', () => {
    const files: Record<string, string> = { '/run/secrets/admin': `${token}\n` };
    const read = (path: string): string => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return text;
    };
    const env = resolveSecretFiles({ ...cluster, ADMIN_TOKEN_FILE: '/run/secrets/admin' }, undefined, read);
    expect(env.ADMIN_TOKEN).toBe(token);
    expect(env).not.toHaveProperty('ADMIN_TOKEN_FILE');
    expect(loadConfig(env, 'api-server').adminToken).toBe(token);
    expect(() => resolveSecretFiles({ ADMIN_TOKEN_FILE: '/nope' }, undefined, read)).toThrow(
      /^ADMIN_TOKEN_FILE: cannot read "\/nope" \(ENOENT\)/,
    );
    expect(() =>
      resolveSecretFiles({ ADMIN_TOKEN: token, ADMIN_TOKEN_FILE: '/run/secrets/admin' }, undefined, read),
    ).toThrow(/^ADMIN_TOKEN_FILE: set either ADMIN_TOKEN or ADMIN_TOKEN_FILE, not both/);
    files['/empty'] = '\n';
    expect(() => resolveSecretFiles({ ADMIN_TOKEN_FILE: '/empty' }, undefined, read)).toThrow(/is empty/);
    // A file's short token is refused like a short variable.
    files['/short'] = 'abc';
    expect(() =>
      loadConfig(
        resolveSecretFiles({ ...cluster, ADMIN_TOKEN_FILE: '/short' }, undefined, read),
        'api-server',
      ),
    ).toThrow(/^ADMIN_TOKEN: must be at least 32/);
  });

  it('turns CORS on only for the listed origins', () => {
    expect(loadConfig(cluster, 'api-server').corsOrigins).toEqual([]);
    expect(
      loadConfig(
        { ...cluster, CORS_ORIGINS: 'https://console.example.com, http://localhost:3000/' },
        'api-server',
      ).corsOrigins,
    ).toEqual(['https://console.example.com', 'http://localhost:3000']);
    for (const bad of ['*', 'console.example.com', 'https://x.example/path', 'ftp://x.example']) {
      expect(() => loadConfig({ ...cluster, CORS_ORIGINS: bad }, 'api-server')).toThrow(
        /^CORS_ORIGINS: not an origin/,
      );
    }
  });

  it('hands a standalone node its resolved admin token, ADMIN_TOKEN first', () => {
    const generated = 'g'.repeat(43);
    const resolved = {
      databaseUrl: cluster.DATABASE_URL!,
      clusterSecret: 's'.repeat(16),
      adminToken: generated,
    };
    expect(standaloneRoles(loadConfig({}, 'standalone'), resolved).api.adminToken).toBe(generated);
    const given = loadConfig({ ADMIN_TOKEN: token }, 'standalone');
    expect(given.adminToken).toBe(token);
    const roles = standaloneRoles(given, resolved);
    expect(roles.api.adminToken).toBe(token);
    expect(roles.master).not.toHaveProperty('adminToken');
  });
});

describe('secrets as files (<NAME>_FILE)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'porpoise-secret-files-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function file(name: string, content: string): string {
    const path = join(dir, name);
    writeFileSync(path, content, { mode: 0o600 });
    return path;
  }

  it('lists every secret file variable among the variables Porpoise reads', () => {
    expect(SECRET_FILE_VARIABLES).toEqual([
      'CLUSTER_SECRET',
      'DATABASE_URL',
      'DATASOURCE_KEY',
      'ADMIN_TOKEN',
      'ZOOKEEPER_AUTH',
      'ETCD_PASSWORD',
    ]);
    for (const name of SECRET_FILE_VARIABLES) expect(CONFIG_VARIABLES).toContain(`${name}_FILE`);
  });

  it('replaces each <NAME>_FILE by <NAME>, the trailing line break trimmed, and loads as before', () => {
    const key = 'ab'.repeat(32);
    const env = resolveSecretFiles({
      CLUSTER_SECRET_FILE: file('secret', 'a-secret-from-a-file\n'),
      DATABASE_URL_FILE: file('url', 'postgres://u:p%20w@db:5432/porpoise\r\n'),
      DATASOURCE_KEY_FILE: file('key', `${key}\n\n`),
      WORKER_GROUP: 'etl',
    });
    expect(env).toEqual({
      CLUSTER_SECRET: 'a-secret-from-a-file',
      DATABASE_URL: 'postgres://u:p%20w@db:5432/porpoise',
      DATASOURCE_KEY: key,
      WORKER_GROUP: 'etl',
    });
    const master = loadConfig(env, 'master');
    expect(master.clusterSecret).toBe('a-secret-from-a-file');
    expect(master.datasourceKey.toString('hex')).toBe(key);
  });

  it('keeps spaces inside a secret and leaves an environment without _FILE variables as it is', () => {
    expect(resolveSecretFiles({ CLUSTER_SECRET_FILE: file('spaced', 'two words here\n') })).toEqual({
      CLUSTER_SECRET: 'two words here',
    });
    expect(resolveSecretFiles(cluster)).toEqual(cluster);
    expect(resolveSecretFiles({ ...cluster, CLUSTER_SECRET_FILE: '  ' })).toEqual(cluster);
  });

  it.each<[ConfigEnv, RegExp]>([
    [
      { CLUSTER_SECRET: 'x'.repeat(20), CLUSTER_SECRET_FILE: '/dev/null' },
      /^CLUSTER_SECRET_FILE: set either CLUSTER_SECRET or CLUSTER_SECRET_FILE, not both$/,
    ],
    [
      { DATABASE_URL_FILE: '/no/such/file' },
      /^DATABASE_URL_FILE: cannot read "\/no\/such\/file" \(ENOENT\)$/,
    ],
    [{ DATASOURCE_KEY_FILE: '/' }, /^DATASOURCE_KEY_FILE: cannot read "\/" \(EISDIR\)$/],
  ])('refuses %j', (env, message) => {
    expect(() => resolveSecretFiles(env)).toThrow(ConfigError);
    expect(() => resolveSecretFiles(env)).toThrow(message);
  });

  it('refuses an empty file (a line break alone is empty)', () => {
    const path = file('empty', '\n');
    expect(() => resolveSecretFiles({ CLUSTER_SECRET_FILE: path })).toThrow(
      `CLUSTER_SECRET_FILE: ${JSON.stringify(path)} is empty`,
    );
  });

  it('refuses a file it may not read, without its content in the message', () => {
    const path = file('unreadable', 'the-secret-content');
    const denied = () => {
      throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    };
    // As root the mode does not stop a read: the reader stands in for the kernel's refusal.
    expect(() => resolveSecretFiles({ CLUSTER_SECRET_FILE: path }, undefined, denied)).toThrow(
      /^CLUSTER_SECRET_FILE: cannot read ".*" \(EACCES\)$/,
    );
  });

  it('resolves the names it is given, so another secret joins by name', () => {
    expect(resolveSecretFiles({ ADMIN_TOKEN_FILE: '/f' }, ['ADMIN_TOKEN'], () => 'token\n')).toEqual({
      ADMIN_TOKEN: 'token',
    });
  });
});

describe('TASK_USER and TASK_WORK_DIR', () => {
  it('defaults to nobody (not explicit) and a directory under the OS temp directory', () => {
    const worker = loadConfig(cluster, 'worker');
    expect(worker.taskUser).toEqual({ name: 'nobody', explicit: false });
    expect(worker.taskWorkDir).toBe(join(tmpdir(), 'porpoise-tasks'));
    const given = loadConfig({ ...cluster, TASK_USER: 'etl', TASK_WORK_DIR: '/srv/tasks' }, 'worker');
    expect(given.taskUser).toEqual({ name: 'etl', explicit: true });
    expect(given.taskWorkDir).toBe('/srv/tasks');
    expect(loadConfig({ ...cluster, TASK_USER: 'root' }, 'worker').taskUser).toEqual({
      name: 'root',
      explicit: true,
    });
  });

  it.each<[ConfigEnv, RegExp]>([
    [{ TASK_USER: 'bad name' }, /^TASK_USER: not a user name: "bad name"$/],
    [{ TASK_USER: '-rf' }, /^TASK_USER: not a user name/],
    [{ TASK_WORK_DIR: 'tasks' }, /^TASK_WORK_DIR: must be an absolute path, got "tasks"$/],
    [
      { DATA_DIR: '/srv/porpoise', TASK_WORK_DIR: '/srv/porpoise/tasks' },
      /^TASK_WORK_DIR: must be outside DATA_DIR/,
    ],
    [
      { DATA_DIR: '/srv/porpoise', TASK_WORK_DIR: '/srv/porpoise' },
      /^TASK_WORK_DIR: must be outside DATA_DIR/,
    ],
  ])('refuses %j', (env, message) => {
    expect(() => loadConfig({ ...cluster, ...env }, 'worker')).toThrow(message);
  });

  it('accepts a work directory beside DATA_DIR whose name starts the same', () => {
    const worker = loadConfig(
      { ...cluster, DATA_DIR: '/srv/porpoise', TASK_WORK_DIR: '/srv/porpoise-tasks' },
      'worker',
    );
    expect(worker.taskWorkDir).toBe('/srv/porpoise-tasks');
  });

  it('reaches the worker of a standalone node', () => {
    const roles = standaloneRoles(loadConfig({ TASK_USER: 'etl' }, 'standalone'), {
      databaseUrl: 'postgres://u:p@h/db',
      clusterSecret: 'a-secret-of-enough-length',
    });
    expect(roles.worker.taskUser).toEqual({ name: 'etl', explicit: true });
  });
});

describe('TASK_TENANTS', () => {
  it('is off (empty) by default, and a comma list for workers and API servers', () => {
    expect(loadConfig(cluster, 'worker').taskTenants).toEqual([]);
    expect(loadConfig(cluster, 'api-server').taskTenants).toEqual([]);
    const env = { ...cluster, TASK_TENANTS: ' etl, reports ,,etl' };
    expect(loadConfig(env, 'worker').taskTenants).toEqual(['etl', 'reports']);
    expect(loadConfig(env, 'api-server').taskTenants).toEqual(['etl', 'reports']);
    expect(loadConfig(env, 'master')).not.toHaveProperty('taskTenants');
  });

  it.each(['etl,bad name', '-rf', 'machine$'])('refuses %j naming TASK_TENANTS', (list) => {
    expect(() => loadConfig({ ...cluster, TASK_TENANTS: list }, 'worker')).toThrow(
      /^TASK_TENANTS: not a user name/,
    );
  });
});

describe('loadConfig: mutual TLS (TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE)', () => {
  let dir = '';
  let files: { TLS_CA_FILE: string; TLS_CERT_FILE: string; TLS_KEY_FILE: string };
  let otherKey = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'porpoise-config-tls-'));
    const ca = await createCertificateAuthority();
    const leaf = await ca.issue('node-1', ['127.0.0.1', 'node-1.cluster']);
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text, { mode: 0o600 });
      return join(dir, name);
    };
    files = {
      TLS_CA_FILE: write('ca.pem', ca.cert),
      TLS_CERT_FILE: write('node.pem', leaf.cert),
      TLS_KEY_FILE: write('node.key', leaf.key),
    };
    otherKey = write('other.key', (await ca.issue('node-2', ['127.0.0.1'])).key);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('leaves TLS off when none of the three is set', () => {
    expect(loadConfig(cluster, 'master').tls).toBeUndefined();
  });

  it("reads the three files into every role's configuration", () => {
    for (const role of ['master', 'worker', 'api-server'] as const) {
      const tls = loadConfig({ ...cluster, ...files }, role).tls;
      expect(tls?.ca.toString()).toBe(readFileSync(files.TLS_CA_FILE, 'utf8'));
      expect(tls?.cert.toString()).toBe(readFileSync(files.TLS_CERT_FILE, 'utf8'));
      expect(tls?.key.toString()).toBe(readFileSync(files.TLS_KEY_FILE, 'utf8'));
    }
    // A standalone node passes them on to its three roles.
    const standalone = loadConfig({ ...files }, 'standalone');
    const roles = standaloneRoles(standalone, {
      databaseUrl: cluster.DATABASE_URL!,
      clusterSecret: 'x'.repeat(32),
    });
    expect(roles.worker.tls?.cert.toString()).toBe(readFileSync(files.TLS_CERT_FILE, 'utf8'));
  });

  it('wants all three or none, naming what is missing', () => {
    expect(() => loadConfig({ ...cluster, ...files, TLS_KEY_FILE: undefined }, 'worker')).toThrow(
      /^TLS_KEY_FILE: mutual TLS needs TLS_CA_FILE, TLS_CERT_FILE and TLS_KEY_FILE together; TLS_CA_FILE, TLS_CERT_FILE set, TLS_KEY_FILE missing/,
    );
    expect(() => loadConfig({ ...cluster, TLS_CERT_FILE: files.TLS_CERT_FILE }, 'standalone')).toThrow(
      /^TLS_CA_FILE: .*TLS_CA_FILE, TLS_KEY_FILE missing/,
    );
  });

  it('names the variable whose file is missing, not PEM, or does not fit', () => {
    expect(() =>
      loadConfig({ ...cluster, ...files, TLS_CA_FILE: join(dir, 'absent.pem') }, 'master'),
    ).toThrow(/^TLS_CA_FILE: cannot read .*absent\.pem \(ENOENT\)/);
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    expect(() => loadConfig({ ...cluster, ...files, TLS_CERT_FILE: notPem }, 'master')).toThrow(
      /^TLS_CERT_FILE: .* is not a PEM file/,
    );
    // A key as the CA certificate: PEM, but no certificate.
    expect(() => loadConfig({ ...cluster, ...files, TLS_CA_FILE: files.TLS_KEY_FILE }, 'master')).toThrow(
      /^TLS_CA_FILE: not a PEM X\.509 certificate/,
    );
    expect(() => loadConfig({ ...cluster, ...files, TLS_KEY_FILE: otherKey }, 'master')).toThrow(
      /^TLS_KEY_FILE: is not the private key of TLS_CERT_FILE's certificate/,
    );
  });

  it('wants the certificate of a master or worker to name NODE_HOST, which peers dial', () => {
    expect(loadConfig({ ...cluster, ...files, NODE_HOST: 'node-1.cluster' }, 'worker').tls).toBeDefined();
    for (const role of ['master', 'worker', 'standalone'] as const) {
      expect(() => loadConfig({ ...cluster, ...files, NODE_HOST: '10.1.2.3' }, role)).toThrow(
        /^TLS_CERT_FILE: the certificate does not name NODE_HOST 10\.1\.2\.3 in its subjectAltName/,
      );
    }
    // An API server only dials: its certificate is a client certificate.
    expect(loadConfig({ ...cluster, ...files, NODE_HOST: '10.1.2.3' }, 'api-server').tls).toBeDefined();
  });
});

describe('loadConfig: ZOOKEEPER_AUTH', () => {
  it('puts digest credentials in the ZooKeeper registry settings of every role', () => {
    for (const role of ['master', 'worker', 'api-server'] as const) {
      expect(loadConfig({ ...cluster, ZOOKEEPER_AUTH: 'porpoise:s3cret-pass' }, role).registry).toMatchObject(
        {
          type: 'zookeeper',
          auth: { user: 'porpoise', password: 's3cret-pass' },
        },
      );
    }
    expect(loadConfig(cluster, 'master').registry).not.toHaveProperty('auth');
    // A colon in the password is the password's.
    expect(loadConfig({ ...cluster, ZOOKEEPER_AUTH: 'u:a:b:c:d:e:f' }, 'worker').registry).toMatchObject({
      auth: { user: 'u', password: 'a:b:c:d:e:f' },
    });
  });

  it.each(['no-colon-here', ':password-only', 'user:short', 'us er:long-enough-password', 'zkuser:'])(
    'refuses %j naming ZOOKEEPER_AUTH, without echoing it',
    (raw) => {
      expect(() => loadConfig({ ...cluster, ZOOKEEPER_AUTH: raw }, 'master')).toThrow(
        /^ZOOKEEPER_AUTH: expected user:password/,
      );
      try {
        loadConfig({ ...cluster, ZOOKEEPER_AUTH: raw }, 'master');
      } catch (err) {
        expect((err as Error).message).not.toContain(raw);
      }
    },
  );
});

describe('loadConfig: ETCD_USERNAME and ETCD_PASSWORD', () => {
  const etcd: ConfigEnv = { ...cluster, REGISTRY_TYPE: 'etcd' };

  it('puts both in the etcd registry settings, or nothing', () => {
    expect(
      loadConfig({ ...etcd, ETCD_USERNAME: 'porpoise', ETCD_PASSWORD: ' spaced pass ' }, 'worker').registry,
    ).toMatchObject({ type: 'etcd', auth: { username: 'porpoise', password: ' spaced pass ' } });
    expect(loadConfig(etcd, 'worker').registry).not.toHaveProperty('auth');
  });

  it('wants both or neither, naming the missing one', () => {
    expect(() => loadConfig({ ...etcd, ETCD_USERNAME: 'porpoise' }, 'master')).toThrow(
      /^ETCD_PASSWORD: required with ETCD_USERNAME/,
    );
    expect(() => loadConfig({ ...etcd, ETCD_PASSWORD: 'a-password' }, 'master')).toThrow(
      /^ETCD_USERNAME: required with ETCD_PASSWORD/,
    );
  });
});

describe('loadConfig: MIGRATIONS', () => {
  it('has masters and API servers migrate unless MIGRATIONS=off; a worker has no say', () => {
    expect(loadConfig(cluster, 'master').runMigrations).toBe(true);
    expect(loadConfig(cluster, 'api-server').runMigrations).toBe(true);
    expect(loadConfig({ ...cluster, MIGRATIONS: 'off' }, 'master').runMigrations).toBe(false);
    expect(loadConfig({ ...cluster, MIGRATIONS: 'off' }, 'api-server').runMigrations).toBe(false);
    expect(loadConfig({ ...cluster, MIGRATIONS: 'on' }, 'worker')).not.toHaveProperty('runMigrations');
  });

  it('refuses anything but on and off', () => {
    expect(() => loadConfig({ ...cluster, MIGRATIONS: 'false' }, 'master')).toThrow(
      /^MIGRATIONS: must be one of on, off; got "false"/,
    );
  });
});

describe('loadConfig: the registry credentials from files (ZOOKEEPER_AUTH_FILE, ETCD_PASSWORD_FILE)', () => {
  let dir = '';
  const file = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text, { mode: 0o600 });
    return join(dir, name);
  };
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'porpoise-config-secrets-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads each from its file, without the trailing newline', () => {
    const master = loadConfig(
      resolveSecretFiles({ ...cluster, ZOOKEEPER_AUTH_FILE: file('zk', 'porpoise:zk-password\n') }),
      'master',
    );
    expect(master.registry).toMatchObject({ auth: { user: 'porpoise', password: 'zk-password' } });
    const worker = loadConfig(
      resolveSecretFiles({
        ...cluster,
        REGISTRY_TYPE: 'etcd',
        ETCD_USERNAME: 'porpoise',
        ETCD_PASSWORD_FILE: file('etcd', 'etcd password\n'),
      }),
      'worker',
    );
    expect(worker.registry).toMatchObject({ auth: { username: 'porpoise', password: 'etcd password' } });
  });

  it('refuses both a variable and its file, naming the _FILE variable', () => {
    expect(() =>
      resolveSecretFiles({ ZOOKEEPER_AUTH: 'a:bcdefghij', ZOOKEEPER_AUTH_FILE: file('zk2', 'a:bcdefghij') }),
    ).toThrow(/^ZOOKEEPER_AUTH_FILE: set either ZOOKEEPER_AUTH or ZOOKEEPER_AUTH_FILE, not both/);
  });
});
