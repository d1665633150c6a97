/**
 * Mutual TLS between nodes (DESIGN.md section 11): real gRPC servers and clients over loopback,
 * certificates from a throwaway CA (scripts/cluster/certificates.ts, the one `npm run cluster --
 * --tls` uses). Only a client holding a certificate of the cluster's CA gets a call through,
 * and the cluster secret is still checked behind the handshake.
 */
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { freePort, silentLogger, type TlsMaterial } from '@porpoise/common';
import { createCertificateAuthority } from '../../../scripts/cluster/certificates';
import { GrpcServer, HealthClient, RpcCallError, SECRET_METADATA_KEY, services } from '../src';

const SECRET = 'mutual-tls-cluster-secret';

function material(ca: string, leaf: { cert: string; key: string }): TlsMaterial {
  return { ca: Buffer.from(ca), cert: Buffer.from(leaf.cert), key: Buffer.from(leaf.key) };
}

/** The status code a refused call ended with (the handshake failing surfaces as UNAVAILABLE). */
async function refusal(call: Promise<unknown>): Promise<number> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof RpcCallError)) throw new Error(`expected a refused call, got ${String(err)}`);
  return err.code;
}

describe('mutual TLS on gRPC between nodes', () => {
  let server: GrpcServer;
  let address = '';
  let clusterTls: TlsMaterial;
  let otherCaTls: TlsMaterial;
  let clusterCa = '';
  const clients: HealthClient[] = [];
  const client = (secret: string, tls?: TlsMaterial): HealthClient => {
    const c = new HealthClient(secret, tls);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    const [ca, other] = await Promise.all([
      createCertificateAuthority(),
      createCertificateAuthority('Another CA'),
    ]);
    clusterCa = ca.cert;
    const [serverLeaf, clientLeaf, strangerLeaf] = await Promise.all([
      ca.issue('worker-1', ['127.0.0.1', 'localhost']),
      ca.issue('master-1', ['127.0.0.1']),
      // Names the right host, trusts the right CA, but its certificate is another CA's.
      other.issue('master-1', ['127.0.0.1']),
    ]);
    clusterTls = material(ca.cert, clientLeaf);
    otherCaTls = material(ca.cert, strangerLeaf);
    server = new GrpcServer({
      bindHost: '127.0.0.1',
      port: await freePort(),
      clusterSecret: SECRET,
      tls: material(ca.cert, serverLeaf),
      logger: silentLogger,
    });
    address = `127.0.0.1:${await server.start()}`;
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.stop(100);
  });

  it('answers a client with a certificate of the cluster CA and the cluster secret', async () => {
    await expect(client(SECRET, clusterTls).check(address)).resolves.toBe('SERVING');
  });

  it('still refuses a client with the right certificate but a wrong cluster secret', async () => {
    expect(await refusal(client('not-the-cluster-secret', clusterTls).check(address))).toBe(
      status.UNAUTHENTICATED,
    );
  });

  it("refuses a client whose certificate is another CA's", async () => {
    expect(await refusal(client(SECRET, otherCaTls).check(address))).toBe(status.UNAVAILABLE);
  });

  it('refuses a plaintext client', async () => {
    expect(await refusal(client(SECRET).check(address))).toBe(status.UNAVAILABLE);
  });

  it('refuses a TLS client that shows no certificate', async () => {
    // Trusts the cluster CA (so it would accept the server) but has no certificate to show.
    const Health = services().Health;
    const bare = new Health(address, credentials.createSsl(Buffer.from(clusterCa)));
    try {
      const metadata = new Metadata();
      metadata.set(SECRET_METADATA_KEY, SECRET);
      const err = await new Promise<ServiceError | null>((resolve) =>
        (
          bare as unknown as {
            Check: (r: unknown, m: Metadata, o: unknown, cb: (e: ServiceError | null) => void) => void;
          }
        ).Check({ service: '' }, metadata, { deadline: new Date(Date.now() + 5000) }, resolve),
      );
      expect(err?.code).toBe(status.UNAVAILABLE);
    } finally {
      bare.close();
    }
  });

  it('makes the client refuse a server whose certificate does not name the host it dialed', async () => {
    const ca = await createCertificateAuthority();
    const elsewhere = new GrpcServer({
      bindHost: '127.0.0.1',
      port: await freePort(),
      clusterSecret: SECRET,
      // Signed by the CA the client trusts, but for another node's name.
      tls: material(ca.cert, await ca.issue('worker-2', ['10.9.8.7', 'worker-2.example'])),
      logger: silentLogger,
    });
    const port = await elsewhere.start();
    try {
      const trusting = material(ca.cert, await ca.issue('master-1', ['127.0.0.1']));
      expect(await refusal(client(SECRET, trusting).check(`127.0.0.1:${port}`))).toBe(status.UNAVAILABLE);
    } finally {
      await elsewhere.stop(100);
    }
  });
});
