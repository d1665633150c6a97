/**
 * One conformance suite for every Registry backend, run against real servers. Each backend's
 * *.int-spec.ts calls describeRegistryConformance with how to start its server and build its
 * configuration. The bounds in waitFor are how long a test may wait, not measurements:
 * timings are measured in the benchmarks.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  itUnless,
  RegistryChild,
  serverControlSkipReason,
  sleep,
  waitFor,
  type ServerKind,
  type TestServer,
} from '@porpoise/test-harness';
import { silentLogger } from '@porpoise/common';
import type { RegistryConfig } from '../src/registry.config';
import { createRegistry } from '../src/registry.factory';
import { ascendingDistinct } from './support/ascending';
import type { ConnectionState, Registry, RegistryEvent } from '../src/registry.interface';
import {
  InvalidArgumentError,
  InvalidPathError,
  LockTimeoutError,
  RegistryClosedError,
  ValueTooLargeError,
} from '../src/registry.errors';

export interface ConformanceTarget {
  readonly name: string;
  /** The kind of server startServer() starts: outage tests need one the test can stop. */
  readonly serverKind: ServerKind;
  startServer(): Promise<TestServer>;
  /** Runs once after the server is up (migrations for JDBC). */
  prepare?(server: TestServer): Promise<void>;
  config(server: TestServer, sessionTimeoutMs: number): RegistryConfig;
  /**
   * Whether a subscriber sees every intermediate value of a burst of writes. ZooKeeper does
   * not: a one-shot watch carries no data, so a burst coalesces to its latest value.
   */
  readonly deliversEveryChange: boolean;
}

export function describeRegistryConformance(target: ConformanceTarget): void {
  describe(`${target.name} registry conformance`, () => {
    let server: TestServer;
    const open: Registry[] = [];
    const children: RegistryChild[] = [];

    const client = async (sessionTimeoutMs = 3000): Promise<Registry> => {
      const registry = createRegistry(target.config(server, sessionTimeoutMs), silentLogger);
      open.push(registry);
      await registry.start();
      return registry;
    };
    const child = async (sessionTimeoutMs = 3000): Promise<RegistryChild> => {
      const c = await RegistryChild.spawn(target.config(server, sessionTimeoutMs));
      children.push(c);
      return c;
    };
    const record = (registry: Registry): ConnectionState[] => {
      const states: ConnectionState[] = [];
      registry.onConnectionStateChange((s) => states.push(s));
      return states;
    };
    const collect = async (registry: Registry, prefix: string): Promise<RegistryEvent[]> => {
      const events: RegistryEvent[] = [];
      await registry.subscribe(prefix, (e) => events.push(e));
      return events;
    };
    // Outage tests stop and start the server: skipped (with the reason) where it is not ours.
    const itStoppingTheServer = itUnless(serverControlSkipReason(target.serverKind));

    beforeAll(async () => {
      server = await target.startServer();
      await target.prepare?.(server);
    });
    afterEach(async () => {
      await Promise.all(children.splice(0).map((c) => c.kill('SIGKILL')));
      await Promise.all(open.splice(0).map((r) => r.close().catch(() => undefined)));
    });
    afterAll(async () => {
      await server?.dispose();
    });

    it('stores, reads, lists and deletes persistent data', async () => {
      const r = await client();
      await r.put('/crud/a', '1');
      await r.put('/crud/b/x', '2');
      await r.put('/crud/b/y', '3');
      await r.put('/crud/a', '1b');
      expect(await r.get('/crud/a')).toBe('1b');
      expect(await r.get('/crud/missing')).toBeNull();
      expect(await r.exists('/crud/b/x')).toBe(true);
      expect(await r.exists('/crud/nope')).toBe(false);
      expect(await r.children('/crud')).toEqual(['a', 'b']);
      expect(await r.children('/crud/b')).toEqual(['x', 'y']);
      expect(await r.children('/crud/none')).toEqual([]);
      await r.delete('/crud/b');
      expect(await r.exists('/crud/b/x')).toBe(false);
      expect(await r.children('/crud')).toEqual(['a']);
      await r.delete('/crud/never-there');
    });

    it('delivers ADD, UPDATE and REMOVE with the last value, for nested keys too', async () => {
      const writer = await client();
      const reader = await client();
      const events = await collect(reader, '/sub');
      await reader.subscribe('/subx', () => {
        throw new Error('a sibling prefix must not match');
      });
      await writer.put('/sub/k', 'v1');
      await writer.put('/sub/k', 'v2');
      await writer.put('/sub/deep/er', 'd1');
      await writer.put('/subx/other', 'no');
      await writer.delete('/sub/k');
      await writer.delete('/sub/deep');
      await waitFor('both REMOVEs', () =>
        ['/sub/k', '/sub/deep/er'].every((k) => events.some((e) => e.type === 'REMOVE' && e.key === k)),
      );
      const byKey = (key: string) => events.filter((e) => e.key === key).map((e) => [e.type, e.value]);
      if (target.deliversEveryChange) {
        expect(byKey('/sub/k')).toEqual([
          ['ADD', 'v1'],
          ['UPDATE', 'v2'],
          ['REMOVE', 'v2'],
        ]);
      } else {
        // v1 may coalesce into v2, but the key is added first and removed last with v2.
        const k = byKey('/sub/k');
        expect(k[0]?.[0]).toBe('ADD');
        expect(k.at(-1)).toEqual(['REMOVE', 'v2']);
        expect(k.slice(1, -1).every(([type, value]) => type === 'UPDATE' && value === 'v2')).toBe(true);
      }
      expect(byKey('/sub/deep/er')).toEqual([
        ['ADD', 'd1'],
        ['REMOVE', 'd1'],
      ]);
      expect(events.some((e) => e.key.startsWith('/subx'))).toBe(false);
    });

    it('removes a SIGKILLed client’s ephemeral keys once its session expires, frees its lock, and tells subscribers', async () => {
      const sessionTimeoutMs = 3000;
      const observer = await client();
      const events = await collect(observer, '/kill');
      const victim = await child(sessionTimeoutMs);
      const keys = ['/kill/nodes/a', '/kill/nodes/b', '/kill/nodes/c'];
      for (const key of keys) await victim.call('put', key, `value-of-${key}`, true);
      await victim.call('put', '/kill/persistent', 'stays', false);
      await victim.call('lock', '/kill/lock');
      await waitFor('ADD events', () =>
        keys.every((k) => events.some((e) => e.type === 'ADD' && e.key === k)),
      );

      await victim.kill('SIGKILL');
      await waitFor(
        'the dead client’s ephemeral keys to vanish',
        async () => (await observer.children('/kill/nodes')).length === 0,
        // How long the test may wait, not a measurement (that is the failover benchmark's).
        sessionTimeoutMs + 30_000,
      );
      await waitFor('a REMOVE per key', () =>
        keys.every((k) => events.some((e) => e.type === 'REMOVE' && e.key === k)),
      );
      for (const key of keys) {
        const remove = events.find((e) => e.type === 'REMOVE' && e.key === key);
        expect(remove?.value).toBe(`value-of-${key}`);
      }
      expect(await observer.get('/kill/persistent')).toBe('stays');
      const lock = await observer.acquireLock('/kill/lock', { timeoutMs: 2000 });
      await lock.release();
    });

    it('delivers 1,000 rapid writes to five keys in order, ending at the last value', async () => {
      const writer = await client();
      const reader = await client();
      const events = await collect(reader, '/burst');
      const keys = ['/burst/k0', '/burst/k1', '/burst/k2', '/burst/k3', '/burst/k4'];
      const written = new Map<string, string[]>(keys.map((k) => [k, []]));
      // One sequential chain per key, the chains concurrent: per-key order is defined.
      await Promise.all(
        keys.map(async (key, k) => {
          for (let i = 0; i < 200; i++) {
            const value = String(k * 1000 + i);
            written.get(key)!.push(value);
            await writer.put(key, value);
          }
        }),
      );
      await waitFor(
        'every key’s last value',
        () =>
          keys.every((key) => {
            const seen = events.filter((e) => e.key === key);
            return seen.length > 0 && seen.at(-1)?.value === written.get(key)!.at(-1);
          }),
        30_000,
      );
      for (const key of keys) {
        const seen = events.filter((e) => e.key === key);
        expect(seen[0]?.type).toBe('ADD');
        expect(seen.slice(1).every((e) => e.type === 'UPDATE')).toBe(true);
        const values = seen.map((e) => Number(e.value));
        if (target.deliversEveryChange) {
          expect(seen.map((e) => e.value)).toEqual(written.get(key));
        } else {
          // Coalesced, but never out of order and never the same value twice.
          expect(values).toEqual(ascendingDistinct(values));
          expect(seen.at(-1)?.value).toBe(written.get(key)!.at(-1));
        }
      }
    });

    it('gives five processes mutual exclusion: no increment under the lock is lost', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'porpoise-lock-'));
      const counter = join(dir, 'counter');
      writeFileSync(counter, '0');
      try {
        const contenders = await Promise.all([1, 2, 3, 4, 5].map(() => child(5000)));
        await Promise.all(contenders.map((c) => c.call('incrementUnderLock', '/lock/counter', counter, 20)));
        expect(Number(readFileSync(counter, 'utf8'))).toBe(100);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    itStoppingTheServer(
      'keeps the session through a brief server outage: SUSPENDED, then RECONNECTED, ephemeral data intact',
      async () => {
        const r = await client(10_000);
        const states = record(r);
        await r.put('/outage/brief', 'alive', { ephemeral: true });
        await server.stop();
        await waitFor('SUSPENDED', () => states.includes('SUSPENDED'), 15_000);
        await server.start();
        await waitFor('RECONNECTED', () => states.includes('RECONNECTED'), 20_000);
        expect(states).not.toContain('LOST');
        expect(states.indexOf('SUSPENDED')).toBeLessThan(states.indexOf('RECONNECTED'));
        const other = await client();
        expect(await other.get('/outage/brief')).toBe('alive');
        await r.put('/outage/brief', 'still-writable', { ephemeral: true });
        expect(await other.get('/outage/brief')).toBe('still-writable');
      },
    );

    itStoppingTheServer(
      'reports LOST after an outage past the session timeout, aborts held locks, then recovers and can register again',
      async () => {
        const sessionTimeoutMs = 2000;
        const r = await client(sessionTimeoutMs);
        const states = record(r);
        await r.put('/outage/long', 'first', { ephemeral: true });
        const lock = await r.acquireLock('/outage/lock');
        await server.stop();
        await waitFor('LOST', () => states.includes('LOST'), sessionTimeoutMs + 15_000);
        expect(lock.lost.aborted).toBe(true);
        await server.start();
        await waitFor(
          'CONNECTED after LOST',
          () => states.lastIndexOf('CONNECTED') > states.indexOf('LOST'),
          30_000,
        );
        await lock.release();
        await r.put('/outage/long', 'second', { ephemeral: true });
        // Past the old session's expiry on the server, the new registration must still stand.
        await sleep(sessionTimeoutMs + 1500);
        const other = await client();
        expect(await other.get('/outage/long')).toBe('second');
        const again = await r.acquireLock('/outage/lock', { timeoutMs: 5000 });
        expect(again.lost.aborted).toBe(false);
        await again.release();
      },
    );

    it('keeps persistent data across a client restart; close() removes ephemeral data at once', async () => {
      const first = await client();
      await first.put('/life/persistent', 'p');
      await first.put('/life/ephemeral', 'e', { ephemeral: true });
      const observer = await client();
      expect(await observer.get('/life/ephemeral')).toBe('e');
      await first.close();
      expect(await observer.get('/life/ephemeral')).toBeNull();
      expect(await observer.get('/life/persistent')).toBe('p');
      const second = await client();
      expect(await second.get('/life/persistent')).toBe('p');
      await first.close(); // idempotent
      await expect(first.get('/life/persistent')).rejects.toBeInstanceOf(RegistryClosedError);
    });

    it('rejects bad input with typed errors and times out a lock wait cleanly', async () => {
      const r = await client();
      for (const bad of [
        '',
        'relative',
        '/trailing/',
        '/double//slash',
        '/dot/../up',
        '/sp ace',
        '/nul\u0000',
      ]) {
        await expect(r.put(bad, 'x')).rejects.toBeInstanceOf(InvalidPathError);
        await expect(r.get(bad)).rejects.toBeInstanceOf(InvalidPathError);
        await expect(r.children(bad)).rejects.toBeInstanceOf(InvalidPathError);
        await expect(r.delete(bad)).rejects.toBeInstanceOf(InvalidPathError);
        await expect(r.subscribe(bad, () => undefined)).rejects.toBeInstanceOf(InvalidPathError);
        await expect(r.acquireLock(bad)).rejects.toBeInstanceOf(InvalidPathError);
      }
      await expect(r.put('/bad/big', 'x'.repeat(2_000_000))).rejects.toBeInstanceOf(ValueTooLargeError);
      await expect(r.put('/bad/num', 42 as unknown as string)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(r.acquireLock('/bad/lock', { timeoutMs: -1 })).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
      expect(await r.exists('/bad/big')).toBe(false);

      const holder = await client();
      const held = await holder.acquireLock('/bad/lock');
      await expect(r.acquireLock('/bad/lock', { timeoutMs: 300 })).rejects.toBeInstanceOf(LockTimeoutError);
      await held.release();
      await held.release(); // idempotent
      // The timed-out waiter left nothing behind: the lock is free at once.
      const next = await r.acquireLock('/bad/lock', { timeoutMs: 2000 });
      await next.release();
    });
  });
}
