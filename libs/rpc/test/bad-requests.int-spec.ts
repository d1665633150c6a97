/**
 * Bad requests found by test/e2e/fuzz-grpc.int-spec.ts, against a real GrpcServer:
 * - bytes that do not decode: grpc-js answered INTERNAL "Error deserializing request" before
 *   the handler, so before the secret check. Now the secret is checked first, then the bytes
 *   are refused as INVALID_ARGUMENT naming the message type, and the handler never runs.
 * - a handler's refusal quoting a huge field: the status details (an HTTP/2 trailer) never
 *   arrived and the call hung until its deadline. Now they are cut to MAX_STATUS_DETAILS.
 */
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { freePort, silentLogger } from '@porpoise/common';
import { GrpcServer, MAX_STATUS_DETAILS, RpcInvalidArgument, SECRET_METADATA_KEY } from '../src';

const SECRET = 'undecodable-request-secret';

describe('a request that does not decode', () => {
  let server: GrpcServer;
  let client: Client;
  const dispatched: unknown[] = [];

  beforeAll(async () => {
    const reject = () => Promise.reject(new Error('not under test'));
    server = new GrpcServer({
      bindHost: '127.0.0.1',
      port: await freePort(),
      clusterSecret: SECRET,
      logger: silentLogger,
      worker: {
        dispatch: (r) => {
          dispatched.push(r);
          return Promise.resolve({
            accepted: false,
            reason: 'test',
            workerStartTimeMs: 0,
            workerRegistration: 0,
          });
        },
        // A refusal that quotes the whole (huge) request, as a careless validator would.
        kill: (r) =>
          Promise.reject(new RpcInvalidArgument(`bad kill: ${JSON.stringify(r)}${'x'.repeat(300_000)}`)),
        takeOver: reject,
        readLog: reject,
      },
    });
    const port = await server.start();
    client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  });

  afterAll(async () => {
    client.close();
    await server.stop(100);
  });

  function call(path: string, bytes: number[], secret?: string): Promise<{ code: status; details: string }> {
    const metadata = new Metadata();
    if (secret !== undefined) metadata.set(SECRET_METADATA_KEY, secret);
    return new Promise((resolve) => {
      client.makeUnaryRequest<Buffer, Buffer>(
        path,
        (b) => b,
        (b) => b,
        Buffer.from(bytes),
        metadata,
        { deadline: new Date(Date.now() + 5000) },
        (err: ServiceError | null) =>
          resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: '' }),
      );
    });
  }

  // 0xee: a varint key with its continuation bit set and nothing after it.
  it.each(['/porpoise.v1.WorkerTaskService/Dispatch', '/grpc.health.v1.Health/Check'])(
    '%s: INVALID_ARGUMENT naming the message with the secret, UNAUTHENTICATED without',
    async (path) => {
      expect(await call(path, [0xee], SECRET)).toEqual({
        code: status.INVALID_ARGUMENT,
        details: expect.stringMatching(/^request is not a valid (DispatchRequest|HealthCheckRequest): .+/),
      });
      expect(await call(path, [0xee])).toEqual({
        code: status.UNAUTHENTICATED,
        details: 'missing or wrong cluster secret',
      });
      expect(dispatched).toEqual([]);
    },
  );

  it('a truncated Dispatch (a length past the end) is refused the same way', async () => {
    // field 1 (task), length 10, but only 2 bytes follow.
    expect(
      (await call('/porpoise.v1.WorkerTaskService/Dispatch', [0x0a, 0x0a, 0x08, 0x01], SECRET)).code,
    ).toBe(status.INVALID_ARGUMENT);
    expect(dispatched).toEqual([]);
  });

  it('a refusal with a huge message arrives, cut short, and the channel still serves', async () => {
    const answer = await call('/porpoise.v1.WorkerTaskService/Kill', [0x08, 0x01], SECRET);
    expect(answer.code).toBe(status.INVALID_ARGUMENT);
    expect(answer.details).toMatch(/^bad kill: /);
    expect(answer.details.length).toBeLessThanOrEqual(MAX_STATUS_DETAILS + 1);
    expect((await call('/grpc.health.v1.Health/Check', [], SECRET)).code).toBe(status.OK);
  });
});
