import { createServer, type Server, type Socket } from 'node:net';
import { freePort, silentLogger } from '@porpoise/common';
import { GrpcServer, HealthClient, RpcCallError } from '../src';

const SECRET = 'peer-channel-recovery-secret';

/**
 * A port that accepts TCP connections and never speaks HTTP/2: a gRPC connection attempt to it
 * never completes (grpc-js has no connect timeout). Closing the listener keeps the accepted
 * sockets open, so such an attempt stays stuck after a real server took the port.
 */
async function blackHole(port: number): Promise<{ sockets: Socket[]; stopListening(): Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    sockets,
    // close()'s callback waits for the accepted sockets, which stay open on purpose.
    stopListening: async () => {
      server.close();
      await new Promise((r) => setImmediate(r));
    },
  };
}

/** Health checks until one answers, at most `tries` of them; returns the answers and errors seen. */
async function checkUntilServing(client: HealthClient, address: string, tries: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < tries; i++) {
    try {
      seen.push(await client.check(address, 300));
      return seen;
    } catch (err) {
      seen.push(err instanceof RpcCallError ? `error ${err.code}` : String(err));
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return seen;
}

describe('peer channels recover from a connection attempt that never completes', () => {
  let client: HealthClient;
  const servers: GrpcServer[] = [];
  const holes: Array<{ sockets: Socket[] }> = [];

  beforeEach(() => {
    client = new HealthClient(SECRET);
  });
  afterEach(async () => {
    client.close();
    for (const s of servers.splice(0)) await s.stop(100);
    for (const h of holes.splice(0)) for (const s of h.sockets) s.destroy();
  });

  async function grpcServerOn(port: number): Promise<void> {
    const server = new GrpcServer({
      bindHost: '127.0.0.1',
      port,
      clusterSecret: SECRET,
      logger: silentLogger,
    });
    servers.push(server);
    await server.start();
  }

  it('reaches a server that took the port while the first connection attempt hung', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const hole = await blackHole(port);
    holes.push(hole);

    await expect(client.check(address, 300)).rejects.toBeInstanceOf(RpcCallError);
    expect(hole.sockets.length).toBeGreaterThan(0);

    await hole.stopListening();
    await grpcServerOn(port);
    // The hung connection is still open: only a new channel reaches the server.
    expect(hole.sockets.some((s) => !s.destroyed)).toBe(true);
    const seen = await checkUntilServing(client, address, 10);
    expect(seen[seen.length - 1]).toBe('SERVING');
  });

  it('reaches a restarted peer whose reconnect attempt hung after a refused connection', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    // Nothing listens: refused, the channel backs off and will try again by itself.
    await expect(client.check(address, 300)).rejects.toBeInstanceOf(RpcCallError);
    const hole = await blackHole(port);
    holes.push(hole);
    // A call while the reconnect hangs in the black hole.
    await new Promise((r) => setTimeout(r, 600));
    await client.check(address, 300).catch(() => undefined);

    await hole.stopListening();
    await grpcServerOn(port);
    const seen = await checkUntilServing(client, address, 10);
    expect(seen[seen.length - 1]).toBe('SERVING');
  });
});
