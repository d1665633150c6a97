/**
 * The database roles of deploy/docker-compose.yml (deploy/postgres/porpoise-roles.sql), run by
 * psql against a real Postgres as the postgres image's init hook would: the migrations run as
 * porpoise_migrate, which owns the schema; a cluster whose nodes connect as porpoise_app (no
 * superuser, MIGRATIONS=off) runs a workflow to SUCCESS, and that role cannot change the schema.
 * Nodes from the built code (`npm run build` first).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'pg';
import { pendingMigrations, runMigrations } from '@porpoise/dao';
import { describeUnless, startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { startNode, stopNodes, type NodeProcess } from '../e2e/cluster-processes';

const ROOT = join(__dirname, '..', '..');
const DATABASE = 'porpoise_roles';
const MIGRATE_PASSWORD = 'migrate-role-password-0123';
const APP_PASSWORD = 'app-role-password-0123';
const SECRET = 'database-roles-cluster-secret-0123';
const ADMIN_TOKEN = 'database-roles-admin-token-0123456789abcdef';

/** psql 15 or later (the script uses \getenv), or why not. */
function psqlProblem(): string | undefined {
  const version = spawnSync('psql', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) {
    return 'psql is not installed (Debian package postgresql-client)';
  }
  const major = Number(/(\d+)\./.exec(version.stdout)?.[1] ?? 0);
  return major >= 15 ? undefined : `psql ${major} is older than 15 (the roles script uses \\getenv)`;
}

const describeWithPsql = describeUnless(psqlProblem());

describeWithPsql('database roles of the compose deployment (deploy/postgres/porpoise-roles.sql)', () => {
  let pg: TestServer;
  let nodes: NodeProcess[] = [];
  const urlAs = (user: string | undefined, password: string | undefined): string => {
    const url = new URL(pg.endpoint);
    url.pathname = `/${DATABASE}`;
    if (user !== undefined) {
      url.username = user;
      url.password = password ?? '';
    }
    return url.toString();
  };
  const asApp = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: urlAs('porpoise_app', APP_PASSWORD) });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  };
  const sqlState = (p: Promise<unknown>) =>
    p.then(
      () => 'ok',
      (err: { code?: string }) => err.code ?? 'no code',
    );

  beforeAll(async () => {
    pg = await startPostgres();
    const admin = new Client({ connectionString: pg.endpoint });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${DATABASE}`);
    } finally {
      await admin.end();
    }
    const psql = spawnSync(
      'psql',
      [
        '--no-psqlrc',
        '--dbname',
        urlAs(undefined, undefined),
        '--file',
        join(ROOT, 'deploy', 'postgres', 'porpoise-roles.sql'),
      ],
      {
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          PORPOISE_MIGRATE_PASSWORD: MIGRATE_PASSWORD,
          PORPOISE_APP_PASSWORD: APP_PASSWORD,
          POSTGRES_DB: DATABASE,
        },
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    if (psql.status !== 0) throw new Error(`porpoise-roles.sql failed: ${psql.stderr}`);
    // The compose file's `migrate` service.
    await runMigrations(urlAs('porpoise_migrate', MIGRATE_PASSWORD));
  });
  afterAll(async () => {
    await stopNodes(nodes);
    nodes = [];
    await pg?.dispose();
  });

  it('makes two roles that are not superusers, the schema owned by the migration role', async () => {
    await asApp(async (c) => {
      const roles = await c.query<{
        rolname: string;
        rolsuper: boolean;
        rolcreatedb: boolean;
        rolcreaterole: boolean;
      }>(
        "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname LIKE 'porpoise\\_%' ORDER BY rolname",
      );
      expect(roles.rows).toEqual([
        { rolname: 'porpoise_app', rolsuper: false, rolcreatedb: false, rolcreaterole: false },
        { rolname: 'porpoise_migrate', rolsuper: false, rolcreatedb: false, rolcreaterole: false },
      ]);
      const owners = await c.query<{ owner: string }>(
        "SELECT DISTINCT tableowner AS owner FROM pg_tables WHERE schemaname = 'public'",
      );
      expect(owners.rows).toEqual([{ owner: 'porpoise_migrate' }]);
    });
    expect(await pendingMigrations(urlAs('porpoise_app', APP_PASSWORD))).toEqual([]);
  });

  it('does not let the application role change the schema', async () => {
    await asApp(async (c) => {
      // 42501 insufficient_privilege
      expect(await sqlState(c.query('CREATE TABLE intruder (a int)'))).toBe('42501');
      expect(await sqlState(c.query('DROP TABLE workflow_instance'))).toBe('42501');
      expect(await sqlState(c.query('ALTER TABLE workflow_instance ADD COLUMN x int'))).toBe('42501');
      expect(await sqlState(c.query('TRUNCATE porpoise_migrations'))).toBe('42501');
    });
  });

  it('runs a cluster whose nodes connect as the application role, MIGRATIONS=off', async () => {
    const env = {
      DATABASE_URL: urlAs('porpoise_app', APP_PASSWORD),
      MIGRATIONS: 'off',
      REGISTRY_TYPE: 'jdbc',
      CLUSTER_SECRET: SECRET,
      ADMIN_TOKEN,
      REGISTRY_SESSION_TIMEOUT_MS: '4000',
      HEARTBEAT_INTERVAL_MS: '500',
    };
    const api = await startNode('api-server', env, async (port) => {
      const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
      return res?.status === 200;
    });
    nodes.push(api);
    const call = async <T>(method: string, path: string, body?: unknown) => {
      const res = await fetch(`http://127.0.0.1:${api.port}/api/v1${path}`, {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as T };
    };
    const registered = (kind: 'masters' | 'workers') => async (port: number) => {
      const res = await call<Record<typeof kind, Array<{ port: number }>>>('GET', '/cluster/nodes');
      return res.status === 200 && res.body[kind].some((n) => n.port === port);
    };
    nodes.push(await startNode('master', env, registered('masters')));
    nodes.push(await startNode('worker', env, registered('workers')));

    const created = await call<{ code: string }>('POST', '/workflows', {
      name: 'as-app-role',
      tasks: [
        { name: 'a', type: 'SHELL', command: 'echo a' },
        { name: 'b', type: 'SHELL', command: 'echo b' },
      ],
      edges: [{ from: 'a', to: 'b' }],
    });
    expect(created.status).toBe(201);
    const run = await call<{ workflowInstanceId: number }>('POST', `/workflows/${created.body.code}/runs`);
    expect(run.status).toBe(202);
    const state = await waitFor(
      'the run to finish',
      async () => {
        const res = await call<{ state: string }>(
          'GET',
          `/workflow-instances/${run.body.workflowInstanceId}`,
        );
        return ['SUCCESS', 'FAILURE', 'STOP'].includes(res.body.state) ? res.body.state : undefined;
      },
      60_000,
      200,
    );
    expect(state).toBe('SUCCESS');
  });
});
