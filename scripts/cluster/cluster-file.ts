/**
 * `.porpoise/cluster.json` (DESIGN.md section 2): what a test or an operator needs to reach the
 * cluster and to restart or add a node. The documented fields are a contract (`metricsPort`
 * included: DESIGN.md section 12); `name`,
 * `dataDir`, `logFile`, `launcherPid` and `logsDir` are additions.
 */
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RegistryType } from './args';

export type NodeRole = 'master' | 'worker' | 'api-server';

/** The port variable of each role. */
export const PORT_VARIABLE: Record<NodeRole, 'MASTER_PORT' | 'WORKER_PORT' | 'API_PORT'> = {
  master: 'MASTER_PORT',
  worker: 'WORKER_PORT',
  'api-server': 'API_PORT',
};

/** Everything a node needs to join this cluster, apart from its own port (and DATA_DIR). */
export interface ClusterEnv {
  DATABASE_URL: string;
  REGISTRY_TYPE: RegistryType;
  ZOOKEEPER_CONNECT?: string;
  ETCD_ENDPOINTS?: string;
  CLUSTER_SECRET: string;
  /** The key data source URLs are sealed with (DESIGN.md section 9). */
  DATASOURCE_KEY: string;
  REGISTRY_SESSION_TIMEOUT_MS: string;
  HEARTBEAT_INTERVAL_MS: string;
  /**
   * The file holding the admin token (DESIGN.md section 11). The launcher gives it to API
   * servers only; masters and workers have no use for it.
   */
  ADMIN_TOKEN_FILE: string;
  /**
   * With --tls: the CA, and a spare certificate (for 127.0.0.1) that a node added or restarted
   * by hand uses; each node the launcher starts has a certificate of its own.
   */
  TLS_CA_FILE?: string;
  TLS_CERT_FILE?: string;
  TLS_KEY_FILE?: string;
}

export interface ClusterFileNode {
  role: NodeRole;
  /** The node's own process (no wrapper): SIGKILL to it kills this node only. */
  pid: number;
  host: string;
  port: number;
  /**
   * Where GET /health and GET /metrics answer (DESIGN.md section 12): a master's or worker's own
   * METRICS_PORT; an API server's is its port.
   */
  metricsPort: number;
  /** e.g. "worker-2" */
  name: string;
  dataDir: string;
  logFile: string;
}

export interface ClusterFile {
  apiUrl: string;
  /** An admin bearer token for the API (ADMIN_TOKEN, or the one generated in .porpoise/admin-token). */
  adminToken: string;
  databaseUrl: string;
  registry: { type: RegistryType; connect?: string; endpoints?: string };
  env: ClusterEnv;
  nodes: ClusterFileNode[];
  launcherPid: number;
  logsDir: string;
}

export function clusterFilePath(cwd: string): string {
  return join(cwd, '.porpoise', 'cluster.json');
}

/** Writes the file readable by its owner only, atomically (no reader sees half a file). */
export function writeClusterFile(path: string, content: ClusterFile): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(content, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600); // the mode option does not apply when the file already existed
  renameSync(tmp, path);
}

export function readClusterFile(path: string): ClusterFile | undefined {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as ClusterFile;
}

export function removeClusterFile(path: string): void {
  rmSync(path, { force: true });
}
