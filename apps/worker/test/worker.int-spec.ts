/**
 * The worker as its own OS process, built code (npm run build first), against a real Postgres
 * (JDBC registry) and real gRPC. The test plays the master: a GrpcServer with master handlers that
 * records the events it receives, and a WorkerClient that calls the worker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  chmodSync,
  statSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata, status, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import { CONFIG_VARIABLES, silentLogger, type ConfigVariable } from '@porpoise/common';
import { runMigrations } from '@porpoise/dao';
import { createRegistry, type Registry } from '@porpoise/registry';
import {
  GrpcServer,
  RpcCallError,
  services,
  WorkerClient,
  type DispatchResponse,
  type EventAckStatus,
  type TaskFinishedEvent,
  type TaskSpec,
  type TaskStartedEvent,
} from '@porpoise/rpc';
import {
  freePort,
  itUnless,
  serverControlSkipReason,
  startPostgres,
  stopProcess,
  waitFor,
  type TestServer,
} from '@porpoise/test-harness';

const ROOT = join(__dirname, '..', '..', '..');
const MAIN = join(ROOT, 'dist', 'apps', 'worker', 'src', 'main.js');
const SECRET = 'worker-test-secret-0123456789';
/** The worker's registry session timeout and heartbeat: a 2 s liveness deadline, 250 ms watchdog poll. */
const SESSION_TIMEOUT_MS = 3_000;
const HEARTBEAT_INTERVAL_MS = 500;

/** The raw client's Dispatch, called without the cluster secret. */
interface RawDispatch {
  Dispatch(
    request: unknown,
    metadata: Metadata,
    options: CallOptions,
    callback: (err: ServiceError | null) => void,
  ): void;
}

/** The test's stand-in for a master: records events, answers what `answer` says. */
class FakeMaster {
  readonly started: TaskStartedEvent[] = [];
  readonly finished: TaskFinishedEvent[] = [];
  answer: (event: TaskFinishedEvent) => EventAckStatus = () => 'ACCEPTED';

  private readonly server: GrpcServer;
  port = 0;

  private constructor(port: number) {
    this.server = new GrpcServer({
      bindHost: '127.0.0.1',
      port,
      clusterSecret: SECRET,
      logger: silentLogger,
      master: {
        taskStarted: async (e) => {
          this.started.push(e);
          return { status: 'ACCEPTED', reason: '' };
        },
        taskFinished: async (e) => {
          this.finished.push(e);
          return { status: this.answer(e), reason: 'test' };
        },
      },
    });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  static async start(port?: number): Promise<FakeMaster> {
    const master = new FakeMaster(port ?? (await freePort()));
    master.port = await master.server.start();
    return master;
  }

  finishedOf(id: number): TaskFinishedEvent[] {
    return this.finished.filter((e) => e.taskInstanceId === id);
  }

  startedOf(id: number): TaskStartedEvent[] {
    return this.started.filter((e) => e.taskInstanceId === id);
  }

  waitFinished(id: number, timeoutMs = 30_000): Promise<TaskFinishedEvent> {
    return waitFor(`TaskFinished of task ${id} at ${this.address}`, () => this.finishedOf(id)[0], timeoutMs);
  }

  stop(): Promise<void> {
    return this.server.stop(1000);
  }
}

/** Live (non-zombie) processes of a process group, from /proc (zombies wait for init to reap them). */
function liveMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(name));
    } catch {
      // Exited while we looked.
    }
  }
  return members;
}

/**
 * The pid of a worker's watchdog (argv: /bin/sh -c SCRIPT porpoise-watchdog …; its parent is the
 * worker) when it supervises the process group (a file `{task}.{pgid}` in its groups directory).
 */
function watchdogOf(workerPid: number, pgid: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (argv[3] !== 'porpoise-watchdog' || ppid !== workerPid) continue;
      const groups = argv[5];
      if (groups !== undefined && readdirSync(groups).some((f) => f.endsWith(`.${pgid}`))) {
        return Number(name);
      }
    } catch {
      // Exited while we looked.
    }
  }
  return undefined;
}

/** The state letter of a process (R, S, T for stopped, Z ...), undefined when there is none. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

async function rpcError(p: Promise<unknown>): Promise<RpcCallError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RpcCallError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('worker node (real process, real gRPC, JDBC registry)', () => {
  let pg: TestServer;
  let dataDir: string;
  let scratch: string;
  let workerPort: number;
  let worker: ChildProcess | undefined;
  let workerOutput = '';
  let master: FakeMaster;
  let client: WorkerClient;
  let registry: Registry;
  const groups: number[] = [];
  let nextId = 1000;
  const newId = () => nextId++;
  const workerAddress = () => `127.0.0.1:${workerPort}`;
  const workerKey = () => `/nodes/worker/default/127.0.0.1:${workerPort}`;
  const outboxFile = (id: number) => join(dataDir, 'outbox', `${id}.json`);
  /**
   * Waits for a task's process group to die, then reads whether the worker's registry key still
   * stands. Read after the group was seen dead, a standing key means the group died before the
   * worker's session ended, so before any master could run the task elsewhere (an ordering, not
   * a timing: the bound is only how long the test waits).
   */
  const killedWhileRegistered = (pgid: number) =>
    waitFor(
      `group ${pgid} to be killed by its watchdog`,
      async () =>
        liveMembers(pgid).length === 0 && { registered: (await registry.get(workerKey())) !== null },
      30_000,
      20,
    );

  const task = (over: Partial<TaskSpec> = {}): TaskSpec => ({
    taskInstanceId: newId(),
    workflowInstanceId: 1,
    taskName: 'task',
    command: 'true',
    attempt: 1,
    timeoutMs: 0,
    params: {},
    masterAddress: master.address,
    epoch: 1,
    taskType: 'SHELL',
    payloadJson: '',
    ...over,
  });

  async function startWorker(): Promise<ChildProcess> {
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
        DATA_DIR: dataDir,
        REGISTRY_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
        HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS),
        // Never inherited by tasks: their environment is built from nothing (PATH and the locale
        // aside), and PORPOISE_* variables only the task's own run sets.
        // Not Porpoise's: passed on to tasks (DESIGN.md section 5, the worker's environment).
        WORKER_ENV_MARKER: 'inherited',
        PORPOISE_PARAM_STRAY: 'leaked',
        // Tasks in their own directories under the test's scratch (as root: as nobody).
        TASK_WORK_DIR: join(scratch, 'tasks'),
      },
    });
    // Keep draining the pipes (a full pipe would block the worker) and keep the tail for failures.
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

  async function restartWorker(signal: NodeJS.Signals): Promise<void> {
    if (worker) await stopProcess(worker, signal);
    workerOutput = '';
    worker = await startWorker();
  }

  /** Runs a task that prints its shell pid first and returns that pid (= its process group). */
  async function pgidOf(id: number): Promise<number> {
    const pgid = await waitFor(`pid in the log of task ${id}`, async () => {
      const log = await client.readLog(workerAddress(), id);
      const m = /^(\d+)\n/.exec(log.content.toString());
      return m ? Number(m[1]) : undefined;
    });
    groups.push(pgid);
    return pgid;
  }

  /** After its session was lost: the worker takes and runs tasks again. */
  async function waitUntilUsable(): Promise<void> {
    const again = task({ command: 'true' });
    await waitFor(
      'dispatch accepted again',
      async () => (await client.dispatch(workerAddress(), again)).accepted,
      60_000,
      200,
    );
    expect(await master.waitFinished(again.taskInstanceId)).toMatchObject({ state: 'SUCCESS' });
  }

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    dataDir = mkdtempSync(join(tmpdir(), 'porpoise-worker-'));
    // As an older worker left it: the worker makes it private at start.
    chmodSync(dataDir, 0o755);
    scratch = mkdtempSync(join(tmpdir(), 'porpoise-worker-scratch-'));
    // Tasks run as nobody (the worker runs as root here) and use gate and witness files in it.
    chmodSync(scratch, 0o777);
    workerPort = await freePort();
    master = await FakeMaster.start();
    client = new WorkerClient(SECRET);
    registry = createRegistry({
      type: 'jdbc',
      databaseUrl: pg.endpoint,
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
    });
    await registry.start();
    worker = await startWorker();
  });

  afterAll(async () => {
    client?.close();
    await registry?.close().catch(() => undefined);
    if (worker) await stopProcess(worker, 'SIGKILL');
    for (const pgid of groups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // Already gone, as it should be.
      }
    }
    await master?.stop();
    await pg?.dispose();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  afterEach(() => {
    master.answer = () => 'ACCEPTED';
  });

  /** The worker's heartbeat as its registry key holds it now. */
  async function heartbeat(): Promise<{ startTime: number; registration: number }> {
    const value = await waitFor('worker key', async () => (await registry.get(workerKey())) ?? undefined);
    return JSON.parse(value) as { startTime: number; registration: number };
  }

  it('registers its heartbeat key with valid JSON', async () => {
    const value = await waitFor('worker key', async () => (await registry.get(workerKey())) ?? undefined);
    const heartbeat = JSON.parse(value) as Record<string, unknown>;
    expect(heartbeat).toMatchObject({
      host: '127.0.0.1',
      port: workerPort,
      group: 'default',
      runningTasks: 0,
      capacity: 32,
      serving: true,
      registration: 1,
    });
    for (const field of ['startTime', 'heartbeatTime', 'cpuUsage', 'memoryUsage', 'loadAverage']) {
      expect(typeof heartbeat[field]).toBe('number');
    }
  });

  it('makes DATA_DIR private (mode 700) at start, also when it existed', () => {
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
  });

  it("runs a task with the worker's environment and the documented variables, without any of Porpoise's", async () => {
    const spec = task({
      workflowInstanceId: 42,
      taskName: 'extract',
      attempt: 2,
      // Lasts past STARTED_EVENT_DELAY_MS, so a TaskStarted is sent too.
      command: 'env -0; sleep 0.2',
      params: { GREETING: 'hello world $HOME "quoted"', lower_name: 'x' },
      epoch: 7,
    });
    const answer = await client.dispatch(workerAddress(), spec);
    // The answer names this worker process and registration: its heartbeat's.
    const heartbeat = JSON.parse((await registry.get(workerKey()))!) as {
      startTime: number;
      registration: number;
    };
    expect(answer).toEqual({
      accepted: true,
      reason: '',
      workerStartTimeMs: heartbeat.startTime,
      workerRegistration: heartbeat.registration,
    });
    const result = await master.waitFinished(spec.taskInstanceId);
    expect(result).toMatchObject({
      taskInstanceId: spec.taskInstanceId,
      workflowInstanceId: 42,
      attempt: 2,
      state: 'SUCCESS',
      exitCode: 0,
      workerAddress: workerAddress(),
      epoch: 7,
      message: '',
    });
    expect(master.startedOf(spec.taskInstanceId)).toEqual([
      expect.objectContaining({ attempt: 2, workerAddress: workerAddress(), epoch: 7 }),
    ]);
    const log = await client.readLog(workerAddress(), spec.taskInstanceId);
    const env = Object.fromEntries(
      log.content
        .toString()
        .split('\0')
        .filter((entry) => entry.includes('='))
        .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
    );
    const porpoise = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('PORPOISE_')));
    expect(porpoise).toEqual({
      PORPOISE_WORKFLOW_INSTANCE_ID: '42',
      PORPOISE_TASK_INSTANCE_ID: String(spec.taskInstanceId),
      PORPOISE_TASK_NAME: 'extract',
      PORPOISE_ATTEMPT: '2',
      PORPOISE_PARAM_GREETING: 'hello world $HOME "quoted"',
      PORPOISE_PARAM_lower_name: 'x',
      PORPOISE_PARAM_LOWER_NAME: 'x',
    });
    expect(env.WORKER_ENV_MARKER).toBe('inherited');
    // None of the variables Porpoise reads (the worker was given CLUSTER_SECRET and DATABASE_URL).
    expect(Object.keys(env).filter((name) => CONFIG_VARIABLES.includes(name as ConfigVariable))).toEqual([]);
    expect(env.PWD).toMatch(new RegExp(`^${join(scratch, 'tasks')}/`));
    expect(env.CLUSTER_SECRET).toBeUndefined();
    expect(env.DATABASE_URL).toBeUndefined();
    expect(log.content.toString()).not.toContain(SECRET);
  });

  it('reports a failing command as FAILURE with its exit code', async () => {
    const spec = task({ command: 'echo broken >&2; exit 3' });
    await client.dispatch(workerAddress(), spec);
    expect(await master.waitFinished(spec.taskInstanceId)).toMatchObject({ state: 'FAILURE', exitCode: 3 });
    expect((await client.readLog(workerAddress(), spec.taskInstanceId)).content.toString()).toBe('broken\n');
  });

  it('kills the whole process group on timeout and reports FAILURE "timeout"', async () => {
    const spec = task({ command: 'echo $$; sleep 1000 & sleep 1000', timeoutMs: 300 });
    await client.dispatch(workerAddress(), spec);
    const pgid = await pgidOf(spec.taskInstanceId);
    expect(await master.waitFinished(spec.taskInstanceId)).toMatchObject({
      state: 'FAILURE',
      exitCode: -1,
      message: 'timeout',
    });
    await waitFor(`no process left in group ${pgid}`, () => liveMembers(pgid).length === 0);
  });

  it('Kill ends the whole process group and reports KILL', async () => {
    const spec = task({ command: 'echo $$; sleep 1000 & sleep 1000' });
    await client.dispatch(workerAddress(), spec);
    const pgid = await pgidOf(spec.taskInstanceId);
    expect(liveMembers(pgid).length).toBeGreaterThan(0);
    expect(await client.kill(workerAddress(), spec.taskInstanceId)).toEqual({ killed: true });
    expect(await master.waitFinished(spec.taskInstanceId)).toMatchObject({ state: 'KILL' });
    await waitFor(`no process left in group ${pgid}`, () => liveMembers(pgid).length === 0);
    expect(await client.kill(workerAddress(), spec.taskInstanceId)).toEqual({ killed: false });
  });

  it('answers a repeated Dispatch accepted without running the task again', async () => {
    const gate = join(scratch, 'gate-idempotent');
    const spec = task({ command: `echo ran; while [ ! -f ${gate} ]; do sleep 0.05; done` });
    const id = spec.taskInstanceId;
    expect(await client.dispatch(workerAddress(), spec)).toEqual({
      accepted: true,
      reason: '',
      workerStartTimeMs: expect.any(Number),
      workerRegistration: expect.any(Number),
    });
    expect(await client.dispatch(workerAddress(), spec)).toEqual({
      accepted: true,
      reason: 'already running',
      workerStartTimeMs: expect.any(Number),
      workerRegistration: expect.any(Number),
    });
    writeFileSync(gate, '');
    await master.waitFinished(id);
    await waitFor('result acknowledged', () => !existsSync(outboxFile(id)));
    expect((await client.dispatch(workerAddress(), spec)).accepted).toBe(true);
    // Another task run to its end after the repeat: had the repeat started a run, it would show by now.
    const after = task({ command: 'true' });
    await client.dispatch(workerAddress(), after);
    await master.waitFinished(after.taskInstanceId);
    expect((await client.readLog(workerAddress(), id)).content.toString()).toBe('ran\n');
    expect(master.startedOf(id)).toHaveLength(1);
    expect(master.finishedOf(id)).toHaveLength(1);
  });

  it('refuses calls without or with a wrong secret (UNAUTHENTICATED)', async () => {
    const wrong = new WorkerClient('not-the-cluster-secret-at-all');
    try {
      const err = await rpcError(wrong.dispatch(workerAddress(), task({ command: 'touch /tmp/never' })));
      expect(err.code).toBe(status.UNAUTHENTICATED);
      expect((await rpcError(wrong.readLog(workerAddress(), 1))).code).toBe(status.UNAUTHENTICATED);
    } finally {
      wrong.close();
    }
    const Raw = services().WorkerTaskService;
    const raw = new Raw(workerAddress(), credentials.createInsecure());
    try {
      const err = await new Promise<ServiceError | null>((resolve) =>
        (raw as unknown as RawDispatch).Dispatch(
          { task: task() },
          new Metadata(),
          { deadline: new Date(Date.now() + 5000) },
          (e: ServiceError | null) => resolve(e),
        ),
      );
      expect(err?.code).toBe(status.UNAUTHENTICATED);
    } finally {
      raw.close();
    }
  });

  it('answers invalid messages with INVALID_ARGUMENT naming the field', async () => {
    const cases: [Promise<unknown>, string][] = [
      [client.dispatch(workerAddress(), task({ taskInstanceId: 0 })), 'task.taskInstanceId'],
      [client.dispatch(workerAddress(), task({ workflowInstanceId: -4 })), 'task.workflowInstanceId'],
      [client.dispatch(workerAddress(), task({ command: '' })), 'task.command'],
      [client.dispatch(workerAddress(), task({ attempt: 0 })), 'task.attempt'],
      [client.dispatch(workerAddress(), task({ timeoutMs: -1 })), 'task.timeoutMs'],
      [client.dispatch(workerAddress(), task({ masterAddress: 'no-port' })), 'task.masterAddress'],
      [client.dispatch(workerAddress(), task({ params: { 'bad-name': 'x' } })), 'task.params'],
      [client.kill(workerAddress(), 0), 'taskInstanceId'],
      [client.takeOver(workerAddress(), 5, 'nowhere', 1), 'newMasterAddress'],
      [client.readLog(workerAddress(), 5, -1), 'offset'],
    ];
    for (const [call, field] of cases) {
      const err = await rpcError(call);
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message).toContain(field);
    }
  });

  it('ReadLog returns what the task printed, in chunks; found=false for an unknown task', async () => {
    const spec = task({ command: "printf 'hello\\nworld\\n'" });
    await client.dispatch(workerAddress(), spec);
    await master.waitFinished(spec.taskInstanceId);
    const id = spec.taskInstanceId;
    const all = await client.readLog(workerAddress(), id);
    expect(all).toMatchObject({ found: true, nextOffset: 12, eof: true });
    expect(all.content.toString()).toBe('hello\nworld\n');
    const head = await client.readLog(workerAddress(), id, 0, 3);
    expect(head).toMatchObject({ found: true, nextOffset: 3, eof: false });
    expect(head.content.toString()).toBe('hel');
    expect((await client.readLog(workerAddress(), id, 6)).content.toString()).toBe('world\n');
    expect((await client.readLog(workerAddress(), 987_654)).found).toBe(false);
  });

  it('keeps a result the master answers NOT_OWNER for and retries until ACCEPTED', async () => {
    const spec = task({ command: 'true' });
    const id = spec.taskInstanceId;
    master.answer = (e) => (master.finishedOf(e.taskInstanceId).length < 3 ? 'NOT_OWNER' : 'ACCEPTED');
    await client.dispatch(workerAddress(), spec);
    await waitFor('three deliveries', () => master.finishedOf(id).length >= 3);
    await waitFor('outbox emptied', () => !existsSync(outboxFile(id)));
    expect(master.finishedOf(id).every((e) => e.state === 'SUCCESS')).toBe(true);
  });

  it('runs an EMPTY task: SUCCESS at once, without a process', async () => {
    const spec = task({ taskType: 'EMPTY', command: '', payloadJson: '{}' });
    expect((await client.dispatch(workerAddress(), spec)).accepted).toBe(true);
    expect(await master.waitFinished(spec.taskInstanceId)).toMatchObject({
      state: 'SUCCESS',
      exitCode: 0,
      message: '',
      outputs: {},
    });
    // Its result is its only event: it carries the start time.
    expect(master.startedOf(spec.taskInstanceId)).toEqual([]);
    expect(master.finishedOf(spec.taskInstanceId)[0]?.startTimeMs).toBeGreaterThan(0);
    expect(await client.readLog(workerAddress(), spec.taskInstanceId)).toMatchObject({
      found: true,
      eof: true,
    });
    expect(workerOutput).toContain(
      `task ${spec.taskInstanceId} (task, attempt 1) started as a EMPTY run inside the worker`,
    );
  });

  it('sends the outputs a SHELL task set with setValue, also in the result a TakeOver hands over', async () => {
    const newMaster = await FakeMaster.start();
    try {
      master.answer = () => 'NOT_OWNER';
      const spec = task({
        command: 'echo \'${setValue(day=20240101)}\'; echo "\\${setValue(who=$PORPOISE_PARAM_WHO)}"',
        params: { WHO: 'a b' },
      });
      await client.dispatch(workerAddress(), spec);
      expect((await master.waitFinished(spec.taskInstanceId)).outputs).toEqual({
        day: '20240101',
        who: 'a b',
      });
      const held = await client.takeOver(workerAddress(), spec.taskInstanceId, newMaster.address, 2);
      expect(held).toMatchObject({
        status: 'FINISHED',
        result: { outputs: { day: '20240101', who: 'a b' } },
      });
      expect((await newMaster.waitFinished(spec.taskInstanceId)).outputs).toEqual({
        day: '20240101',
        who: 'a b',
      });
    } finally {
      await newMaster.stop();
    }
  });

  describe('HTTP tasks', () => {
    let server: Server;
    let base: string;
    const hanging: ServerResponse[] = [];

    beforeAll(async () => {
      server = createServer((req, res) => {
        if (req.url === '/hang') {
          hanging.push(res);
          return;
        }
        res.writeHead(req.url === '/teapot' ? 418 : 200, { 'content-type': 'text/plain' });
        res.end(`you asked ${req.method ?? ''} ${req.url ?? ''}\n`);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    const http = (payload: Record<string, unknown>, over: Partial<TaskSpec> = {}) =>
      task({ taskType: 'HTTP', command: '', payloadJson: JSON.stringify(payload), ...over });

    it('runs a request: status as output, status line and body in the log', async () => {
      const spec = http({ method: 'GET', url: `${base}/hello` });
      await client.dispatch(workerAddress(), spec);
      expect(await master.waitFinished(spec.taskInstanceId)).toMatchObject({
        state: 'SUCCESS',
        exitCode: 0,
        outputs: { status: '200' },
      });
      expect((await client.readLog(workerAddress(), spec.taskInstanceId)).content.toString()).toBe(
        `GET ${base}/hello\nHTTP 200 OK\nyou asked GET /hello\n`,
      );
      const teapot = http({ method: 'POST', url: `${base}/teapot`, body: 'x' });
      await client.dispatch(workerAddress(), teapot);
      expect(await master.waitFinished(teapot.taskInstanceId)).toMatchObject({
        state: 'FAILURE',
        message: 'HTTP status 418 is not expected (expected any 2xx)',
        outputs: { status: '418' },
      });
    });

    it('Kill aborts a request and reports KILL; the task timeout reports FAILURE "timeout"', async () => {
      const killed = http({ method: 'GET', url: `${base}/hang` });
      await client.dispatch(workerAddress(), killed);
      await waitFor('request at the server', () => hanging.length === 1);
      expect(await client.kill(workerAddress(), killed.taskInstanceId)).toEqual({ killed: true });
      expect(await master.waitFinished(killed.taskInstanceId)).toMatchObject({
        state: 'KILL',
        message: 'killed on request',
      });

      const late = http({ method: 'GET', url: `${base}/hang` }, { timeoutMs: 300 });
      await client.dispatch(workerAddress(), late);
      expect(await master.waitFinished(late.taskInstanceId)).toMatchObject({
        state: 'FAILURE',
        exitCode: -1,
        message: 'timeout',
      });
    });
  });

  it('runs a SQL task with bind values: first row as outputs, rows in the log, no password', async () => {
    const spec = task({
      taskType: 'SQL',
      command: '',
      payloadJson: JSON.stringify({
        datasourceType: 'postgres',
        url: pg.endpoint,
        text: 'SELECT $1::text AS greeting, g AS n FROM generate_series(1, 3) g',
        values: ["it's; DROP TABLE x"],
      }),
    });
    await client.dispatch(workerAddress(), spec);
    expect(await master.waitFinished(spec.taskInstanceId)).toMatchObject({
      state: 'SUCCESS',
      outputs: { greeting: "it's; DROP TABLE x", n: '1' },
    });
    const log = (await client.readLog(workerAddress(), spec.taskInstanceId)).content.toString();
    expect(log).toContain('{"greeting":"it\'s; DROP TABLE x","n":"3"}\n');
    expect(log).not.toContain(`:${new URL(pg.endpoint).password}@`);
  });

  it('refuses bad task types and payloads with INVALID_ARGUMENT and a clear reason, starting nothing', async () => {
    const cases: [TaskSpec, string][] = [
      [
        task({ taskType: 'SWITCH' as TaskSpec['taskType'] }),
        'task.taskType SWITCH runs on the master, never on a worker',
      ],
      [
        task({ taskType: 'PYTHON' as TaskSpec['taskType'] }),
        'task.taskType must be one of SHELL, EMPTY, HTTP, SQL',
      ],
      [task({ taskType: 'HTTP', payloadJson: '{"method":' }), 'task.payloadJson is not JSON'],
      [task({ taskType: 'HTTP', payloadJson: '{"method":"GET"}' }), 'task.payloadJson.url is required'],
      [
        task({
          taskType: 'SQL',
          payloadJson: '{"datasourceType":"postgres","url":"postgres://h/db","text":"select 1","values":[1]}',
        }),
        'task.payloadJson.values[0] must be a string or null',
      ],
      [task({ taskType: 'EMPTY', payloadJson: '{"x":1}' }), 'task.payloadJson has unknown field "x"'],
    ];
    for (const [spec, reason] of cases) {
      const err = await rpcError(client.dispatch(workerAddress(), spec));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.message).toContain(reason);
      expect((await client.readLog(workerAddress(), spec.taskInstanceId)).found).toBe(false);
    }
  });

  it('TakeOver redirects a held result and a running task to the new master', async () => {
    const newMaster = await FakeMaster.start();
    try {
      // A finished task whose result the old master will not take.
      master.answer = () => 'NOT_OWNER';
      const done = task({ command: 'echo done', epoch: 1 });
      await client.dispatch(workerAddress(), done);
      await master.waitFinished(done.taskInstanceId);
      const held = await client.takeOver(workerAddress(), done.taskInstanceId, newMaster.address, 2);
      expect(held.status).toBe('FINISHED');
      expect(held.result).toMatchObject({ taskInstanceId: done.taskInstanceId, state: 'SUCCESS', epoch: 2 });
      expect(await newMaster.waitFinished(done.taskInstanceId)).toMatchObject({ state: 'SUCCESS', epoch: 2 });
      await waitFor('outbox emptied', () => !existsSync(outboxFile(done.taskInstanceId)));

      // A running task: its result goes to the new master.
      const gate = join(scratch, 'gate-takeover');
      const running = task({ command: `while [ ! -f ${gate} ]; do sleep 0.05; done`, epoch: 1 });
      await client.dispatch(workerAddress(), running);
      const attached = await client.takeOver(workerAddress(), running.taskInstanceId, newMaster.address, 3);
      expect(attached.status).toBe('RUNNING');
      expect(attached.startTimeMs).toBeGreaterThan(0);
      writeFileSync(gate, '');
      expect(await newMaster.waitFinished(running.taskInstanceId)).toMatchObject({
        state: 'SUCCESS',
        epoch: 3,
      });

      expect((await client.takeOver(workerAddress(), 876_543, newMaster.address, 1)).status).toBe('UNKNOWN');
    } finally {
      await newMaster.stop();
    }
  });

  it('refuses a Dispatch from an older or the same epoch after a TakeOver answered UNKNOWN ("superseded")', async () => {
    const stale = task({ command: 'echo ran', epoch: 4 });
    const id = stale.taskInstanceId;
    expect((await client.takeOver(workerAddress(), id, master.address, 5)).status).toBe('UNKNOWN');
    // The frozen master's Dispatch arrives after the successor heard UNKNOWN (and re-ran the task).
    expect(await client.dispatch(workerAddress(), stale)).toEqual({
      accepted: false,
      reason: 'superseded',
      workerStartTimeMs: expect.any(Number),
      workerRegistration: expect.any(Number),
    });
    // A Dispatch of the TakeOver's own epoch that arrives late (the call was cut mid-way, and the
    // master asked TakeOver, heard UNKNOWN and re-ran the task under a new id) is refused too.
    expect(await client.dispatch(workerAddress(), { ...stale, epoch: 5 })).toEqual({
      accepted: false,
      reason: 'superseded',
      workerStartTimeMs: expect.any(Number),
      workerRegistration: expect.any(Number),
    });
    expect((await client.readLog(workerAddress(), id)).found).toBe(false);
    expect(master.startedOf(id)).toEqual([]);
    // A newer epoch is not refused.
    expect(await client.dispatch(workerAddress(), { ...stale, epoch: 6 })).toEqual({
      accepted: true,
      reason: '',
      workerStartTimeMs: expect.any(Number),
      workerRegistration: expect.any(Number),
    });
    expect(await master.waitFinished(id)).toMatchObject({ state: 'SUCCESS', epoch: 6 });
  });

  it('a worker woken from a stall past the deadline refuses the Dispatches queued meanwhile ("session unconfirmed") until its session is confirmed', async () => {
    // The liveness deadline at these timings (session 3 s, heartbeat 0.5 s) is 2 s.
    const DEADLINE_MS = 2_000;
    const queued = task({ command: `touch ${join(scratch, 'queued-ran')}` });
    const id = queued.taskInstanceId;
    const pid = worker!.pid!;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const before = await heartbeat();
    process.kill(pid, 'SIGSTOP');
    let answer: Promise<DispatchResponse>;
    try {
      await sleep(300);
      // Queues in the stopped worker's socket; it runs the moment the worker wakes, before any
      // registry event can tell the worker what became of its session.
      answer = client.dispatch(workerAddress(), queued, 15_000, {
        startTimeMs: before.startTime,
        registration: before.registration,
      });
      answer.catch(() => undefined);
      await sleep(DEADLINE_MS + 300);
      expect(processState(pid)).toBe('T');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Refused: normally by the stall check itself; under load the registry client's own timer may
    // declare the session lost first on waking; and when the call only reaches the worker after
    // its session was confirmed (no connection was open yet), because it names the registration
    // from before the stall.
    const refused = await answer;
    expect(refused.accepted).toBe(false);
    expect(refused.reason).toMatch(/^(session (unconfirmed|lost|suspended)|stale registration: .+)$/);
    expect(workerOutput).toMatch(/the worker was stalled for \d+ ms/);
    // Once the session is confirmed (a heartbeat sent after waking succeeded, or a new session
    // registered) a new task is accepted and runs.
    await waitUntilUsable();
    expect(workerOutput).toContain('registry session confirmed alive after the stall');
    // The queued one never started.
    expect((await client.readLog(workerAddress(), id)).found).toBe(false);
    expect(existsSync(join(scratch, 'queued-ran'))).toBe(false);
    expect(master.startedOf(id)).toEqual([]);
    expect(master.finishedOf(id)).toEqual([]);

    // The masters may have run its tasks elsewhere meanwhile: the worker registered anew, and a
    // Dispatch a master addressed to the registration before the stall (one that froze before
    // sending it) is refused, while one addressed to the new registration runs.
    const after = await waitFor('a new registration in the heartbeat', async () => {
      const hb = await heartbeat();
      return hb.registration > before.registration ? hb : undefined;
    });
    expect(after.startTime).toBe(before.startTime);
    const late = task({ command: `touch ${join(scratch, 'late-ran')}` });
    const stale = await client.dispatch(workerAddress(), late, 5_000, {
      startTimeMs: before.startTime,
      registration: before.registration,
    });
    expect(stale).toMatchObject({ accepted: false });
    expect(stale.reason).toMatch(
      /^stale registration: addressed to registration \d+, this worker is at \d+$/,
    );
    const current = task();
    const fresh = await client.dispatch(workerAddress(), current, 5_000, {
      startTimeMs: after.startTime,
      registration: after.registration,
    });
    expect(fresh.accepted).toBe(true);
    expect(await master.waitFinished(current.taskInstanceId)).toMatchObject({ state: 'SUCCESS' });
    expect((await client.readLog(workerAddress(), late.taskInstanceId)).found).toBe(false);
    expect(existsSync(join(scratch, 'late-ran'))).toBe(false);
  });

  it('a frozen worker (SIGSTOP): the watchdog kills the task before the session can expire; KILL on waking', async () => {
    const spec = task({ command: 'echo $$; sleep 1000 & sleep 1000' });
    const id = spec.taskInstanceId;
    await client.dispatch(workerAddress(), spec);
    const pgid = await pgidOf(id);
    expect(watchdogOf(worker!.pid!, pgid)).toBeDefined();
    const pid = worker!.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      // Before the session ends: after it the masters could run the task elsewhere.
      expect(await killedWhileRegistered(pgid)).toEqual({ registered: true });
      expect(processState(pid)).toBe('T');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(await master.waitFinished(id)).toMatchObject({ state: 'KILL', message: 'registry session lost' });
    expect(workerOutput).toMatch(
      new RegExp(`task ${id}: its watchdog killed process group ${pgid}: the worker stalled`),
    );
    await waitUntilUsable();
    expect(master.finishedOf(id).map((e) => e.state)).not.toContain('SUCCESS');
  });

  it('a killed worker (SIGKILL): the watchdog kills the task before its session ends; the restart reports KILL and remembers', async () => {
    const spec = task({ command: 'echo $$; sleep 1000 & sleep 1000' });
    const id = spec.taskInstanceId;
    await client.dispatch(workerAddress(), spec);
    const pgid = await pgidOf(id);
    const superseded = newId();
    expect((await client.takeOver(workerAddress(), superseded, master.address, 9)).status).toBe('UNKNOWN');

    await stopProcess(worker!, 'SIGKILL');
    // Before the dead worker's session ends: after it the masters could run the task elsewhere.
    expect(await killedWhileRegistered(pgid)).toEqual({ registered: true });
    await restartWorker('SIGKILL');
    expect(await master.waitFinished(id)).toMatchObject({
      state: 'KILL',
      message: 'worker restarted while the task ran',
    });
    expect(workerOutput).toContain(
      `task ${id}: its watchdog killed process group ${pgid}: the worker process died`,
    );
    // What the TakeOver answered UNKNOWN for survives the restart.
    expect(await client.dispatch(workerAddress(), task({ taskInstanceId: superseded, epoch: 8 }))).toEqual({
      accepted: false,
      reason: 'superseded',
      workerStartTimeMs: expect.any(Number),
      workerRegistration: expect.any(Number),
    });
  });

  // Stops Postgres (the JDBC registry's server): skipped, with the reason, where it is not ours.
  itUnless(serverControlSkipReason('postgres'))(
    'on a suspended registry session kills running tasks before it can expire (KILL), refuses work, and registers again',
    async () => {
      const spec = task({ command: 'echo $$; sleep 1000 & sleep 1000' });
      await client.dispatch(workerAddress(), spec);
      const pgid = await pgidOf(spec.taskInstanceId);
      await pg.stop();
      try {
        expect(await master.waitFinished(spec.taskInstanceId, 60_000)).toMatchObject({
          state: 'KILL',
          message: 'registry session lost',
        });
        await waitFor(`no process left in group ${pgid}`, () => liveMembers(pgid).length === 0);
        // Killed by the SUSPENDED timer, before the session was declared lost.
        const killed = workerOutput.indexOf('registry session suspended for too long');
        expect(killed).toBeGreaterThanOrEqual(0);
        const lost = workerOutput.indexOf('registry session lost: killing running tasks');
        expect(lost === -1 || lost > killed).toBe(true);
        const refused = await client.dispatch(workerAddress(), task());
        expect(refused.accepted).toBe(false);
        expect(refused.reason).toMatch(/^session (lost|suspended)$/);
      } finally {
        await pg.start();
      }
      await waitFor(
        'registered again',
        async () => (await registry.get(workerKey()).catch(() => null)) !== null,
        60_000,
        200,
      );
      await waitUntilUsable();
    },
  );

  it('keeps an undelivered result across a SIGKILL and delivers it after restart; ends orphaned tasks', async () => {
    const downPort = await freePort();
    const downAddress = `127.0.0.1:${downPort}`;
    const result = task({ command: 'echo persisted', masterAddress: downAddress });
    await client.dispatch(workerAddress(), result);
    await waitFor('result held in the outbox', () => existsSync(outboxFile(result.taskInstanceId)));
    // A task still running when the worker dies: its group outlives the worker.
    const orphan = task({ command: 'echo $$; sleep 1000', masterAddress: downAddress });
    await client.dispatch(workerAddress(), orphan);
    const pgid = await pgidOf(orphan.taskInstanceId);
    // A watchdog that cannot act (stopped): the group outlives the worker, and the restart ends it.
    // The whole watchdog group: its pipe reader (a subshell in the group it leads) would otherwise
    // see the worker's pipe close and end the task at once.
    const dog = watchdogOf(worker!.pid!, pgid);
    expect(dog).toBeDefined();
    process.kill(-dog!, 'SIGSTOP');

    await stopProcess(worker!, 'SIGKILL');
    expect(liveMembers(pgid).length).toBeGreaterThan(0);
    const revived = await FakeMaster.start(downPort);
    try {
      await restartWorker('SIGKILL');
      expect(await revived.waitFinished(result.taskInstanceId)).toMatchObject({
        state: 'SUCCESS',
        exitCode: 0,
        workerAddress: workerAddress(),
      });
      expect(await revived.waitFinished(orphan.taskInstanceId)).toMatchObject({
        state: 'KILL',
        message: 'worker restarted while the task ran',
      });
      await waitFor(`no process left in group ${pgid}`, () => liveMembers(pgid).length === 0);
      await waitFor('outbox emptied', () => readdirSync(join(dataDir, 'outbox')).length === 0);
      expect((await client.readLog(workerAddress(), result.taskInstanceId)).content.toString()).toBe(
        'persisted\n',
      );
      expect(workerOutput).toContain(`killing process group ${pgid} left by an earlier run`);
    } finally {
      if (dog) process.kill(-dog, 'SIGKILL');
      await revived.stop();
    }
  });

  it('on SIGTERM refuses new tasks, lets running ones finish, delivers and unregisters', async () => {
    await waitFor('worker key', () => registry.get(workerKey()));
    const gate = join(scratch, 'gate-drain');
    const spec = task({ command: `while [ ! -f ${gate} ]; do sleep 0.05; done; echo drained` });
    await client.dispatch(workerAddress(), spec);
    const exited = new Promise<number | null>((r) => worker!.once('exit', (code) => r(code)));
    worker!.kill('SIGTERM');
    // A probe that reaches the worker before it handled SIGTERM is still taken (and runs `true`).
    let probesTaken = 0;
    await waitFor('dispatch refused while draining', async () => {
      const res = await client.dispatch(workerAddress(), task());
      if (res.accepted) probesTaken++;
      return res.accepted === false && res.reason === 'draining';
    });
    const heartbeat = await waitFor('serving=false in the heartbeat', async () => {
      const v = await registry.get(workerKey());
      return v && (JSON.parse(v) as { serving: boolean }).serving === false ? v : undefined;
    });
    // The gated task counts, and at most the probes taken before draining besides it.
    const { runningTasks } = JSON.parse(heartbeat) as { runningTasks: number };
    expect(runningTasks).toBeGreaterThanOrEqual(1);
    expect(runningTasks).toBeLessThanOrEqual(1 + probesTaken);
    writeFileSync(gate, '');
    expect(await exited).toBe(0);
    worker = undefined;
    expect(await master.waitFinished(spec.taskInstanceId)).toMatchObject({ state: 'SUCCESS' });
    expect(await registry.get(workerKey())).toBeNull();
  });
});
