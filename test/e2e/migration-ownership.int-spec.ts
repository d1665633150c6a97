/**
 * Who changes the schema (DESIGN.md section 11: workers never need database credentials with
 * the ZooKeeper or etcd registry). Masters and API servers migrate at start unless
 * MIGRATIONS=off; workers never do: on ZooKeeper a worker has no DATABASE_URL at all, and on the
 * JDBC registry it waits for the registry's tables instead of creating them. Real processes
 * from the built code (`npm run build` first), a real Postgres and ZooKeeper.
 */
import { Client } from 'pg';
import { silentLogger } from '@porpoise/common';
import { runMigrations } from '@porpoise/dao';
import { createRegistry, type Registry } from '@porpoise/registry';
import { startPostgres, startZooKeeper, waitFor, type TestServer } from '@porpoise/test-harness';
import { startNode, stopNodes, type NodeProcess } from './cluster-processes';

const SECRET = 'e2e-migration-ownership-secret-0123';

describe('who migrates: masters and API servers, never workers', () => {
  let pg: TestServer;
  let zk: TestServer;
  let zkClient: Registry;
  let nodes: NodeProcess[] = [];
  let databases = 0;

  /** A new, empty database on the test Postgres; its URL. */
  const freshDatabase = async (): Promise<string> => {
    const name = `porpoise_migrate_${++databases}_${process.pid}`;
    const admin = new Client({ connectionString: pg.endpoint });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    const url = new URL(pg.endpoint);
    url.pathname = `/${name}`;
    return url.toString();
  };
  const tablesIn = async (databaseUrl: string): Promise<string[]> => {
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const res = await client.query<{ tablename: string }>(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
      );
      return res.rows.map((r) => r.tablename);
    } finally {
      await client.end();
    }
  };
  const zkWorkers = async (): Promise<string[]> => zkClient.children('/nodes/worker/default').catch(() => []);
  const zkMasters = async (): Promise<string[]> => zkClient.children('/nodes/master').catch(() => []);
  const base = { CLUSTER_SECRET: SECRET, REGISTRY_SESSION_TIMEOUT_MS: '4000', HEARTBEAT_INTERVAL_MS: '500' };
  const onZooKeeper = () => ({ ...base, REGISTRY_TYPE: 'zookeeper', ZOOKEEPER_CONNECT: zk.endpoint });
  const exited = (node: NodeProcess) =>
    node.child.exitCode !== null
      ? Promise.resolve(node.child.exitCode)
      : new Promise<number | null>((resolve) => node.child.once('exit', (code) => resolve(code)));

  beforeAll(async () => {
    [pg, zk] = await Promise.all([startPostgres(), startZooKeeper()]);
    zkClient = createRegistry(
      { type: 'zookeeper', connect: zk.endpoint, sessionTimeoutMs: 4000 },
      silentLogger,
    );
    await zkClient.start();
  });
  afterEach(async () => {
    await stopNodes(nodes);
    nodes = [];
  });
  afterAll(async () => {
    await zkClient?.close();
    await Promise.all([pg?.dispose(), zk?.dispose()]);
  });

  it('starts a worker on ZooKeeper without DATABASE_URL', async () => {
    const worker = await startNode('worker', onZooKeeper(), async (port) =>
      (await zkWorkers()).includes(`127.0.0.1:${port}`),
    );
    nodes.push(worker);
    expect(worker.child.exitCode).toBeNull();
  });

  it('makes a worker on the JDBC registry wait for the tables, never create them', async () => {
    const databaseUrl = await freshDatabase();
    const env = { ...base, REGISTRY_TYPE: 'jdbc', DATABASE_URL: databaseUrl };
    const worker = await startNode('worker', env, async () => true);
    nodes.push(worker);
    await waitFor('the worker to say it waits for the tables', () =>
      worker.output().includes('waiting for the registry tables'),
    );
    expect(worker.child.exitCode).toBeNull();
    expect(await tablesIn(databaseUrl)).toEqual([]);

    // An API server migrates at start (MIGRATIONS defaults to on); the worker then registers.
    const api = await startNode('api-server', env, async (port) => {
      const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
      return res?.status === 200;
    });
    nodes.push(api);
    expect(await tablesIn(databaseUrl)).toEqual(
      expect.arrayContaining(['registry_data', 'workflow_instance']),
    );
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      await waitFor('the worker to register', async () => {
        const res = await client.query('SELECT 1 FROM registry_data WHERE key = $1', [
          `/nodes/worker/default/127.0.0.1:${worker.port}`,
        ]);
        return res.rowCount === 1;
      });
    } finally {
      await client.end();
    }
  });

  it('has a master with MIGRATIONS=off refuse a schema that lacks migrations, and start on a current one', async () => {
    const databaseUrl = await freshDatabase();
    const env = { ...onZooKeeper(), DATABASE_URL: databaseUrl, MIGRATIONS: 'off' };
    const refused = await startNode('master', env, async () => true);
    nodes.push(refused);
    expect(await exited(refused)).not.toBe(0);
    expect(refused.output()).toMatch(/lacks \d+ migration\(s\).*MIGRATIONS=off.*npm run migration:run/s);
    expect(await tablesIn(databaseUrl)).toEqual([]);

    // What `npm run migration:run` does, as the operator's migration role.
    await runMigrations(databaseUrl);
    const master = await startNode('master', env, async (port) =>
      (await zkMasters()).includes(`127.0.0.1:${port}`),
    );
    nodes.push(master);
    expect(master.child.exitCode).toBeNull();
  });

  it('has a master migrate a fresh database at start by default', async () => {
    const databaseUrl = await freshDatabase();
    const master = await startNode('master', { ...onZooKeeper(), DATABASE_URL: databaseUrl }, async (port) =>
      (await zkMasters()).includes(`127.0.0.1:${port}`),
    );
    nodes.push(master);
    expect(await tablesIn(databaseUrl)).toEqual(
      expect.arrayContaining(['porpoise_migrations', 'workflow_instance']),
    );
  });
});
