/**
 * What `npm run cluster` takes from its own environment, validated with the nodes' own
 * configuration loader, so a value the nodes would refuse is refused before anything starts.
 */
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../../libs/common/src';
import { UsageError, type RegistryType } from './args';

/** The documented default session timeout (DESIGN.md section 3). */
export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
/** The documented default heartbeat (DESIGN.md section 3). */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2_000;

export interface ClusterSettings {
  /** An existing Postgres (DATABASE_URL); otherwise the launcher starts an embedded one. */
  readonly databaseUrl?: string;
  /** An existing ZooKeeper (ZOOKEEPER_CONNECT); otherwise a local server. zookeeper only. */
  readonly zookeeperConnect?: string;
  /** An existing etcd (ETCD_ENDPOINTS); otherwise a local server. etcd only. */
  readonly etcdEndpoints?: string;
  readonly clusterSecret: string;
  /** True when CLUSTER_SECRET came from the environment rather than being generated. */
  readonly secretFromEnv: boolean;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** LOG_FORMAT for every node (text or json), when the launcher's environment sets it. */
  readonly logFormat?: 'text' | 'json';
  /** ADMIN_TOKEN from the launcher's environment; otherwise .porpoise/admin-token (generated once). */
  readonly adminToken?: string;
}

export function resolveSettings(
  env: Readonly<Record<string, string | undefined>>,
  registry: RegistryType,
): ClusterSettings {
  const value = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const databaseUrl = value('DATABASE_URL');
  const zookeeperConnect = registry === 'zookeeper' ? value('ZOOKEEPER_CONNECT') : undefined;
  const etcdEndpoints = registry === 'etcd' ? value('ETCD_ENDPOINTS') : undefined;
  const secret = value('CLUSTER_SECRET');
  const sessionRaw = value('REGISTRY_SESSION_TIMEOUT_MS');
  const heartbeatRaw = value('HEARTBEAT_INTERVAL_MS');
  const logFormatRaw = value('LOG_FORMAT');
  const adminToken = value('ADMIN_TOKEN');

  // The heartbeat must stay below the session timeout; with a short session and no explicit
  // heartbeat, refresh three times per session.
  const sessionGuess = sessionRaw !== undefined && /^\d+$/.test(sessionRaw) ? Number(sessionRaw) : undefined;
  const heartbeatDefault =
    sessionGuess === undefined
      ? DEFAULT_HEARTBEAT_INTERVAL_MS
      : Math.max(50, Math.min(DEFAULT_HEARTBEAT_INTERVAL_MS, Math.floor(sessionGuess / 3)));

  try {
    const config = loadConfig(
      {
        // Placeholders for what the launcher provides itself, so that only the given values are judged.
        DATABASE_URL: databaseUrl ?? 'postgres://porpoise@127.0.0.1:5432/porpoise',
        REGISTRY_TYPE: registry,
        ZOOKEEPER_CONNECT: zookeeperConnect,
        ETCD_ENDPOINTS: etcdEndpoints,
        REGISTRY_SESSION_TIMEOUT_MS: sessionRaw ?? String(DEFAULT_SESSION_TIMEOUT_MS),
        HEARTBEAT_INTERVAL_MS: heartbeatRaw ?? String(heartbeatDefault),
        CLUSTER_SECRET: secret ?? 'a-generated-secret-placeholder',
        LOG_FORMAT: logFormatRaw,
        ADMIN_TOKEN: adminToken,
      },
      'master',
    );
    return {
      databaseUrl,
      zookeeperConnect,
      etcdEndpoints,
      clusterSecret: secret ?? generateSecret(),
      secretFromEnv: secret !== undefined,
      sessionTimeoutMs: config.registry.sessionTimeoutMs,
      heartbeatIntervalMs: config.registry.heartbeatIntervalMs,
      ...(logFormatRaw !== undefined ? { logFormat: config.logFormat } : {}),
      ...(adminToken !== undefined ? { adminToken } : {}),
    };
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`invalid configuration: ${err.message}`);
    throw err;
  }
}

/** 32 random URL-safe characters. */
export function generateSecret(): string {
  return randomBytes(24).toString('base64url');
}
