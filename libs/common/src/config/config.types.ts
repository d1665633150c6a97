export type NodeRole = 'api-server' | 'master' | 'worker' | 'standalone';
export type RegistryKind = 'zookeeper' | 'jdbc' | 'etcd';
/** How a node writes its logs (LOG_FORMAT): Nest's text lines, or one JSON object per line. */
export type LogFormat = 'text' | 'json';

interface RegistryTiming {
  /** How long a silent node stays registered (REGISTRY_SESSION_TIMEOUT_MS). */
  readonly sessionTimeoutMs: number;
  /** Heartbeat refresh (HEARTBEAT_INTERVAL_MS), always below the session timeout. */
  readonly heartbeatIntervalMs: number;
}

/** The registry backend chosen by REGISTRY_TYPE, with exactly what that backend needs. */
export type RegistrySettings =
  | ({
      readonly type: 'zookeeper';
      readonly connect: string;
      /** ZOOKEEPER_AUTH: digest credentials of the session, and the ACL of every znode created. */
      readonly auth?: { readonly user: string; readonly password: string };
    } & RegistryTiming)
  | ({ readonly type: 'jdbc'; readonly databaseUrl: string } & RegistryTiming)
  | ({
      readonly type: 'etcd';
      readonly endpoints: readonly string[];
      /** ETCD_USERNAME and ETCD_PASSWORD: etcd's password authentication. */
      readonly auth?: { readonly username: string; readonly password: string };
    } & RegistryTiming);

/**
 * A node's mutual TLS material (TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE), read at start. The
 * CA signs every node's certificate; a peer without one of its certificates is refused.
 */
export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** What every cluster node has. */
interface NodeConfigBase {
  readonly registry: RegistrySettings;
  /** Address this node advertises in the registry (NODE_HOST). */
  readonly nodeHost: string;
  /** Address the node's listeners bind to (BIND_HOST, defaults to NODE_HOST). */
  readonly bindHost: string;
  /** Shared secret on every gRPC call between nodes (CLUSTER_SECRET). */
  readonly clusterSecret: string;
  /** Mutual TLS on every gRPC call, server and client side; plaintext when absent. */
  readonly tls?: TlsMaterial;
  /** Where a node keeps its local state: task logs, undelivered results (DATA_DIR). */
  readonly dataDir: string;
  /** LOG_FORMAT: text (default) or json (one object per line, with instance and task ids). */
  readonly logFormat: LogFormat;
}

/**
 * Masters and workers serve GET /health and GET /metrics on a port of their own (METRICS_PORT;
 * the API server serves both on API_PORT). 0: not served.
 */
interface MetricsListener {
  readonly metricsPort: number;
}

/**
 * The key data source URLs are sealed with (DATASOURCE_KEY; derived from the cluster secret when
 * unset). Masters open them to dispatch SQL tasks; API servers seal them.
 */
interface DatasourceKeyHolder {
  readonly datasourceKey: Buffer;
}

/**
 * MIGRATIONS=on (default): the node brings the schema up to date at start, under an advisory
 * lock. off: it only checks the schema is current (`npm run migration:run` is the operator's job,
 * with a role that owns the schema). Masters and API servers only; workers never migrate.
 */
interface MigrationOwner {
  readonly runMigrations: boolean;
}

export interface MasterConfig extends NodeConfigBase, DatasourceKeyHolder, MetricsListener, MigrationOwner {
  readonly role: 'master';
  readonly databaseUrl: string;
  readonly masterPort: number;
  /** A task whose worker is lost under it more than this many times fails (MAX_FAULT_RERUNS). */
  readonly maxFaultReruns: number;
  /** A due schedule fire time older than this is a misfire (SCHEDULE_MISFIRE_THRESHOLD_MS). */
  readonly scheduleMisfireThresholdMs: number;
  /** Finished instances older than this many days are deleted (RETENTION_DAYS). */
  readonly retentionDays: number;
  /** Audit log rows older than this many days are deleted (AUDIT_RETENTION_DAYS). */
  readonly auditRetentionDays: number;
  /**
   * The most instances this master drives at once (MASTER_MAX_RUNNING_INSTANCES); at the cap it
   * takes no new command of its slot until one of its runs ends.
   */
  readonly maxRunningInstances: number;
}

export interface WorkerConfig extends NodeConfigBase, MetricsListener {
  readonly role: 'worker';
  readonly workerPort: number;
  readonly workerGroup: string;
  /** How many tasks the worker runs at once (WORKER_CAPACITY). */
  readonly workerCapacity: number;
  /**
   * The OS user tasks run as when the worker runs as root (TASK_USER, default nobody); `explicit`
   * when TASK_USER was set (only then may it be root, and only then is a non-root worker refused
   * for a user it cannot switch to).
   */
  readonly taskUser: { readonly name: string; readonly explicit: boolean };
  /** Where each task gets its own working directory (TASK_WORK_DIR), outside DATA_DIR. */
  readonly taskWorkDir: string;
  /** The OS users a workflow may run its SHELL tasks as (TASK_TENANTS); empty: tenants are off. */
  readonly taskTenants: readonly string[];
  /** A task's log stops at this many bytes, then one marker line says so (TASK_LOG_MAX_BYTES). */
  readonly taskLogMaxBytes: number;
  /** Task log files older than this many days are deleted (RETENTION_DAYS). */
  readonly retentionDays: number;
}

export interface ApiServerConfig extends NodeConfigBase, DatasourceKeyHolder, MigrationOwner {
  readonly role: 'api-server';
  readonly databaseUrl: string;
  readonly apiPort: number;
  /** The tenants a workflow may name (TASK_TENANTS); empty: a workflow with a tenant is refused. */
  readonly taskTenants: readonly string[];
  /** ADMIN_TOKEN (or ADMIN_TOKEN_FILE's content): an admin-scoped bearer token; unset: none. */
  readonly adminToken?: string;
  /** CORS_ORIGINS: the browser origins allowed to call the API; empty: CORS off. */
  readonly corsOrigins: readonly string[];
}

/** The configuration of one cluster node, by role. Built once at start by loadConfig(). */
export type NodeConfig = MasterConfig | WorkerConfig | ApiServerConfig;

/**
 * What `npm start` reads before it has a database: DATABASE_URL and CLUSTER_SECRET may be
 * missing (it then starts an embedded Postgres and generates a secret), and it runs all three
 * roles; standaloneRoles() turns it into their configurations once both are known.
 */
export interface StandaloneConfig {
  readonly role: 'standalone';
  readonly databaseUrl: string | undefined;
  readonly clusterSecret: string | undefined;
  readonly registryType: RegistryKind;
  readonly dataDir: string;
  readonly apiPort: number;
  readonly logFormat: LogFormat;
  /** ADMIN_TOKEN where given; otherwise `npm start` generates one and keeps it in DATA_DIR. */
  readonly adminToken: string | undefined;
  /** Everything else, as the three roles will have it, resolved from the environment. */
  readonly env: ConfigEnvSnapshot;
}

/** The validated environment of a standalone node, kept to compile its three roles later. */
export type ConfigEnvSnapshot = Readonly<Record<string, string | undefined>>;

export type ConfigFor<R extends NodeRole> = R extends 'master'
  ? MasterConfig
  : R extends 'worker'
    ? WorkerConfig
    : R extends 'api-server'
      ? ApiServerConfig
      : StandaloneConfig;
