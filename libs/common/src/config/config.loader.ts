import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { deriveDatasourceKey, SECRET_KEY_BYTES } from '../crypto/secret-box';
import { ConfigError } from './config.errors';
import { loadTlsMaterial, parseEtcdAuth, parseZooKeeperAuth } from './cluster-security.config';
import { resolveSecretFiles, SECRET_FILE_VARIABLES } from './secret-files';
import type {
  ApiServerConfig,
  ConfigFor,
  MasterConfig,
  NodeConfig,
  NodeRole,
  RegistrySettings,
  StandaloneConfig,
  WorkerConfig,
} from './config.types';

/** The variables Porpoise reads (DESIGN.md sections 3 and 12, plus BIND_HOST and DATA_DIR). */
export const CONFIG_VARIABLES = [
  'DATABASE_URL',
  'REGISTRY_TYPE',
  'ZOOKEEPER_CONNECT',
  'ETCD_ENDPOINTS',
  'REGISTRY_SESSION_TIMEOUT_MS',
  'HEARTBEAT_INTERVAL_MS',
  'NODE_HOST',
  'BIND_HOST',
  'API_PORT',
  'MASTER_PORT',
  'WORKER_PORT',
  'WORKER_GROUP',
  'WORKER_CAPACITY',
  'CLUSTER_SECRET',
  'DATA_DIR',
  'DATASOURCE_KEY',
  'MAX_FAULT_RERUNS',
  'SCHEDULE_MISFIRE_THRESHOLD_MS',
  'METRICS_PORT',
  'LOG_FORMAT',
  // API authentication and browsers (DESIGN.md section 11).
  'ADMIN_TOKEN',
  'CORS_ORIGINS',
  // Tasks and the node's secrets (docs/security.md): secrets as files, the tasks' OS user.
  ...SECRET_FILE_VARIABLES.map((name) => `${name}_FILE` as const),
  'TASK_USER',
  'TASK_WORK_DIR',
  'TASK_TENANTS',
  // Cluster security (DESIGN.md section 11): mutual TLS between nodes.
  'TLS_CA_FILE',
  'TLS_CERT_FILE',
  'TLS_KEY_FILE',
  // ZooKeeper digest ACLs: user:password.
  'ZOOKEEPER_AUTH',
  // etcd authentication: both or neither.
  'ETCD_USERNAME',
  'ETCD_PASSWORD',
  // Whether masters and API servers migrate the schema at start (on) or leave it to the operator.
  'MIGRATIONS',
  // Bounds (DESIGN.md section 11): nothing grows without limit.
  'TASK_LOG_MAX_BYTES',
  'RETENTION_DAYS',
  'AUDIT_RETENTION_DAYS',
  'MASTER_MAX_RUNNING_INSTANCES',
] as const;

export type ConfigVariable = (typeof CONFIG_VARIABLES)[number];
export type ConfigEnv = Partial<Record<ConfigVariable, string | undefined>>;

/**
 * METRICS_PORT when unset, per role: next to DolphinScheduler's own defaults (its master serves
 * HTTP on 5679, its worker on 1235), one above MASTER_PORT's and WORKER_PORT's defaults.
 */
export const DEFAULT_METRICS_PORT = { master: 5679, worker: 1235 } as const;

const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;
const HOST_PORT = /^([A-Za-z0-9.-]+):(\d{1,5})$/;
const GROUP = /^[A-Za-z0-9._-]{1,64}$/;
/** A POSIX-ish user name (what useradd accepts, a trailing $ for machine accounts included). */
const USER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$/;
/** The user tasks run as when the worker runs as root and TASK_USER is unset. */
export const DEFAULT_TASK_USER = 'nobody';

/**
 * Validates the environment into the typed configuration of one role, once, at start. Throws
 * ConfigError naming the first variable that is wrong. Reads only the env object it is given
 * and the files its variables name (TLS_*_FILE). Every variable is checked whatever the role,
 * so a typo never waits for another role.
 */
export function loadConfig<R extends NodeRole>(env: ConfigEnv, role: R): ConfigFor<R>;
export function loadConfig(env: ConfigEnv, role: NodeRole): NodeConfig | StandaloneConfig {
  const value = (name: ConfigVariable): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };

  const databaseUrl = value('DATABASE_URL');
  if (databaseUrl !== undefined) checkDatabaseUrl(databaseUrl);

  const registryType = oneOf(
    'REGISTRY_TYPE',
    value('REGISTRY_TYPE') ?? (role === 'standalone' ? 'jdbc' : 'zookeeper'),
    ['zookeeper', 'jdbc', 'etcd'] as const,
  );

  const zookeeperConnect = value('ZOOKEEPER_CONNECT') ?? '127.0.0.1:2181';
  checkZooKeeperConnect(zookeeperConnect);
  const zookeeperAuth = parseZooKeeperAuth(value('ZOOKEEPER_AUTH'));
  const etcdEndpoints = (value('ETCD_ENDPOINTS') ?? 'http://127.0.0.1:2379').split(',').map((s) => s.trim());
  etcdEndpoints.forEach(checkEtcdEndpoint);
  // Not trimmed: a password is taken as given.
  const etcdAuth = parseEtcdAuth(value('ETCD_USERNAME'), env.ETCD_PASSWORD || undefined);

  const sessionTimeoutMs = integer(
    'REGISTRY_SESSION_TIMEOUT_MS',
    value('REGISTRY_SESSION_TIMEOUT_MS'),
    10_000,
    400,
    600_000,
  );
  const heartbeatIntervalMs = integer(
    'HEARTBEAT_INTERVAL_MS',
    value('HEARTBEAT_INTERVAL_MS'),
    2_000,
    50,
    600_000,
  );
  if (heartbeatIntervalMs >= sessionTimeoutMs) {
    throw new ConfigError(
      'HEARTBEAT_INTERVAL_MS',
      `must be less than REGISTRY_SESSION_TIMEOUT_MS (${sessionTimeoutMs}), got ${heartbeatIntervalMs}`,
    );
  }

  const nodeHost = value('NODE_HOST') ?? '127.0.0.1';
  if (!HOST.test(nodeHost)) {
    throw new ConfigError('NODE_HOST', `not a host name or IPv4 address: ${JSON.stringify(nodeHost)}`);
  }
  const bindHost = value('BIND_HOST') ?? nodeHost;
  if (!HOST.test(bindHost)) {
    throw new ConfigError('BIND_HOST', `not a host name or IPv4 address: ${JSON.stringify(bindHost)}`);
  }

  const workerGroup = value('WORKER_GROUP') ?? 'default';
  if (!GROUP.test(workerGroup)) {
    throw new ConfigError('WORKER_GROUP', 'use 1 to 64 letters, digits, dots, dashes or underscores');
  }

  const clusterSecret = value('CLUSTER_SECRET');
  if (clusterSecret !== undefined && clusterSecret.length < 16) {
    throw new ConfigError('CLUSTER_SECRET', 'must be at least 16 characters');
  }

  const apiPort = integer('API_PORT', value('API_PORT'), 12345, 1, 65535);
  const masterPort = integer('MASTER_PORT', value('MASTER_PORT'), 5678, 1, 65535);
  const workerPort = integer('WORKER_PORT', value('WORKER_PORT'), 1234, 1, 65535);
  const workerCapacity = integer('WORKER_CAPACITY', value('WORKER_CAPACITY'), 32, 1, 10_000);
  const dataDir = value('DATA_DIR') ?? '.porpoise';
  const maxFaultReruns = integer('MAX_FAULT_RERUNS', value('MAX_FAULT_RERUNS'), 3, 0, 1000);
  // A due schedule fire time older than this is a misfire (its schedule's misfirePolicy decides).
  const scheduleMisfireThresholdMs = integer(
    'SCHEDULE_MISFIRE_THRESHOLD_MS',
    value('SCHEDULE_MISFIRE_THRESHOLD_MS'),
    60_000,
    500,
    86_400_000,
  );
  // 0 turns the /health and /metrics listener off; unset: the role's default.
  const metricsPortRaw = value('METRICS_PORT');
  const metricsPortGiven =
    metricsPortRaw === undefined ? undefined : integer('METRICS_PORT', metricsPortRaw, 0, 0, 65535);
  const runMigrations = oneOf('MIGRATIONS', value('MIGRATIONS') ?? 'on', ['on', 'off'] as const) === 'on';
  const logFormat = oneOf('LOG_FORMAT', value('LOG_FORMAT') ?? 'text', ['text', 'json'] as const);
  const { adminToken, corsOrigins } = apiAccess(value);
  const taskUserName = value('TASK_USER');
  if (taskUserName !== undefined && !USER_NAME.test(taskUserName)) {
    throw new ConfigError('TASK_USER', `not a user name: ${JSON.stringify(taskUserName)}`);
  }
  const taskUser = { name: taskUserName ?? DEFAULT_TASK_USER, explicit: taskUserName !== undefined };
  // The OS users a workflow may name as its tenant; none (the default): tenants are off.
  const taskTenants = [
    ...new Set(
      (value('TASK_TENANTS') ?? '')
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== ''),
    ),
  ];
  for (const tenant of taskTenants) {
    if (!USER_NAME.test(tenant) || tenant.endsWith('$')) {
      throw new ConfigError('TASK_TENANTS', `not a user name: ${JSON.stringify(tenant)}`);
    }
  }
  const taskWorkDir = value('TASK_WORK_DIR') ?? join(tmpdir(), 'porpoise-tasks');
  checkTaskWorkDir(taskWorkDir, dataDir);
  const bounds = boundsOf(value);
  const datasourceKeyText = value('DATASOURCE_KEY');
  const datasourceKey =
    datasourceKeyText === undefined ? undefined : parseKey('DATASOURCE_KEY', datasourceKeyText);
  // Masters and workers (standalone too) serve gRPC under NODE_HOST: their certificate must
  // carry that name. The files are read here, once; nothing else reads them.
  const tlsFiles = {
    TLS_CA_FILE: value('TLS_CA_FILE'),
    TLS_CERT_FILE: value('TLS_CERT_FILE'),
    TLS_KEY_FILE: value('TLS_KEY_FILE'),
  };
  const tls = loadTlsMaterial(tlsFiles, role === 'api-server' ? undefined : nodeHost);

  if (role === 'standalone') {
    checkStandalonePorts({ apiPort, masterPort, workerPort, metricsPort: metricsPortGiven });
    const snapshot: ConfigEnv = {};
    for (const name of CONFIG_VARIABLES) snapshot[name] = value(name);
    return {
      role,
      databaseUrl,
      clusterSecret,
      registryType,
      dataDir,
      apiPort,
      logFormat,
      adminToken,
      env: snapshot,
    };
  }

  // A cluster node: what its role needs is required here, never re-checked later.
  if (clusterSecret === undefined) {
    throw new ConfigError(
      'CLUSTER_SECRET',
      'required in a cluster: every gRPC call between nodes carries it',
    );
  }
  const needDatabase = (): string => {
    if (databaseUrl !== undefined) return databaseUrl;
    throw new ConfigError(
      'DATABASE_URL',
      role === 'worker'
        ? 'required with REGISTRY_TYPE=jdbc (a postgres:// URL)'
        : 'required (a postgres:// URL)',
    );
  };
  // Without DATASOURCE_KEY, masters and API servers derive the same key from the cluster secret.
  const keyFor = (secret: string): Buffer => datasourceKey ?? deriveDatasourceKey(secret);
  const timing = { sessionTimeoutMs, heartbeatIntervalMs };
  const registry: RegistrySettings =
    registryType === 'zookeeper'
      ? {
          type: 'zookeeper',
          connect: zookeeperConnect,
          ...(zookeeperAuth ? { auth: zookeeperAuth } : {}),
          ...timing,
        }
      : registryType === 'etcd'
        ? { type: 'etcd', endpoints: etcdEndpoints, ...(etcdAuth ? { auth: etcdAuth } : {}), ...timing }
        : { type: 'jdbc', databaseUrl: needDatabase(), ...timing };
  const base = { registry, nodeHost, bindHost, clusterSecret, dataDir, logFormat, ...(tls ? { tls } : {}) };
  /** The role's metrics port, which must not be the port its gRPC server listens on. */
  const metricsPortOf = (r: 'master' | 'worker', ownPort: number): number => {
    const port = metricsPortGiven ?? DEFAULT_METRICS_PORT[r];
    if (port !== 0 && port === ownPort) {
      const own = r === 'master' ? 'MASTER_PORT' : 'WORKER_PORT';
      throw new ConfigError(
        'METRICS_PORT',
        `${port}${metricsPortGiven === undefined ? ` (the ${r}'s default)` : ''} is ${own} too; ` +
          'give /health and /metrics a port of their own (0 turns them off)',
      );
    }
    return port;
  };

  switch (role) {
    case 'master':
      return {
        role,
        ...base,
        databaseUrl: needDatabase(),
        masterPort,
        metricsPort: metricsPortOf('master', masterPort),
        datasourceKey: keyFor(clusterSecret),
        runMigrations,
        maxFaultReruns,
        scheduleMisfireThresholdMs,
        retentionDays: bounds.retentionDays,
        auditRetentionDays: bounds.auditRetentionDays,
        maxRunningInstances: bounds.maxRunningInstances,
      };
    case 'api-server':
      return {
        role,
        ...base,
        databaseUrl: needDatabase(),
        apiPort,
        datasourceKey: keyFor(clusterSecret),
        taskTenants,
        runMigrations,
        ...(adminToken !== undefined ? { adminToken } : {}),
        corsOrigins,
      };
    case 'worker':
      return {
        role,
        ...base,
        workerPort,
        metricsPort: metricsPortOf('worker', workerPort),
        workerGroup,
        workerCapacity,
        taskUser,
        taskWorkDir,
        taskTenants,
        taskLogMaxBytes: bounds.taskLogMaxBytes,
        retentionDays: bounds.retentionDays,
      };
  }
}

/** An admin token shorter than this is refused: it must not be guessable. */
export const ADMIN_TOKEN_MIN_LENGTH = 32;

/**
 * ADMIN_TOKEN and CORS_ORIGINS (the API server's; every role checks them so a typo never waits).
 * ADMIN_TOKEN_FILE was turned into ADMIN_TOKEN by resolveSecretFiles before this runs.
 */
function apiAccess(value: (name: ConfigVariable) => string | undefined): {
  adminToken: string | undefined;
  corsOrigins: string[];
} {
  const adminToken = value('ADMIN_TOKEN');
  if (adminToken !== undefined) {
    if (adminToken.length < ADMIN_TOKEN_MIN_LENGTH) {
      throw new ConfigError(
        'ADMIN_TOKEN',
        `must be at least ${ADMIN_TOKEN_MIN_LENGTH} characters (openssl rand -base64 32)`,
      );
    }
    if (/\s/.test(adminToken)) throw new ConfigError('ADMIN_TOKEN', 'must not contain white space');
  }
  const corsOrigins = (value('CORS_ORIGINS') ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '')
    .map(checkOrigin);
  return { adminToken, corsOrigins };
}

/** An origin as browsers send it: scheme://host[:port], nothing after. */
function checkOrigin(raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (
    !url ||
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.origin !== raw.replace(/\/$/, '')
  ) {
    throw new ConfigError(
      'CORS_ORIGINS',
      `not an origin (scheme://host[:port], comma-separated): ${JSON.stringify(raw)}`,
    );
  }
  return url.origin;
}

/**
 * TASK_WORK_DIR: absolute, and outside DATA_DIR (the task user must reach its directory; DATA_DIR
 * is the node's own, mode 700).
 */
function checkTaskWorkDir(taskWorkDir: string, dataDir: string): void {
  if (!isAbsolute(taskWorkDir)) {
    throw new ConfigError('TASK_WORK_DIR', `must be an absolute path, got ${JSON.stringify(taskWorkDir)}`);
  }
  const inside = relative(resolve(dataDir), resolve(taskWorkDir));
  if (inside === '' || (!inside.startsWith('..') && !isAbsolute(inside))) {
    throw new ConfigError(
      'TASK_WORK_DIR',
      `must be outside DATA_DIR (${resolve(dataDir)}): tasks must not reach the node's files`,
    );
  }
}

/**
 * The three roles of a standalone node, once its database and cluster secret are known (an
 * embedded Postgres and a generated secret where the environment gave none).
 */
export function standaloneRoles(
  standalone: StandaloneConfig,
  resolved: { databaseUrl: string; clusterSecret: string; datasourceKey?: string; adminToken?: string },
): { master: MasterConfig; worker: WorkerConfig; api: ApiServerConfig } {
  const env: ConfigEnv = {
    ...standalone.env,
    ADMIN_TOKEN: standalone.env.ADMIN_TOKEN ?? resolved.adminToken,
    DATABASE_URL: resolved.databaseUrl,
    CLUSTER_SECRET: resolved.clusterSecret,
    DATASOURCE_KEY: standalone.env.DATASOURCE_KEY ?? resolved.datasourceKey,
    REGISTRY_TYPE: standalone.registryType,
  };
  // One process, two metrics listeners: METRICS_PORT is the master's and the next port the
  // worker's (each role's default otherwise; 0 turns both off). loadConfig checked them.
  const metrics = standalone.env.METRICS_PORT;
  const workerMetrics =
    metrics === undefined || Number(metrics) === 0 ? metrics : String(Number(metrics) + 1);
  return {
    // Only the API server has a use for the admin token.
    master: loadConfig({ ...env, ADMIN_TOKEN: undefined }, 'master'),
    worker: loadConfig({ ...env, ADMIN_TOKEN: undefined, METRICS_PORT: workerMetrics }, 'worker'),
    api: loadConfig(env, 'api-server'),
  };
}

/**
 * A standalone node listens on API_PORT, MASTER_PORT, WORKER_PORT and two metrics ports (the
 * master's METRICS_PORT, the worker's METRICS_PORT + 1): each must be its own.
 */
function checkStandalonePorts(ports: {
  apiPort: number;
  masterPort: number;
  workerPort: number;
  metricsPort: number | undefined;
}): void {
  const { metricsPort } = ports;
  if (metricsPort === 65535) {
    throw new ConfigError(
      'METRICS_PORT',
      'a standalone node serves the worker on METRICS_PORT + 1: use 65534 or less (0 turns both off)',
    );
  }
  const master = metricsPort ?? DEFAULT_METRICS_PORT.master;
  const worker =
    metricsPort === undefined ? DEFAULT_METRICS_PORT.worker : metricsPort === 0 ? 0 : metricsPort + 1;
  const listeners: Array<[ConfigVariable, number, string]> = [
    ['API_PORT', ports.apiPort, 'API_PORT'],
    ['MASTER_PORT', ports.masterPort, 'MASTER_PORT'],
    ['WORKER_PORT', ports.workerPort, 'WORKER_PORT'],
    ['METRICS_PORT', master, "the master's METRICS_PORT"],
    ['METRICS_PORT', worker, "the worker's metrics port (METRICS_PORT + 1)"],
  ];
  const seen = new Map<number, string>();
  for (const [name, port, what] of listeners) {
    if (port === 0) continue;
    const other = seen.get(port);
    if (other !== undefined) {
      throw new ConfigError(name, `port ${port} is both ${other} and ${what} of this standalone node`);
    }
    seen.set(port, what);
  }
}

/** DESIGN.md section 11's bounds, read by every role (each keeps what it uses). */
function boundsOf(value: (name: ConfigVariable) => string | undefined): {
  taskLogMaxBytes: number;
  retentionDays: number;
  auditRetentionDays: number;
  maxRunningInstances: number;
} {
  return {
    // 64 MiB by default; at least 1 KiB (room for the cut marker), at most 1 TiB.
    taskLogMaxBytes: integer(
      'TASK_LOG_MAX_BYTES',
      value('TASK_LOG_MAX_BYTES'),
      64 * 1024 * 1024,
      1024,
      2 ** 40,
    ),
    retentionDays: integer('RETENTION_DAYS', value('RETENTION_DAYS'), 30, 1, 3650),
    // The audit log outlives the runs it speaks of: a year by default, at most a hundred.
    auditRetentionDays: integer('AUDIT_RETENTION_DAYS', value('AUDIT_RETENTION_DAYS'), 365, 1, 36500),
    maxRunningInstances: integer(
      'MASTER_MAX_RUNNING_INSTANCES',
      value('MASTER_MAX_RUNNING_INSTANCES'),
      1000,
      1,
      1_000_000,
    ),
  };
}

function integer(
  name: ConfigVariable,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** A 32-byte key, as 64 hex digits or base64. */
function parseKey(name: ConfigVariable, raw: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(raw)
    ? Buffer.from(raw, 'hex')
    : /^[A-Za-z0-9+/_-]{43}=?$/.test(raw)
      ? Buffer.from(raw, 'base64')
      : undefined;
  if (key?.length !== SECRET_KEY_BYTES) {
    throw new ConfigError(
      name,
      `must be ${SECRET_KEY_BYTES} bytes as 64 hex digits or base64 (openssl rand -hex 32)`,
    );
  }
  return key;
}

function oneOf<T extends string>(name: ConfigVariable, raw: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}; got ${JSON.stringify(raw)}`);
  }
  return raw as T;
}

function checkDatabaseUrl(raw: string): void {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('DATABASE_URL', 'not a URL (expected postgres://user:password@host:port/database)');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError('DATABASE_URL', `must use postgres:// or postgresql://, got ${url.protocol}//`);
  }
  if (!url.hostname) throw new ConfigError('DATABASE_URL', 'has no host');
}

function checkZooKeeperConnect(raw: string): void {
  const slash = raw.indexOf('/');
  const hosts = slash === -1 ? raw : raw.slice(0, slash);
  for (const part of hosts.split(',')) {
    const m = HOST_PORT.exec(part.trim());
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      throw new ConfigError(
        'ZOOKEEPER_CONNECT',
        `expected host:port[,host:port...], got ${JSON.stringify(part)}`,
      );
    }
  }
}

function checkEtcdEndpoint(raw: string): void {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      'ETCD_ENDPOINTS',
      `not a URL: ${JSON.stringify(raw)} (expected http://host:port,...)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('ETCD_ENDPOINTS', `must use http:// or https://, got ${JSON.stringify(raw)}`);
  }
}

/**
 * The one place that reads process.env: picks the known variables, then validates them.
 * On bad configuration, prints one line naming the variable and exits with status 78 (EX_CONFIG).
 */
export function loadConfigFromProcess<R extends NodeRole>(role: R): ConfigFor<R> {
  const env: ConfigEnv = {};
  for (const name of CONFIG_VARIABLES) env[name] = process.env[name];
  try {
    return loadConfig(resolveSecretFiles(env), role);
  } catch (err) {
    if (err instanceof ConfigError) {
      exitOnConfigError(role, err, env.LOG_FORMAT?.trim() === 'json' ? 'json' : 'text');
    }
    throw err;
  }
}

/**
 * Bad configuration found at start (by loadConfig, or later by a check that needs the system,
 * such as TASK_USER naming a user that does not exist): one line naming the variable, then exit
 * with status 78 (EX_CONFIG).
 */
export function exitOnConfigError(role: NodeRole, err: ConfigError, format: 'text' | 'json'): never {
  const line = `porpoise ${role}: invalid configuration: ${err.message}`;
  // One line either way; a JSON one where JSON logs were asked for (even if something else is wrong).
  process.stderr.write(
    format === 'json'
      ? `${JSON.stringify({ time: new Date().toISOString(), level: 'fatal', context: 'Config', message: line, variable: err.variable })}\n`
      : `${line}\n`,
  );
  process.exit(78);
}
