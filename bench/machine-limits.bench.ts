/**
 * What this machine can do at most, measured in the same run as the scheduler's figures so each
 * figure can be given as a share of its bound:
 * - spawn: `sh -c true` processes started and reaped per second (8 at a time, as a worker would);
 * - gRPC: unary calls per second over loopback with grpc-js (one channel, 32 calls in flight);
 * - Postgres: pgbench's simple-update transactions per second (4 clients) against the bench's
 *   own database, when `pgbench` is installed (Debian: postgresql-client); null otherwise.
 */
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  Server,
  ServerCredentials,
  credentials,
  makeGenericClientConstructor,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';

const run = promisify(execFile);

export interface MachineLimits {
  readonly spawnPerSecond: number;
  readonly grpcCallsPerSecond: number;
  /** null: pgbench not installed (the reason says so). */
  readonly pgbenchTps: number | null;
  readonly pgbenchNote?: string;
}

export async function spawnRate(durationMs = 2_000, parallel = 8): Promise<number> {
  let done = 0;
  const until = Date.now() + durationMs;
  const lane = async () => {
    while (Date.now() < until) {
      await new Promise<void>((resolve, reject) => {
        const child = spawn('/bin/sh', ['-c', 'true'], { stdio: 'ignore' });
        child.on('error', reject);
        child.on('exit', () => resolve());
      });
      done++;
    }
  };
  const start = Date.now();
  await Promise.all(Array.from({ length: parallel }, lane));
  return done / ((Date.now() - start) / 1000);
}

const ECHO: ServiceDefinition = {
  echo: {
    path: '/bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

type EchoClient = {
  echo(req: Buffer, cb: (err: Error | null, res?: Buffer) => void): void;
  close(): void;
};

export async function grpcRate(durationMs = 2_000, inFlight = 32): Promise<number> {
  const server = new Server();
  const impl: UntypedServiceImplementation = {
    echo: (call: { request: Buffer }, cb: (err: null, res: Buffer) => void) => cb(null, call.request),
  };
  server.addService(ECHO, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const Client = makeGenericClientConstructor(ECHO, 'Echo');
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure()) as unknown as EchoClient;
  const payload = Buffer.alloc(200, 1);
  const call = () =>
    new Promise<void>((resolve, reject) => client.echo(payload, (err) => (err ? reject(err) : resolve())));
  try {
    await call(); // connect outside the measurement
    let done = 0;
    const until = Date.now() + durationMs;
    const start = Date.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (Date.now() < until) {
          await call();
          done++;
        }
      }),
    );
    return done / ((Date.now() - start) / 1000);
  } finally {
    client.close();
    server.forceShutdown();
  }
}

export async function pgbenchTps(
  databaseUrl: string,
  seconds = 5,
): Promise<{ tps: number | null; note?: string }> {
  try {
    await run('pgbench', ['-i', '-q', '-s', '1', databaseUrl], { timeout: 60_000 });
    const { stdout } = await run(
      'pgbench',
      ['-N', '-c', '4', '-j', '2', '-T', String(seconds), databaseUrl],
      {
        timeout: (seconds + 30) * 1000,
      },
    );
    const m = /tps = ([\d.]+)/.exec(stdout);
    return m ? { tps: Number(m[1]) } : { tps: null, note: 'pgbench printed no tps' };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return {
      tps: null,
      note: e.code === 'ENOENT' ? 'pgbench is not installed' : `pgbench failed: ${e.message}`,
    };
  } finally {
    await run('pgbench', ['-i', '-I', 'd', databaseUrl], { timeout: 30_000 }).catch(() => undefined);
  }
}

export async function measureMachine(databaseUrl: string): Promise<MachineLimits> {
  const spawnPerSecond = await spawnRate();
  const grpcCallsPerSecond = await grpcRate();
  const pg = await pgbenchTps(databaseUrl);
  return {
    spawnPerSecond,
    grpcCallsPerSecond,
    pgbenchTps: pg.tps,
    ...(pg.note ? { pgbenchNote: pg.note } : {}),
  };
}
