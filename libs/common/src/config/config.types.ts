export type NodeRole = 'api-server' | 'master' | 'worker' | 'standalone';
export type RegistryKind = 'zookeeper' | 'jdbc' | 'etcd';

/** The whole validated configuration of one node. Built once at start by loadConfig(). */
export interface PorpoiseConfig {
  readonly role: NodeRole;
  /** Postgres URL. Undefined only in standalone, which then starts an embedded Postgres. */
  readonly databaseUrl: string | undefined;
  readonly registry: {
    readonly type: RegistryKind;
    readonly zookeeperConnect: string;
    readonly etcdEndpoints: string[];
    readonly sessionTimeoutMs: number;
    readonly heartbeatIntervalMs: number;
  };
  /** Address this node advertises in the registry. */
  readonly nodeHost: string;
  /** Address the node's listeners bind to (defaults to NODE_HOST). */
  readonly bindHost: string;
  readonly apiPort: number;
  readonly masterPort: number;
  readonly workerPort: number;
  readonly workerGroup: string;
  /** How many tasks a worker runs at once. */
  readonly workerCapacity: number;
  /** Shared secret on every gRPC call between nodes. Undefined only in standalone (generated there). */
  readonly clusterSecret: string | undefined;
  /** Where a node keeps its local state (task logs, undelivered results). */
  readonly dataDir: string;
}
