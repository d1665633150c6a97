/**
 * ZooKeeper digest ACLs (ZOOKEEPER_AUTH, DESIGN.md section 11) against a real server: every
 * znode Porpoise creates carries the ACL digest user:password with all permissions, so a client
 * without those credentials can neither read nor change the cluster's membership (a fake worker
 * key would receive every Dispatch), while the authenticated registry passes the whole
 * conformance suite: registration, events, ephemeral expiry, locks.
 */
import { silentLogger } from '@porpoise/common';
import { startZooKeeper, type TestServer } from '@porpoise/test-harness';
import { createRegistry } from '../src/registry.factory';
import type { Registry } from '../src/registry.interface';
import { RegistryError } from '../src/registry.errors';
import { CreateMode, digestAclId, ZK, ZkClient, type ZkDigestAuth } from '../src/zookeeper/zookeeper.client';
import { describeRegistryConformance } from './registry.conformance';

const AUTH: ZkDigestAuth = { user: 'porpoise', password: 'zk-acl-test-password' };

describeRegistryConformance({
  name: 'zookeeper with digest ACLs',
  serverKind: 'zookeeper',
  startServer: startZooKeeper,
  config: (server, sessionTimeoutMs) => ({
    type: 'zookeeper',
    connect: server.endpoint,
    sessionTimeoutMs,
    auth: AUTH,
  }),
  deliversEveryChange: false,
});

describe('zookeeper digest ACLs keep other clients out', () => {
  let server: TestServer;
  let registry: Registry;
  const clients: ZkClient[] = [];

  /** A raw client of the C binding, connected; with other (or no) credentials. */
  const rawClient = async (auth?: ZkDigestAuth): Promise<ZkClient> => {
    const client = new ZkClient(server.endpoint, 4000, () => undefined, undefined, auth);
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.on('connected', resolve);
      client.on('closed', (code) => reject(new Error(`closed ${code}`)));
    });
    return client;
  };
  /** The ZooKeeper result code an operation ends with (0 when it succeeded). */
  const code = (op: Promise<unknown>): Promise<number> =>
    op.then(
      () => ZK.OK,
      (err: { code?: number }) => err.code ?? NaN,
    );

  beforeAll(async () => {
    server = await startZooKeeper();
    registry = createRegistry(
      { type: 'zookeeper', connect: server.endpoint, sessionTimeoutMs: 4000, auth: AUTH },
      silentLogger,
    );
    await registry.start();
    await registry.put('/nodes/master/10.0.0.1:5678', '{"host":"10.0.0.1"}');
    await registry.put('/nodes/worker/default/10.0.0.2:1234', '{"host":"10.0.0.2"}', { ephemeral: true });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await registry?.close();
    await server?.dispose();
  });

  it('puts the digest ACL, all permissions, on every node it creates (parents included)', async () => {
    const admin = await rawClient(AUTH);
    for (const path of [
      '/nodes',
      '/nodes/worker',
      '/nodes/worker/default',
      '/nodes/worker/default/10.0.0.2:1234',
    ]) {
      const acl = await new Promise<unknown>((resolve, reject) =>
        (
          admin as unknown as {
            native: { a_get_acl(p: string, cb: (rc: number, t: string, acl: unknown) => void): number };
          }
        ).native.a_get_acl(path, (rc, text, a) => (rc === 0 ? resolve(a) : reject(new Error(text)))),
      );
      expect({ path, acl }).toEqual({
        path,
        acl: [{ perms: 31, scheme: 'digest', auth: digestAclId(AUTH) }],
      });
    }
  });

  it.each([
    ['no credentials', undefined],
    ['a wrong password', { user: AUTH.user, password: 'not-the-password' }],
  ])('refuses a client with %s (NOAUTH) every read and change', async (_what, auth) => {
    const stranger = await rawClient(auth);
    const worker = '/nodes/worker/default/10.0.0.2:1234';
    // A fake worker beside the real one, a fake group, a new top-level key under /nodes.
    expect(
      await code(
        stranger.create('/nodes/worker/default/6.6.6.6:1234', Buffer.from('{}'), CreateMode.EPHEMERAL),
      ),
    ).toBe(ZK.NOAUTH);
    expect(await code(stranger.create('/nodes/worker/evil', Buffer.from(''), CreateMode.PERSISTENT))).toBe(
      ZK.NOAUTH,
    );
    expect(await code(stranger.create('/nodes/evil', Buffer.from(''), CreateMode.PERSISTENT))).toBe(
      ZK.NOAUTH,
    );
    expect(await code(stranger.set(worker, Buffer.from('{"host":"6.6.6.6"}'), -1))).toBe(ZK.NOAUTH);
    expect(await code(stranger.delete(worker, -1))).toBe(ZK.NOAUTH);
    expect(await code(stranger.delete('/nodes/master/10.0.0.1:5678', -1))).toBe(ZK.NOAUTH);
    expect(await code(stranger.get(worker))).toBe(ZK.NOAUTH);
    // Nothing changed.
    expect(await registry.get(worker)).toBe('{"host":"10.0.0.2"}');
    expect(await registry.children('/nodes/worker/default')).toEqual(['10.0.0.2:1234']);
  });

  it('gives a Porpoise node without ZOOKEEPER_AUTH an error that says so', async () => {
    const anonymous = createRegistry({ type: 'zookeeper', connect: server.endpoint, sessionTimeoutMs: 4000 });
    await anonymous.start();
    try {
      const err = await anonymous.put('/nodes/worker/default/10.0.0.3:1234', '{}', { ephemeral: true }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as Error).message).toMatch(/NOAUTH.*ZOOKEEPER_AUTH is missing or not the cluster's/);
    } finally {
      await anonymous.close();
    }
  });

  it('lets another node with the same credentials read and lock', async () => {
    const peer = createRegistry({
      type: 'zookeeper',
      connect: server.endpoint,
      sessionTimeoutMs: 4000,
      auth: AUTH,
    });
    await peer.start();
    try {
      expect(await peer.children('/nodes/worker/default')).toEqual(['10.0.0.2:1234']);
      const lock = await peer.acquireLock('/lock/failover', { timeoutMs: 5000 });
      await lock.release();
    } finally {
      await peer.close();
    }
  });
});
