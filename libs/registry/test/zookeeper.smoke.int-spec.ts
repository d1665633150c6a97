/**
 * Checks of the ZooKeeper backend beyond the shared conformance suite: coalescing, overlapping
 * subscriptions, ownership of ephemeral keys, implicit parents, lock loss, outages seen through
 * a cuttable TCP proxy, and a SIGKILLed client's ephemeral key vanishing when its session expires
 * (how long that takes is measured by bench/registry-expiry.bench.ts, never asserted).
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import {
  bounded,
  itUnless,
  RegistryChild,
  serverControlSkipReason,
  sleep,
  startZooKeeper,
  waitFor,
  type TestServer,
} from '@porpoise/test-harness';
import type { ConnectionState, RegistryEvent } from '../src/registry.interface';
import { RegistryClosedError, RegistryUnavailableError } from '../src/registry.errors';
import { ZooKeeperRegistry } from '../src/zookeeper/zookeeper.registry';
import { ascendingDistinct } from './support/ascending';

jest.setTimeout(120_000);

// Outage tests stop and start ZooKeeper: skipped (with the reason) where it is not ours.
const itStoppingZooKeeper = itUnless(serverControlSkipReason('zookeeper'));

/** A TCP proxy the test can cut (refusing and dropping connections) while the server stays up. */
class CuttableProxy {
  private readonly sockets = new Set<Socket>();
  private cut = false;
  private constructor(
    private readonly server: Server,
    readonly endpoint: string,
  ) {}

  static async start(target: string): Promise<CuttableProxy> {
    const [host, port] = target.split(':');
    const ref: { proxy?: CuttableProxy } = {};
    const server = createServer((inbound) => {
      const proxy = ref.proxy;
      if (!proxy || proxy.cut) return inbound.destroy();
      const outbound = tcpConnect(Number(port), host);
      for (const s of [inbound, outbound]) {
        proxy.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => proxy.sockets.delete(s));
      }
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('proxy has no port');
    ref.proxy = new CuttableProxy(server, `127.0.0.1:${address.port}`);
    return ref.proxy;
  }

  setCut(cut: boolean): void {
    this.cut = cut;
    if (cut) for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.setCut(true);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('zookeeper registry smoke', () => {
  let server: TestServer;
  const open: ZooKeeperRegistry[] = [];
  const children: RegistryChild[] = [];
  const client = async (sessionTimeoutMs = 3000, endpoint = server.endpoint) => {
    const r = new ZooKeeperRegistry({ type: 'zookeeper', connect: endpoint, sessionTimeoutMs });
    open.push(r);
    await r.start();
    return r;
  };
  const record = (r: ZooKeeperRegistry) => {
    const states: ConnectionState[] = [];
    r.onConnectionStateChange((s) => states.push(s));
    return states;
  };
  const collect = async (r: ZooKeeperRegistry, prefix: string) => {
    const events: RegistryEvent[] = [];
    await r.subscribe(prefix, (e) => events.push(e));
    return events;
  };
  const brief = (events: RegistryEvent[]) => events.map((e) => `${e.type} ${e.key}=${e.value}`);

  beforeAll(async () => {
    server = await startZooKeeper();
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.kill('SIGKILL')));
    await Promise.all(open.splice(0).map((r) => r.close()));
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('hides implicit parents and prunes them on delete', async () => {
    const r = await client();
    await r.put('/imp/a/b/c', 'v');
    expect(await r.get('/imp/a')).toBeNull();
    expect(await r.exists('/imp/a/b')).toBe(false);
    expect(await r.children('/imp')).toEqual(['a']);
    await r.put('/imp/a', '');
    expect(await r.get('/imp/a')).toBe('');
    await r.delete('/imp/a/b/c');
    expect(await r.children('/imp/a')).toEqual([]);
    expect(await r.get('/imp/a')).toBe('');
    await r.delete('/imp');
    expect(await r.children('/')).not.toContain('imp');
    expect(await r.children('/')).not.toContain('zookeeper');
  });

  it('does not replay existing keys, keeps them for REMOVE, and follows subtrees created later', async () => {
    const w = await client();
    const r = await client();
    await w.put('/pre/old', 'o1');
    const events = await collect(r, '/pre');
    const deep = await collect(r, '/later/x/y');
    await sleep(200);
    expect(events).toEqual([]);
    await w.delete('/pre/old');
    await w.put('/later/x/y/z/q', 'q1');
    await w.put('/later/x/y', 'y1');
    await waitFor('events', () => events.length >= 1 && deep.length >= 2);
    expect(brief(events)).toEqual(['REMOVE /pre/old=o1']);
    expect(brief(deep).sort()).toEqual(['ADD /later/x/y/z/q=q1', 'ADD /later/x/y=y1']);
    await w.delete('/later');
    await waitFor('removes', () => deep.length >= 4);
    expect(brief(deep.slice(2)).sort()).toEqual(['REMOVE /later/x/y/z/q=q1', 'REMOVE /later/x/y=y1']);
    // Created again after the deletion: still watched.
    await w.put('/later/x/y', 'y2');
    await waitFor('re-add', () => deep.length >= 5);
    expect(brief(deep.slice(4))).toEqual(['ADD /later/x/y=y2']);
  });

  it('serves overlapping subscriptions, in either order, and unsubscribe stops delivery', async () => {
    const w = await client();
    const r = await client();
    await w.put('/ov/a/1', 'a1');
    await w.put('/ov/b/1', 'b1');
    const inner = await collect(r, '/ov/a');
    const outer = await collect(r, '/ov');
    const sameAsOuter = await collect(r, '/ov');
    await w.put('/ov/a/1', 'a2');
    await w.put('/ov/b/1', 'b2');
    await w.put('/ov/c', 'c1');
    await waitFor('outer', () => outer.length >= 3 && sameAsOuter.length >= 3 && inner.length >= 1);
    expect(brief(inner)).toEqual(['UPDATE /ov/a/1=a2']);
    expect(brief(outer).sort()).toEqual(['ADD /ov/c=c1', 'UPDATE /ov/a/1=a2', 'UPDATE /ov/b/1=b2']);
    const sub = await r.subscribe('/ov/b', () => {
      throw new Error('unsubscribed listener called');
    });
    sub.unsubscribe();
    sub.unsubscribe();
    await w.put('/ov/b/1', 'b3');
    await waitFor('outer b3', () => outer.some((e) => e.value === 'b3'));
  });

  it('never goes backwards in a burst and always ends at the final state', async () => {
    const w = await client();
    const r = await client();
    const events = await collect(r, '/burst2');
    for (let round = 0; round < 3; round++) {
      await Promise.all(
        [0, 1, 2].map(async (k) => {
          for (let i = 0; i < 50; i++) await w.put(`/burst2/k${k}`, String(round * 100 + i));
        }),
      );
      await w.delete('/burst2/k1');
      await waitFor('final state', () => {
        const last = (key: string) => events.filter((e) => e.key === key).at(-1);
        return (
          last('/burst2/k0')?.value === String(round * 100 + 49) &&
          last('/burst2/k1')?.type === 'REMOVE' &&
          last('/burst2/k2')?.value === String(round * 100 + 49)
        );
      });
    }
    for (const key of ['/burst2/k0', '/burst2/k2']) {
      const values = events.filter((e) => e.key === key).map((e) => Number(e.value));
      expect(values).toEqual(ascendingDistinct(values));
    }
  });

  it('reads values near the size limit without the binding dropping the session', async () => {
    const w = await client();
    const r = await client();
    const states = record(r);
    const events = await collect(r, '/large');
    for (let i = 0; i < 3; i++) {
      await w.put('/large/k', String(i).repeat(999_000));
      expect((await r.get('/large/k'))?.length).toBe(999_000);
    }
    await waitFor('last value', () => events.at(-1)?.value?.startsWith('2') === true);
    expect(states).toEqual([]);
  });

  it('gives an ephemeral key to the session that put it last', async () => {
    const a = await client();
    const b = await client();
    await a.put('/own/k', 'from-a', { ephemeral: true });
    await b.put('/own/k', 'from-b', { ephemeral: true });
    await a.close();
    expect(await b.get('/own/k')).toBe('from-b');
    // Persistent over ephemeral turns it persistent.
    await b.put('/own/k', 'kept');
    const c = await client();
    await b.close();
    expect(await c.get('/own/k')).toBe('kept');
  });

  it('aborts lock.lost when the lock node is deleted under the holder', async () => {
    const r = await client();
    const lock = await r.acquireLock('/lk/x');
    expect(await r.children('/lk/x')).toEqual([]); // lock nodes are not keys
    const other = await client();
    await other.delete('/lk');
    await waitFor('lost', () => lock.lost.aborted);
    await lock.release();
    const again = await other.acquireLock('/lk/x', { timeoutMs: 1000 });
    await again.release();
  });

  itStoppingZooKeeper(
    'fails calls while the server is down (not waiting for it), and rejects after close',
    async () => {
      const r = await client(2000);
      const states = record(r);
      await server.stop();
      try {
        // The server comes back only after this: a call that waited for it would never settle.
        await expect(bounded('a call to fail while ZooKeeper is down', r.get('/x'))).rejects.toBeInstanceOf(
          RegistryUnavailableError,
        );
        await waitFor('LOST', () => states.includes('LOST'));
        const lockAttempt = r.acquireLock('/down/lock', { timeoutMs: 100 });
        await expect(lockAttempt).rejects.toBeInstanceOf(RegistryUnavailableError);
      } finally {
        await server.start();
      }
      await waitFor('CONNECTED', () => states.at(-1) === 'CONNECTED', 30_000);
      expect(states).toEqual(['SUSPENDED', 'LOST', 'CONNECTED']);
      await r.close();
      await expect(r.put('/x', 'y')).rejects.toBeInstanceOf(RegistryClosedError);
      await expect(r.subscribe('/x', () => undefined)).rejects.toBeInstanceOf(RegistryClosedError);
    },
  );

  it('start() against nothing rejects with RegistryUnavailableError', async () => {
    const r = new ZooKeeperRegistry({ type: 'zookeeper', connect: '127.0.0.1:1', sessionTimeoutMs: 1000 });
    open.push(r);
    await expect(r.start()).rejects.toBeInstanceOf(RegistryUnavailableError);
  });

  it('after a client-side LOST (cut link), re-syncs subscriptions and reports what changed meanwhile', async () => {
    const proxy = await CuttableProxy.start(server.endpoint);
    try {
      const w = await client();
      await w.put('/diff/same', 's');
      await w.put('/diff/changed', 'c1');
      await w.put('/diff/removed', 'r1');
      const r = await client(2000, proxy.endpoint);
      const states = record(r);
      const events = await collect(r, '/diff');
      await r.put('/diff/mine', 'm', { ephemeral: true });
      await waitFor('own ADD', () => events.length === 1);
      proxy.setCut(true);
      await waitFor('LOST', () => states.includes('LOST'), 10_000);
      await w.put('/diff/changed', 'c2');
      await w.delete('/diff/removed');
      await w.put('/diff/added', 'a1');
      // Our old session expires on the server too (no pings through the cut proxy).
      proxy.setCut(false);
      await waitFor('CONNECTED', () => states.at(-1) === 'CONNECTED', 20_000);
      expect(states).toEqual(['SUSPENDED', 'LOST', 'CONNECTED']);
      expect(brief(events.slice(1)).sort()).toEqual([
        'ADD /diff/added=a1',
        'REMOVE /diff/mine=m',
        'REMOVE /diff/removed=r1',
        'UPDATE /diff/changed=c2',
      ]);
      // Watches are armed again on the new session.
      await w.put('/diff/same', 's2');
      await waitFor('post-recovery event', () => events.some((e) => e.value === 's2'));
    } finally {
      await proxy.close();
    }
  });

  it('keeps the session through link flaps and still ends at the latest value', async () => {
    const proxy = await CuttableProxy.start(server.endpoint);
    try {
      const w = await client();
      const r = await client(6000, proxy.endpoint);
      const states = record(r);
      const events = await collect(r, '/flap');
      let writing = true;
      let last = 0;
      const writer = (async () => {
        while (writing) await w.put('/flap/k', String(++last));
      })();
      for (let i = 0; i < 4; i++) {
        await sleep(150);
        proxy.setCut(true);
        await sleep(400);
        proxy.setCut(false);
        await waitFor(
          'reconnected',
          () => states.filter((s) => s === 'RECONNECTED').length === i + 1,
          20_000,
        );
      }
      writing = false;
      await writer;
      await waitFor('latest value', () => events.at(-1)?.value === String(last), 20_000);
      const values = events.map((e) => Number(e.value));
      expect(values).toEqual(ascendingDistinct(values));
      expect(states).not.toContain('LOST');
    } finally {
      await proxy.close();
    }
  });

  itStoppingZooKeeper(
    'closes a lost session the restarted server restored, so its ephemeral key goes at once',
    async () => {
      const r = await client(4000);
      const states = record(r);
      await r.put('/reap/me', 'old', { ephemeral: true });
      await server.stop();
      await waitFor('LOST', () => states.includes('LOST'), 15_000);
      await server.start();
      await waitFor('CONNECTED', () => states.at(-1) === 'CONNECTED', 30_000);
      const observer = await client();
      // Without closing it, the restored session would keep /reap/me for another 4 s.
      expect(await observer.get('/reap/me')).toBeNull();
    },
  );

  it('removes a SIGKILLed client’s ephemeral key once its session (10 s) expires', async () => {
    const observer = await client();
    const victim = await RegistryChild.spawn({
      type: 'zookeeper',
      connect: server.endpoint,
      sessionTimeoutMs: 10_000,
    });
    children.push(victim);
    await victim.call('put', '/measure/victim', 'v', true);
    expect(await observer.get('/measure/victim')).toBe('v');
    await victim.kill('SIGKILL');
    // A generous bound on waiting; bench/registry-expiry.bench.ts measures how long it takes.
    await waitFor(
      'the ephemeral key to vanish',
      async () => (await observer.get('/measure/victim')) === null,
      60_000,
    );
  });
});
