/**
 * etcd authentication (ETCD_USERNAME, ETCD_PASSWORD; DESIGN.md section 11) against a real etcd
 * with `auth enable`: the registry with credentials passes the whole conformance suite
 * (registration, events, leases, locks, outages), and a client without them, or with a wrong
 * password, reads and writes nothing.
 */
import { silentLogger } from '@porpoise/common';
import {
  describeUnless,
  enableEtcdAuth,
  startEtcd,
  type EtcdCredentials,
  type TestServer,
} from '@porpoise/test-harness';
import { Etcd3 } from 'etcd3';
import { createRegistry } from '../src/registry.factory';
import { describeRegistryConformance } from './registry.conformance';

const USER: EtcdCredentials = { username: 'porpoise', password: 'etcd-auth-test-password' };

/** A local etcd with authentication on; TEST_ETCD_ENDPOINTS is someone else's server to keep as it is. */
async function startEtcdWithAuth(): Promise<TestServer> {
  const server = await startEtcd();
  try {
    await enableEtcdAuth(server, USER);
  } catch (err) {
    await server.dispose();
    throw err;
  }
  return server;
}

const skipReason = process.env.TEST_ETCD_ENDPOINTS
  ? 'TEST_ETCD_ENDPOINTS is set: authentication is never turned on in a server the test did not start'
  : undefined;
const describeIfOwnServer = describeUnless(skipReason);

describeIfOwnServer('etcd with authentication', () => {
  describeRegistryConformance({
    name: 'etcd with authentication',
    serverKind: 'etcd',
    startServer: startEtcdWithAuth,
    config: (server, sessionTimeoutMs) => ({
      type: 'etcd',
      endpoints: [server.endpoint],
      sessionTimeoutMs,
      auth: USER,
    }),
    deliversEveryChange: true,
  });

  describe('refuses clients without the credentials', () => {
    let server: TestServer;

    beforeAll(async () => {
      server = await startEtcdWithAuth();
      const registry = createRegistry(
        { type: 'etcd', endpoints: [server.endpoint], sessionTimeoutMs: 4000, auth: USER },
        silentLogger,
      );
      await registry.start();
      await registry.put('/nodes/master/10.0.0.1:5678', '{"host":"10.0.0.1"}');
      await registry.close();
    });
    afterAll(async () => {
      await server?.dispose();
    });

    it.each([
      ['no credentials', undefined],
      ['a wrong password', { username: USER.username, password: 'not-the-password' }],
    ])('refuses a plain etcd client with %s every read and write', async (_what, auth) => {
      const client = new Etcd3({ hosts: server.endpoint, ...(auth ? { auth } : {}) });
      try {
        await expect(client.get('/nodes/master/10.0.0.1:5678').string()).rejects.toThrow(
          /user name is empty|authentication failed|permission denied|invalid auth token/i,
        );
        await expect(client.put('/nodes/worker/default/6.6.6.6:1234').value('{}')).rejects.toThrow(
          /user name is empty|authentication failed|permission denied|invalid auth token/i,
        );
      } finally {
        client.close();
      }
      // Still there, and nothing was added.
      const admin = new Etcd3({ hosts: server.endpoint, auth: USER });
      try {
        expect(await admin.get('/nodes/master/10.0.0.1:5678').string()).toBe('{"host":"10.0.0.1"}');
        expect(await admin.get('/nodes/worker/default/6.6.6.6:1234').string()).toBeNull();
      } finally {
        admin.close();
      }
    });

    it('does not let a registry without the credentials register or read', async () => {
      const anonymous = createRegistry({
        type: 'etcd',
        endpoints: [server.endpoint],
        sessionTimeoutMs: 2000,
      });
      try {
        // etcd grants leases to anyone; every key operation needs the credentials.
        await anonymous.start();
        await expect(
          anonymous.put('/nodes/worker/default/6.6.6.6:1234', '{}', { ephemeral: true }),
        ).rejects.toThrow(/user name is empty|permission denied/i);
        await expect(anonymous.children('/nodes/master')).rejects.toThrow(
          /user name is empty|permission denied/i,
        );
      } finally {
        await anonymous.close().catch(() => undefined);
      }
    });
  });
});
