/**
 * The worker's bounds (DESIGN.md section 11) as its own OS process, built code (npm run build
 * first), real Postgres (JDBC registry) and real gRPC: the task log cap with a real SHELL task.
 * The test plays the master: a GrpcServer recording the events, a WorkerClient calling the worker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { silentLogger } from '@porpoise/common';
import { runMigrations } from '@porpoise/dao';
import {
  GrpcServer,
  RpcCallError,
  WorkerClient,
  type LogChunk,
  type TaskFinishedEvent,
  type TaskSpec,
} from '@porpoise/rpc';
import { freePort, startPostgres, stopProcess, waitFor, type TestServer } from '@porpoise/test-harness';
import { logCutMarker } from '../src/adapters/task-log-store';

const ROOT = join(__dirname, '..', '..', '..');
const MAIN = join(ROOT, 'dist', 'apps', 'worker', 'src', 'main.js');
const SECRET = 'worker-bounds-test-secret-0123456789';
/** Low, so that a task easily prints past it. */
const LOG_CAP = 4096;
/** A log planted in the data directory before the worker starts (a worker never caps what it finds). */
const BIG_LOG_TASK = 777;
const BIG_LOG = randomBytes(20 * 1024 * 1024 + 13);

describe('worker bounds (real process, real gRPC, JDBC registry)', () => {
  let pg: TestServer;
  let dataDir: string;
  /** Where a task leaves its witness: not DATA_DIR, which is the worker's own (mode 700). */
  let witnessDir: string;
  let workerPort: number;
  let worker: ChildProcess | undefined;
  let workerOutput = '';
  let masterServer: GrpcServer;
  let masterAddress = '';
  const finished: TaskFinishedEvent[] = [];
  let client: WorkerClient;
  let nextId = 5000;
  const workerAddress = () => `127.0.0.1:${workerPort}`;

  const task = (over: Partial<TaskSpec> = {}): TaskSpec => ({
    taskInstanceId: nextId++,
    workflowInstanceId: 1,
    taskName: 'task',
    command: 'true',
    attempt: 1,
    timeoutMs: 0,
    params: {},
    masterAddress,
    epoch: 1,
    taskType: 'SHELL',
    payloadJson: '',
    ...over,
  });

  async function startWorker(env: Record<string, string> = {}): Promise<ChildProcess> {
    const child = spawn(process.execPath, [MAIN], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: pg.endpoint,
        REGISTRY_TYPE: 'jdbc',
        CLUSTER_SECRET: SECRET,
        NODE_HOST: '127.0.0.1',
        WORKER_PORT: String(workerPort),
        METRICS_PORT: '0',
        DATA_DIR: dataDir,
        TASK_LOG_MAX_BYTES: String(LOG_CAP),
        RETENTION_DAYS: '30',
        ...env,
      },
    });
    const keep = (d: Buffer) => (workerOutput = (workerOutput + d.toString()).slice(-20_000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    await waitFor(
      'worker ready',
      () => {
        if (child.exitCode !== null) throw new Error(`worker exited ${child.exitCode}: ${workerOutput}`);
        return /worker ready/.test(workerOutput);
      },
      60_000,
      100,
    );
    return child;
  }

  async function runToEnd(spec: TaskSpec): Promise<TaskFinishedEvent> {
    expect((await client.dispatch(workerAddress(), spec)).accepted).toBe(true);
    return waitFor(
      `TaskFinished of task ${spec.taskInstanceId}`,
      () => finished.find((e) => e.taskInstanceId === spec.taskInstanceId),
      60_000,
    );
  }

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    dataDir = mkdtempSync(join(tmpdir(), 'porpoise-worker-bounds-'));
    // As root the task runs as nobody (TASK_USER's default): it may write here, and only here.
    witnessDir = mkdtempSync(join(tmpdir(), 'porpoise-worker-bounds-witness-'));
    chmodSync(witnessDir, 0o777);
    mkdirSync(join(dataDir, 'logs', '9'), { recursive: true });
    writeFileSync(join(dataDir, 'logs', '9', `${BIG_LOG_TASK}.log`), BIG_LOG);
    // Logs by age against RETENTION_DAYS=30: one last written 31 days ago (pruned with its
    // directory), one 29 days ago (kept), and an old one beside a fresh one (the directory stays).
    const day = 24 * 60 * 60;
    const plant = (dir: string, file: string, ageDays: number) => {
      mkdirSync(join(dataDir, 'logs', dir), { recursive: true });
      const path = join(dataDir, 'logs', dir, file);
      writeFileSync(path, `${file}\n`);
      const when = Date.now() / 1000 - ageDays * day;
      utimesSync(path, when, when);
    };
    plant('11', '111.log', 31);
    plant('12', '121.log', 29);
    plant('13', '131.log', 400);
    plant('13', '132.log', 0);
    workerPort = await freePort();
    masterServer = new GrpcServer({
      bindHost: '127.0.0.1',
      port: await freePort(),
      clusterSecret: SECRET,
      logger: silentLogger,
      master: {
        taskStarted: async () => ({ status: 'ACCEPTED', reason: '' }),
        taskFinished: async (e) => {
          finished.push(e);
          return { status: 'ACCEPTED', reason: '' };
        },
      },
    });
    masterAddress = `127.0.0.1:${await masterServer.start()}`;
    client = new WorkerClient(SECRET);
    worker = await startWorker();
  });

  afterAll(async () => {
    client?.close();
    if (worker) await stopProcess(worker, 'SIGKILL');
    await masterServer?.stop(1000);
    await pg?.dispose();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (witnessDir) rmSync(witnessDir, { recursive: true, force: true });
  });

  it('cuts a SHELL task log at TASK_LOG_MAX_BYTES with one marker line; the task runs on and succeeds', async () => {
    // 1 MiB to stdout and to stderr, far past the cap and past any socket buffer: a task whose
    // output were blocked at the cap would never reach its last line.
    const spec = task({
      command:
        'head -c 1048576 /dev/zero | tr "\\0" o; head -c 1048576 /dev/zero | tr "\\0" e >&2; ' +
        `echo finished > ${join(witnessDir, 'witness')}`,
    });
    expect(await runToEnd(spec)).toMatchObject({ state: 'SUCCESS', exitCode: 0 });
    const marker = logCutMarker(LOG_CAP);
    const log = await client.readLog(workerAddress(), spec.taskInstanceId);
    const text = log.content.toString('utf8');
    expect(log.content.length).toBe(LOG_CAP + Buffer.byteLength(marker));
    expect(text.endsWith(marker)).toBe(true);
    expect(text.slice(0, LOG_CAP)).toBe('o'.repeat(LOG_CAP));
    // The task ran past the cut to its last command.
    expect(readFileSync(join(witnessDir, 'witness'), 'utf8')).toBe('finished\n');
  });

  it('keeps a log under the cap whole, stdout and stderr in the order written', async () => {
    const spec = task({ command: 'echo one; echo two >&2; echo three' });
    expect(await runToEnd(spec)).toMatchObject({ state: 'SUCCESS' });
    const log = await client.readLog(workerAddress(), spec.taskInstanceId);
    expect(log.content.toString('utf8')).toBe('one\ntwo\nthree\n');
  });

  /** StreamLog's messages: [the first's size, the content of the others]. */
  async function streamed(id: number, offset = 0): Promise<[number, Buffer]> {
    const parts: Buffer[] = [];
    let size = -1;
    for await (const m of client.streamLog(workerAddress(), id, offset) as AsyncIterable<LogChunk>) {
      if (size < 0) size = Number(m.size);
      else parts.push(Buffer.from(m.content));
    }
    return [size, Buffer.concat(parts)];
  }

  it('StreamLog sends a 20 MiB log whole and byte-exact, in chunks under the message limit; from an offset too', async () => {
    let messages = 0;
    let largest = 0;
    for await (const m of client.streamLog(workerAddress(), BIG_LOG_TASK) as AsyncIterable<LogChunk>) {
      messages++;
      largest = Math.max(largest, m.content.length);
    }
    expect(messages).toBeGreaterThan(100);
    expect(largest).toBeLessThanOrEqual(64 * 1024);
    const [size, content] = await streamed(BIG_LOG_TASK);
    expect(size).toBe(BIG_LOG.length);
    expect(content.equals(BIG_LOG)).toBe(true);
    const [tailSize, tail] = await streamed(BIG_LOG_TASK, BIG_LOG.length - 100);
    expect(tailSize).toBe(100);
    expect(tail.equals(BIG_LOG.subarray(BIG_LOG.length - 100))).toBe(true);
  });

  it('StreamLog answers NOT_FOUND for a task it has no log of, INVALID_ARGUMENT for a bad request', async () => {
    await expect(streamed(987_654)).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(streamed(987_654)).rejects.toBeInstanceOf(RpcCallError);
    await expect(streamed(0)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });

  it('deletes task logs last written before RETENTION_DAYS at start, and empty instance directories', async () => {
    const logs = join(dataDir, 'logs');
    await waitFor('old logs pruned', () => !existsSync(join(logs, '13', '131.log')));
    expect(existsSync(join(logs, '11'))).toBe(false);
    expect(existsSync(join(logs, '12', '121.log'))).toBe(true);
    expect(existsSync(join(logs, '13', '132.log'))).toBe(true);
    expect((await client.readLog(workerAddress(), 111)).found).toBe(false);
    expect((await client.readLog(workerAddress(), 121)).content.toString()).toBe('121.log\n');
    // The big planted log is fresh: kept.
    expect((await client.readLog(workerAddress(), BIG_LOG_TASK, 0, 4)).found).toBe(true);
  });
});
