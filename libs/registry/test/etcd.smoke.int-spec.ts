/**
 * Smoke tests of the etcd backend's own mechanics (watch resume, lease loss, lock queue, a
 * SIGKILLed client's lease). The shared behaviour is covered by the conformance suite. Bounds on
 * waits are how long a test may wait; how long things take is measured by `npm run bench`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { silentLogger } from '@porpoise/common';
import {
  bounded,
  freePort,
  itUnless,
  serverControlSkipReason,
  startEtcd,
  type TestServer,
} from '@porpoise/test-harness';
import { EtcdRegistry } from '../src/etcd/etcd.registry';
import { LockTimeoutError, RegistryClosedError, RegistryUnavailableError } from '../src/registry.errors';
import type { ConnectionState, RegistryEvent } from '../src/registry.interface';

const ROOT = join(__dirname, '..', '..', '..');

async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// Outage tests stop and start etcd: skipped (with the reason) where it is not ours.
const itStoppingEtcd = itUnless(serverControlSkipReason('etcd'));

describe('etcd registry smoke', () => {
  let server: TestServer;
  const open: EtcdRegistry[] = [];
  const victims: ChildProcess[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  const client = async (sessionTimeoutMs = 3000) => {
    const r = new EtcdRegistry(
      { type: 'etcd', endpoints: [server.endpoint], sessionTimeoutMs },
      silentLogger,
    );
    open.push(r);
    await r.start();
    return r;
  };
  const states = (r: EtcdRegistry) => {
    const seen: ConnectionState[] = [];
    r.onConnectionStateChange((s) => seen.push(s));
    return seen;
  };

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    server = await startEtcd();
  });
  afterEach(async () => {
    for (const v of victims.splice(0)) v.kill('SIGKILL');
    await Promise.all(open.splice(0).map((r) => r.close()));
    expect(unhandled).toEqual([]);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server?.dispose();
  });

  it('keeps prefixes apart (/a vs /a-b, /ab) in children, delete and subscribe; no replay', async () => {
    const r = await client();
    await r.put('/p/a', 'root');
    await r.put('/p/a-b', 'sib1');
    await r.put('/p/ab', 'sib2');
    const events: RegistryEvent[] = [];
    await r.subscribe('/p/a', (e) => events.push(e));
    await r.put('/p/a/x/y', 'deep');
    await r.put('/p/a-b', 'sib1b');
    await r.put('/p/a', 'root2');
    expect(await r.children('/p')).toEqual(['a', 'a-b', 'ab']);
    expect(await r.children('/p/a')).toEqual(['x']);
    expect(await r.children('/')).toContain('p');
    await r.delete('/p/a');
    expect(await r.children('/p')).toEqual(['a-b', 'ab']);
    await waitFor('events', () => events.length >= 4);
    expect(events).toEqual([
      { type: 'ADD', key: '/p/a/x/y', value: 'deep' },
      { type: 'UPDATE', key: '/p/a', value: 'root2' },
      // One transaction: both removals share a revision.
      { type: 'REMOVE', key: '/p/a', value: 'root2' },
      { type: 'REMOVE', key: '/p/a/x/y', value: 'deep' },
    ]);
  });

  itStoppingEtcd('resumes a watch across a server restart without losing or repeating events', async () => {
    const reader = await client(10_000);
    const readerStates = states(reader);
    const seen: string[] = [];
    await reader.subscribe('/resume', (e) => seen.push(e.value ?? ''));
    const writer = await client(10_000);
    for (let i = 0; i < 300; i++) await writer.put('/resume/k', String(i));
    await server.stop();
    await waitFor('SUSPENDED', () => readerStates.includes('SUSPENDED'));
    await expect(writer.get('/resume/k')).rejects.toBeInstanceOf(RegistryUnavailableError);
    await server.start();
    // The writer may be back before the reader's watch is: these must still arrive.
    await waitFor(
      'writer back',
      () =>
        writer.put('/resume/k', '300').then(
          () => true,
          () => false,
        ),
      15_000,
    );
    for (let i = 301; i < 600; i++) await writer.put('/resume/k', String(i));
    await waitFor('all 600 values', () => seen.length >= 600, 15_000);
    expect(seen).toEqual(Array.from({ length: 600 }, (_, i) => String(i)));
    await waitFor('RECONNECTED', () => readerStates.includes('RECONNECTED'));
    expect(readerStates).not.toContain('LOST');
  });

  it('queues lock waiters by create revision, times out cleanly, and frees at once on release', async () => {
    const a = await client();
    const b = await client();
    const first = await a.acquireLock('/locks/q', { timeoutMs: 0 }); // free: 0 still acquires
    // Same client, second acquisition: it must wait like anyone else.
    await expect(a.acquireLock('/locks/q', { timeoutMs: 200 })).rejects.toBeInstanceOf(LockTimeoutError);
    await expect(b.acquireLock('/locks/q', { timeoutMs: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(await a.children('/locks/q')).toHaveLength(1); // waiters cleaned up
    const order: string[] = [];
    const second = b.acquireLock('/locks/q').then((l) => (order.push('b'), l));
    await new Promise((r) => setTimeout(r, 100));
    const third = a.acquireLock('/locks/q').then((l) => (order.push('a'), l));
    await new Promise((r) => setTimeout(r, 100));
    expect(order).toEqual([]);
    await first.release();
    await first.release();
    const l2 = await second;
    expect(order).toEqual(['b']);
    await l2.release();
    const l3 = await third;
    expect(order).toEqual(['b', 'a']);
    await l3.release();
    expect(await a.children('/locks/q')).toEqual([]);
  });

  itStoppingEtcd(
    'after an outage past the session timeout: LOST, lock aborted, calls fail, new session',
    async () => {
      const r = await client(2000);
      const seen = states(r);
      await r.put('/lost/e', 'old', { ephemeral: true });
      const lock = await r.acquireLock('/lost/lock');
      await server.stop();
      // A call fails with a typed error while etcd is down instead of waiting for it to return.
      await expect(bounded('a call to fail while etcd is down', r.get('/lost/e'))).rejects.toBeInstanceOf(
        RegistryUnavailableError,
      );
      await waitFor('LOST', () => seen.includes('LOST'), 10_000);
      expect(lock.lost.aborted).toBe(true);
      await expect(r.put('/lost/e', 'x', { ephemeral: true })).rejects.toBeInstanceOf(
        RegistryUnavailableError,
      );
      await new Promise((res) => setTimeout(res, 1000)); // regrant retries against a dead server
      await server.start();
      await waitFor('CONNECTED again', () => seen.lastIndexOf('CONNECTED') > seen.indexOf('LOST'), 20_000);
      expect(seen.slice(0, 2)).toEqual(['SUSPENDED', 'LOST']);
      await lock.release();
      // The old lease is revoked once etcd answers, so the old ephemeral and lock keys go at once.
      const other = await client();
      await waitFor('old ephemeral gone', async () => (await other.get('/lost/e')) === null, 30_000);
      const again = await other.acquireLock('/lost/lock', { timeoutMs: 1500 });
      await again.release();
    },
  );

  it('start() against no server rejects (it does not wait for one); then closed, calls say so', async () => {
    const port = await freePort();
    const dead = new EtcdRegistry(
      { type: 'etcd', endpoints: [`http://127.0.0.1:${port}`], sessionTimeoutMs: 1500 },
      silentLogger,
    );
    // Nothing will ever listen there: only a start() that gives up settles.
    await expect(bounded('start() to give up on a dead endpoint', dead.start())).rejects.toBeInstanceOf(
      RegistryUnavailableError,
    );
    await dead.close();
    await expect(dead.get('/x')).rejects.toBeInstanceOf(RegistryClosedError);
  });

  itStoppingEtcd('close() while the server is away returns (it does not wait for the server)', async () => {
    const r = await client(3000);
    await server.stop();
    try {
      // The server comes back only after this: a close() that waited for it would never return.
      await bounded('close() to return while etcd is down', r.close());
      await expect(r.get('/x')).rejects.toBeInstanceOf(RegistryClosedError);
    } finally {
      await server.start();
    }
  });

  it('removes a SIGKILLed client’s ephemeral key once its lease (session 10 s) expires, and says so', async () => {
    const observer = await client();
    const removed = new Promise<RegistryEvent>((resolve) => {
      void observer.subscribe('/killed', (e) => {
        if (e.type === 'REMOVE') resolve(e);
      });
    });
    await new Promise((r) => setTimeout(r, 200));
    const victim = await spawnVictim(server.endpoint, 10_000, '/killed/node');
    victims.push(victim);
    await waitFor('victim key', async () => (await observer.get('/killed/node')) === 'alive');
    victim.kill('SIGKILL');
    // A generous bound on waiting; bench/registry-expiry.bench.ts measures how long it takes.
    const event = await bounded('the REMOVE of the killed client’s key', removed, 60_000);
    expect(event).toMatchObject({ type: 'REMOVE', key: '/killed/node', value: 'alive' });
    expect(await observer.get('/killed/node')).toBeNull();
  }, 90_000);
});

/** A client in its own process that registers one ephemeral key, to be SIGKILLed. */
function spawnVictim(endpoint: string, sessionTimeoutMs: number, key: string): Promise<ChildProcess> {
  const code = `
    const { EtcdRegistry } = require('./libs/registry/src/etcd/etcd.registry.ts');
    const r = new EtcdRegistry(${JSON.stringify({ type: 'etcd', endpoints: [endpoint], sessionTimeoutMs })});
    r.start().then(() => r.put(${JSON.stringify(key)}, 'alive', { ephemeral: true }))
      .then(() => console.log('ready'), (e) => { console.error(e); process.exit(1); });
    setInterval(() => undefined, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: ROOT, stdio: 'pipe' });
  return new Promise((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`victim exited ${c}`)));
    createInterface({ input: child.stdout }).on('line', (line) => line === 'ready' && resolve(child));
  });
}
