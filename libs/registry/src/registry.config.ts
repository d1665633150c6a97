/**
 * How a Registry client is configured: the backend and its connection settings, with the same
 * shape as a node configuration's `registry` (RegistrySettings in @porpoise/common), so that
 * one passes straight through. Kept apart from the factory so the backends can use these types
 * without importing the factory that imports them.
 */

/** Shared by every backend; each also takes its own connection settings. */
export interface RegistryCommonOptions {
  /** How long a silent client stays registered. */
  readonly sessionTimeoutMs: number;
  /** How often the client proves it is alive (JDBC, etcd keep-alive). Default sessionTimeoutMs / 5. */
  readonly heartbeatIntervalMs?: number;
  /** Largest value accepted by put(), in bytes. Default 1 MiB minus headroom (ZooKeeper's jute limit). */
  readonly maxValueBytes?: number;
}

export const DEFAULT_MAX_VALUE_BYTES = 1_000_000;

export type RegistryConfig =
  | ({
      readonly type: 'zookeeper';
      /** host:port[,host:port...][/chroot] */
      readonly connect: string;
      /**
       * Digest credentials (ZOOKEEPER_AUTH): added to every session, and every node this client
       * creates gets the ACL digest user:password with all permissions. Open nodes otherwise.
       */
      readonly auth?: { readonly user: string; readonly password: string };
    } & RegistryCommonOptions)
  | ({ readonly type: 'jdbc'; readonly databaseUrl: string } & RegistryCommonOptions)
  | ({
      readonly type: 'etcd';
      readonly endpoints: readonly string[];
      /** etcd password authentication (ETCD_USERNAME, ETCD_PASSWORD); anonymous otherwise. */
      readonly auth?: { readonly username: string; readonly password: string };
    } & RegistryCommonOptions);
