/**
 * A server a test runs against. Local servers the harness started itself can be stopped and
 * started again on the same port and data (controllable); servers from the environment or a
 * container cannot, and tests that need that skip with a message.
 */
export interface TestServer {
  /** postgres://… for Postgres, host:port for ZooKeeper, http://host:port for etcd. */
  readonly endpoint: string;
  readonly source: 'env' | 'container' | 'local';
  readonly controllable: boolean;
  /** Stops the server, keeping its data and port (controllable servers only). */
  stop(): Promise<void>;
  /**
   * Crashes the server: SIGKILL, every process of it at once (for Postgres the postmaster and
   * its backends, so the next start runs crash recovery), keeping its data and port
   * (controllable servers only). start() brings it back.
   */
  kill(): Promise<void>;
  /** Starts a stopped server again on the same port with the same data. */
  start(): Promise<void>;
  /** Stops it for good and removes its data. Safe to call twice. */
  dispose(): Promise<void>;
}

export class NotControllableError extends Error {
  constructor(source: string) {
    super(`a ${source} test server cannot be stopped and started by the test`);
  }
}
