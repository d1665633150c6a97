/**
 * JDBC-registry specifics the shared conformance suite does not reach: the event table read by
 * id under concurrent writers, REMOVE events for expired and closed sessions, the listener
 * connection dying, pruning, round trips, and a SIGKILLed client's key going when its session
 * expires (how long that takes is measured by bench/registry-expiry.bench.ts, not asserted).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import { runMigrations } from '@porpoise/dao';
import { MIGRATIONS } from '@porpoise/migrations';
import {
  bounded,
  freePort,
  itUnless,
  serverControlSkipReason,
  sleep,
  startPostgres,
  waitFor,
  type TestServer,
} from '@porpoise/test-harness';
import { JdbcRegistry, type JdbcRegistryConfig } from '../src/jdbc/jdbc.registry';
import type { ConnectionState, RegistryEvent } from '../src/registry.interface';
import { RegistryClosedError, RegistryUnavailableError } from '../src/registry.errors';

const ROOT = join(__dirname, '..', '..', '..');
// The integration project's testTimeout is not applied to a file run on its own path.
jest.setTimeout(120_000);

// Outage tests stop and start Postgres: skipped (with the reason) where it is not ours.
const itStoppingPostgres = itUnless(serverControlSkipReason('postgres'));

describe('jdbc registry smoke', () => {
  let server: TestServer;
  let admin: Client;
  const open: JdbcRegistry[] = [];
  const procs: ChildProcess[] = [];

  const config = (sessionTimeoutMs = 3000): JdbcRegistryConfig => ({
    type: 'jdbc',
    databaseUrl: server.endpoint,
    sessionTimeoutMs,
  });
  const client = async (sessionTimeoutMs = 3000): Promise<JdbcRegistry> => {
    const r = new JdbcRegistry(config(sessionTimeoutMs));
    open.push(r);
    await r.start();
    return r;
  };
  const collect = async (r: JdbcRegistry, prefix: string): Promise<RegistryEvent[]> => {
    const events: RegistryEvent[] = [];
    await r.subscribe(prefix, (e) => events.push(e));
    return events;
  };
  /** A registry client in another process that puts one ephemeral key, then idles until killed. */
  const spawnEphemeralOwner = async (sessionTimeoutMs: number, key: string): Promise<ChildProcess> => {
    const code = `
      const { JdbcRegistry } = require('./libs/registry/src/jdbc/jdbc.registry');
      const r = new JdbcRegistry(${JSON.stringify(config(sessionTimeoutMs))});
      r.start().then(() => r.put(${JSON.stringify(key)}, 'owned', { ephemeral: true }))
        .then(() => process.stdout.write('READY\\n'), (e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: ROOT, stdio: 'pipe' });
    procs.push(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('child ready', () => {
      if (child.exitCode !== null) throw new Error(`child exited: ${out}`);
      return out.includes('READY');
    });
    return child;
  };
  const eventRows = async (after: number) =>
    (
      await admin.query<{ id: string; type: string; key: string; value: string | null }>(
        'SELECT id, type, key, value FROM registry_data_change_event WHERE id > $1 ORDER BY id',
        [after],
      )
    ).rows;
  const maxEventId = async () => {
    const { rows } = await admin.query<{ m: string }>(
      'SELECT coalesce(max(id), 0) AS m FROM registry_data_change_event',
    );
    return Number(rows[0]?.m);
  };

  beforeAll(async () => {
    server = await startPostgres();
    await runMigrations(server.endpoint);
    admin = new Client({ connectionString: server.endpoint });
    admin.on('error', () => undefined);
    await admin.connect();
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(open.splice(0).map((r) => r.close().catch(() => undefined)));
  });
  afterAll(async () => {
    await admin?.end().catch(() => undefined);
    await server?.dispose();
  });

  it('migrates idempotently and down/up cleanly', async () => {
    expect((await runMigrations(server.endpoint)).applied).toEqual([]);
    const migration = MIGRATIONS.map((M) => new M()).find((m) => m.name === 'RegistryTables1795306077000');
    if (!migration) throw new Error('the registry tables migration is missing from MIGRATIONS');
    const runner = { query: (sql: string) => admin.query(sql) } as unknown as QueryRunner;
    await migration.down(runner);
    expect((await admin.query("SELECT 1 FROM pg_tables WHERE tablename LIKE 'registry_%'")).rowCount).toBe(0);
    expect((await admin.query("SELECT 1 FROM pg_proc WHERE proname LIKE 'registry_%'")).rowCount).toBe(0);
    await migration.up(runner);
    const tables = await admin.query<{ t: string }>(
      "SELECT tablename AS t FROM pg_tables WHERE tablename LIKE 'registry_%' ORDER BY 1",
    );
    expect(tables.rows.map((r) => r.t)).toEqual([
      'registry_client_heartbeat',
      'registry_data',
      'registry_data_change_event',
      'registry_lock',
    ]);
  });

  it('delivers exactly the committed event sequence to a subscriber under concurrent writers', async () => {
    const reader = await client();
    const writers = await Promise.all([client(), client(), client()]);
    const start = await maxEventId();
    const events = await collect(reader, '/race');
    // Three clients race on two keys plus deletes, so event ids are handed out concurrently.
    await Promise.all(
      writers.map(async (w, n) => {
        for (let i = 0; i < 100; i++) {
          if (i % 25 === 24) await w.delete('/race');
          else await w.put(`/race/k${i % 2}`, `${n}-${i}`, { ephemeral: i % 3 === 0 });
        }
      }),
    );
    const rows = await eventRows(start);
    await waitFor('all events', () => events.length >= rows.length, 20_000);
    await sleep(300); // nothing more may arrive
    expect(events).toEqual(rows.map((r) => ({ type: r.type, key: r.key, value: r.value })));
  });

  it('does not replay events committed before subscribe resolved', async () => {
    const writer = await client();
    const reader = await client();
    for (let i = 0; i < 50; i++) await writer.put('/noreplay/k', String(i));
    const events = await collect(reader, '/noreplay');
    await writer.put('/noreplay/k', 'after');
    await waitFor('one event', () => events.length >= 1);
    await sleep(200);
    expect(events).toEqual([{ type: 'UPDATE', key: '/noreplay/k', value: 'after' }]);
  });

  it('converts ephemeral to persistent and back; close() records a REMOVE for ephemeral data', async () => {
    const a = await client();
    const observer = await client();
    const events = await collect(observer, '/conv');
    await a.put('/conv/e', '1', { ephemeral: true });
    await a.put('/conv/p', '1', { ephemeral: true });
    await a.put('/conv/p', '2'); // now persistent: survives close
    await a.close();
    await expect(a.put('/conv/x', '1')).rejects.toBeInstanceOf(RegistryClosedError);
    expect(await observer.get('/conv/e')).toBeNull();
    expect(await observer.get('/conv/p')).toBe('2');
    await waitFor('REMOVE', () => events.some((e) => e.type === 'REMOVE'));
    expect(events).toEqual([
      { type: 'ADD', key: '/conv/e', value: '1' },
      { type: 'ADD', key: '/conv/p', value: '1' },
      { type: 'UPDATE', key: '/conv/p', value: '2' },
      { type: 'REMOVE', key: '/conv/e', value: '1' },
    ]);
    const rows = await admin.query('SELECT 1 FROM registry_client_heartbeat');
    expect(rows.rowCount).toBe(1); // only the observer is left
  });

  it('children of the root and of implicit parents', async () => {
    const r = await client();
    await r.delete('/');
    await r.put('/ch/a/b/c', '1');
    await r.put('/ch/a_x', '1'); // '_' is a LIKE wildcard: must not confuse prefix matching
    await r.put('/ch/a0', '1');
    expect(await r.children('/')).toEqual(['ch']);
    expect(await r.children('/ch')).toEqual(['a', 'a0', 'a_x']);
    expect(await r.children('/ch/a')).toEqual(['b']);
    expect(await r.exists('/ch/a')).toBe(false);
    await r.delete('/ch/a');
    expect(await r.children('/ch')).toEqual(['a0', 'a_x']);
  });

  it('keeps delivering when the LISTEN connection is killed, and reconnects it', async () => {
    const writer = await client();
    const reader = await client(2000);
    const events = await collect(reader, '/listen');
    const states: ConnectionState[] = [];
    reader.onConnectionStateChange((s) => states.push(s));
    await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'porpoise-registry-listen' AND pid <> pg_backend_pid()",
    );
    for (let i = 0; i < 20; i++) await writer.put('/listen/k', String(i));
    await waitFor('20 events', () => events.length >= 20, 10_000);
    expect(events.map((e) => e.value)).toEqual([...Array(20).keys()].map(String));
    await waitFor('both listen connections back', async () => {
      const n = await admin.query(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'porpoise-registry-listen'",
      );
      return (n.rowCount ?? 0) >= 2;
    });
    // The database never went away, so the session never looked SUSPENDED.
    expect(states).toEqual([]);
  });

  it('reports LOST when the database clock expired the session, removes its data with REMOVE events, re-registers', async () => {
    const victim = await client(3000);
    const observer = await client();
    const events = await collect(observer, '/dbclock');
    const states: ConnectionState[] = [];
    victim.onConnectionStateChange((s) => states.push(s));
    await victim.put('/dbclock/e', 'v', { ephemeral: true });
    const lock = await victim.acquireLock('/dbclock/lock');
    // As if the process had stalled past its timeout: the database now judges it expired.
    await admin.query(
      "UPDATE registry_client_heartbeat SET last_heartbeat = now() - interval '1 minute' WHERE client_id IN (SELECT owner_client_id FROM registry_data WHERE key = '/dbclock/e')",
    );
    await waitFor('LOST then CONNECTED', () => states.join() === 'LOST,CONNECTED' || undefined, 5000);
    expect(lock.lost.aborted).toBe(true);
    await waitFor('REMOVE', () => events.some((e) => e.type === 'REMOVE'));
    expect(events).toEqual([
      { type: 'ADD', key: '/dbclock/e', value: 'v' },
      { type: 'REMOVE', key: '/dbclock/e', value: 'v' },
    ]);
    await victim.put('/dbclock/e', 'again', { ephemeral: true });
    await (await observer.acquireLock('/dbclock/lock', { timeoutMs: 1000 })).release();
  });

  it('fails start() in bounded time with RegistryUnavailableError when nothing listens', async () => {
    const port = await freePort();
    const r = new JdbcRegistry({
      type: 'jdbc',
      databaseUrl: `postgres://x:y@127.0.0.1:${port}/db`,
      sessionTimeoutMs: 3000,
    });
    await expect(r.start()).rejects.toBeInstanceOf(RegistryUnavailableError);
    await expect(r.get('/x')).rejects.toBeInstanceOf(RegistryClosedError);
    await r.close();
    await expect(r.start()).rejects.toBeInstanceOf(RegistryClosedError);
  });

  it('prunes events older than two hours', async () => {
    await admin.query(
      "INSERT INTO registry_data_change_event (type, key, value, created_at) VALUES ('ADD', '/old', 'x', now() - interval '3 hours')",
    );
    await client(1000); // heartbeats every 200 ms; the first prunes
    await waitFor('old event pruned', async () => {
      const { rowCount } = await admin.query("SELECT 1 FROM registry_data_change_event WHERE key = '/old'");
      return rowCount === 0;
    });
  });

  it('makes one round trip per put and per heartbeat', async () => {
    const r = await client(5000); // heartbeat every 1000 ms
    const proto = Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
    const original = proto.query;
    const texts: string[] = [];
    proto.query = function (this: Client, ...args: unknown[]) {
      const q = args[0];
      texts.push(typeof q === 'string' ? q : String((q as { text?: string }).text));
      return original.apply(this, args);
    };
    try {
      await r.put('/rt/a', '1');
      await r.put('/rt/a', '2', { ephemeral: true });
      expect(texts).toEqual(['SELECT registry_put($1, $2, $3)', 'SELECT registry_put($1, $2, $3)']);
      texts.length = 0;
      await sleep(3500);
      expect(texts.length).toBeGreaterThanOrEqual(3);
      expect(texts.every((t) => t === 'SELECT alive, next_expiry_ms FROM registry_heartbeat($1, $2)')).toBe(
        true,
      );
    } finally {
      proto.query = original;
    }
  });

  it('removes a SIGKILLed client’s key once its session (10 s) expires and tells a subscriber its value', async () => {
    const observer = await client(10_000);
    const events = await collect(observer, '/killed');
    const child = await spawnEphemeralOwner(10_000, '/killed/node');
    await waitFor('ADD', () => events.some((e) => e.type === 'ADD'));
    child.kill('SIGKILL');
    await once(child, 'exit');
    // Generous bounds on waiting; bench/registry-expiry.bench.ts measures how long it takes.
    await waitFor(
      'the killed client’s key to go',
      async () => (await observer.get('/killed/node')) === null,
      60_000,
    );
    await waitFor('a REMOVE with its value', () =>
      events.some((e) => e.type === 'REMOVE' && e.key === '/killed/node' && e.value === 'owned'),
    );
  });

  itStoppingPostgres(
    'SUSPENDED → RECONNECTED over a short outage; LOST → CONNECTED over a long one, with REMOVE events for the old session',
    async () => {
      const brief = await client(15_000);
      const long = await client(2000);
      const briefStates: ConnectionState[] = [];
      const longStates: ConnectionState[] = [];
      brief.onConnectionStateChange((s) => briefStates.push(s));
      long.onConnectionStateChange((s) => longStates.push(s));
      await brief.put('/outage2/brief', 'b', { ephemeral: true });
      await long.put('/outage2/long', 'l', { ephemeral: true });
      const lock = await long.acquireLock('/outage2/lock');
      const start = await maxEventId();
      await admin.end().catch(() => undefined);
      await server.stop();
      await waitFor(
        'SUSPENDED',
        () => briefStates.includes('SUSPENDED') && longStates.includes('SUSPENDED'),
        10_000,
      );
      // While the database is away, calls fail with a typed error instead of waiting for it.
      await expect(
        bounded('a call to fail while the database is down', brief.get('/outage2/brief')),
      ).rejects.toBeInstanceOf(RegistryUnavailableError);
      await waitFor('LOST (client side)', () => longStates.includes('LOST'), 10_000);
      expect(lock.lost.aborted).toBe(true);
      await server.start();
      admin = new Client({ connectionString: server.endpoint });
      admin.on('error', () => undefined);
      await admin.connect();
      await waitFor('RECONNECTED', () => briefStates.includes('RECONNECTED'), 20_000);
      await waitFor(
        'CONNECTED again',
        () => longStates.lastIndexOf('CONNECTED') > longStates.indexOf('LOST'),
        20_000,
      );
      expect(briefStates).toEqual(['SUSPENDED', 'RECONNECTED']);
      expect(longStates).toEqual(['SUSPENDED', 'LOST', 'CONNECTED']);
      expect(await brief.get('/outage2/brief')).toBe('b');
      expect(await brief.get('/outage2/long')).toBeNull();
      const rows = await eventRows(start);
      expect(rows.map((r) => [r.type, r.key, r.value])).toContainEqual(['REMOVE', '/outage2/long', 'l']);
      await lock.release();
      const again = await long.acquireLock('/outage2/lock', { timeoutMs: 2000 });
      await again.release();
    },
  );
});
