import { CONFIG_VARIABLES, type ConfigVariable } from '@porpoise/common';
/**
 * The SHELL task type with real processes (NodeProcessRunner) and a stand-in watchdog: outputs
 * from `${setValue()}` lines, exit codes, stops, the watchdog's verdicts, spawn failures.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeProcessRunner, type SpawnRequest, type StartedProcess } from '../../src/adapters/process-runner';
import { LocalTaskSandbox } from '../../src/adapters/task-sandbox';
import { SystemUserDirectory } from '../../src/adapters/user-directory';
import type { TaskWatchdog, WatchdogEvents, WatchdogHandle } from '../../src/adapters/task-watchdog';
import type { LivenessService } from '../../src/services/liveness.service';
import { ShellTaskType } from '../../src/task-types/shell.task-type';
import { SpawnFailedError } from '../../src/worker.errors';
import { itUnless, notRootReason } from '@porpoise/test-harness';
import { taskSpec, TestRun } from '../support/run-context';
import { workerConfig } from '../support/worker-config';

class FakeWatchdog {
  firing: string | null = null;
  readonly supervised: { id: number; pgid: number; events: WatchdogEvents; stopped: boolean }[] = [];
  supervise(id: number, pgid: number, events: WatchdogEvents): WatchdogHandle {
    const entry = { id, pgid, events, stopped: false };
    this.supervised.push(entry);
    return { pid: undefined, stop: () => (entry.stopped = true) };
  }
  takeFiring(): string | null {
    const f = this.firing;
    this.firing = null;
    return f;
  }
}

/** Whether a process is alive (not a zombie). */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** Whether any process of the group is alive (zombies included: signal 0 reaches them). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('SHELL task type', () => {
  let watchdog: FakeWatchdog;
  let runner: NodeProcessRunner;
  const runs: TestRun[] = [];
  // Real users and directories: as root (here) tasks run as nobody, each in its own directory.
  let workDir: string;
  let sandbox: LocalTaskSandbox;

  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'porpoise-shell-tasks-'));
    sandbox = new LocalTaskSandbox(workerConfig({ TASK_WORK_DIR: workDir }), new SystemUserDirectory());
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  beforeEach(() => {
    watchdog = new FakeWatchdog();
    runner = new NodeProcessRunner();
  });

  afterEach(async () => {
    for (const r of runs.splice(0)) {
      // A failed test must not leave its process group running (it would keep jest alive).
      for (const p of r.processes) {
        try {
          process.kill(-p.pid, 'SIGKILL');
        } catch {
          // Gone, as it should be.
        }
      }
      await r.dispose();
    }
  });

  function shell(watchdogs = true): ShellTaskType {
    return new ShellTaskType(
      runner,
      watchdog as unknown as TaskWatchdog,
      { watchdogs } as unknown as LivenessService,
      sandbox,
    );
  }

  async function start(command: string, type = shell()) {
    const spec = taskSpec({ taskType: 'SHELL', command, params: { DAY: '20240101' } });
    const r = await TestRun.start(spec);
    runs.push(r);
    type.parsePayload(spec);
    return { r, result: type.run(r.ctx) };
  }

  it('runs the command in its own group, reports it started and settled, and reads setValue outputs', async () => {
    const { r, result } = await start(
      [
        // The shell must not expand ${setValue(...)} itself: escaped, or in single quotes.
        'echo "\\${setValue(day=$PORPOISE_PARAM_DAY)}"',
        "echo 'text before ${setValue(count= 3 )} and #{setValue(ds_style=yes)} after'",
        "echo '${setValue(day=overridden)}' >&2",
        "echo '${setValue(bad-name=x)}'",
        'echo plain',
      ].join('; '),
    );
    expect(await result).toEqual({
      state: 'SUCCESS',
      exitCode: 0,
      message: '',
      outputs: { day: 'overridden', count: ' 3 ', ds_style: 'yes' },
    });
    expect(r.processes).toHaveLength(1);
    expect(r.settled).toBe(true);
    expect(watchdog.supervised).toEqual([
      expect.objectContaining({ pgid: r.processes[0]?.pid, stopped: true }),
    ]);
    const log = await r.text();
    expect(log).toContain('${setValue(day=20240101)}\n');
    expect(log).toContain('plain\n');
    expect(log).toMatch(/\[porpoise\] setValue\(bad-name\) ignored: the name is not an identifier/);
  });

  it('reports a failing command with its exit code, outputs set before it failed included', async () => {
    const { result } = await start("echo '${setValue(partial=1)}'; exit 3");
    expect(await result).toEqual({ state: 'FAILURE', exitCode: 3, message: '', outputs: { partial: '1' } });
  });

  it('skips an overlong line and still reads the lines after it', async () => {
    const { result } = await start(
      `head -c 300000 /dev/zero | tr '\\0' 'x'; echo; echo '\${setValue(after=ok)}'`,
    );
    expect((await result).outputs).toEqual({ after: 'ok' });
  });

  it('kills the whole group on a stop, and what the shell left when it exits', async () => {
    const { r, result } = await start('sleep 1000 & echo started; wait');
    await until(async () => r.processes.length > 0 && (await r.text()).includes('started'));
    const pgid = r.processes[0]!.pid;
    expect(groupAlive(pgid)).toBe(true);
    r.stop(2000); // SIGTERM to the group
    expect(await result).toEqual({
      state: 'FAILURE',
      exitCode: -1,
      message: 'killed by signal SIGTERM',
      outputs: {},
    });
    await until(() => !groupAlive(pgid));

    const left = await start('sleep 1000 & echo $!');
    expect((await left.result).state).toBe('SUCCESS');
    const orphan = Number((await left.r.text()).trim());
    await until(() => !processAlive(orphan));
  });

  it('kills a run stopped while it was being started at once', async () => {
    const spec = taskSpec({ taskType: 'SHELL', command: 'sleep 1000' });
    const r = await TestRun.start(spec);
    runs.push(r);
    r.stop(2000);
    expect(await shell().run(r.ctx)).toMatchObject({ state: 'FAILURE', message: 'killed by signal SIGKILL' });
  });

  it('reports KILL (session lost) when its watchdog killed the group, never SUCCESS', async () => {
    const { r, result } = await start('sleep 1000');
    await until(() => r.processes.length > 0);
    watchdog.firing = 'the worker stalled: its liveness file is 2500 ms old';
    process.kill(-r.processes[0]!.pid, 'SIGKILL');
    expect(await result).toEqual({
      state: 'KILL',
      exitCode: -1,
      message: 'registry session lost',
      outputs: {},
    });
  });

  it('keeps its own result when the watchdog fired after the shell had exited', async () => {
    watchdog.firing = 'the worker process died';
    const { result } = await start('true');
    expect((await result).state).toBe('SUCCESS');
  });

  it('ends the task when no watchdog can supervise it, and starts a killed one again', async () => {
    const { r, result } = await start('sleep 1000');
    await until(() => watchdog.supervised.length > 0);
    watchdog.supervised[0]!.events.onFailure('the watchdog ended unexpectedly (SIGKILL)', true);
    expect(watchdog.supervised).toHaveLength(2);
    expect(r.stopRequests).toEqual([]);
    watchdog.supervised[1]!.events.onFailure('cannot start the watchdog: EAGAIN', false);
    expect(r.stopRequests).toEqual([{ state: 'KILL', message: 'no watchdog could supervise the task' }]);
    expect((await result).message).toBe('killed by signal SIGKILL');
  });

  it('runs without a watchdog on a host that cannot run them', async () => {
    const { result } = await start('true', shell(false));
    expect((await result).state).toBe('SUCCESS');
    expect(watchdog.supervised).toEqual([]);
  });

  it('reports a spawn failure as FAILURE without starting', async () => {
    const failing = Object.assign(Object.create(runner) as NodeProcessRunner, {
      spawn: (_: SpawnRequest): Promise<StartedProcess> => Promise.reject(new SpawnFailedError('EAGAIN')),
    });
    const type = new ShellTaskType(
      failing,
      watchdog as unknown as TaskWatchdog,
      { watchdogs: true } as LivenessService,
      sandbox,
    );
    const { r, result } = await start('true', type);
    expect(await result).toEqual({
      state: 'FAILURE',
      exitCode: -1,
      message: 'spawn failed: EAGAIN',
      outputs: {},
    });
    expect(r.processes).toEqual([]);
    expect(readFileSync(r.log.path, 'utf8')).toBe('');
  });

  it('runs as the task user in a directory of its own, with no Porpoise variable, and removes it', async () => {
    const { r, result } = await start('pwd; id -u; id -G; ls -ld .; env');
    expect((await result).state).toBe('SUCCESS');
    const [pwd, uid, groups, listing, ...envLines] = (await r.text()).trim().split('\n');
    const root = join(workDir, '127.0.0.1_1234');
    expect(pwd).toMatch(new RegExp(`^${root}/${r.ctx.spec.taskInstanceId}-1-[0-9a-f]{12}$`));
    const asRoot = process.getuid?.() === 0;
    // As root, the task user is nobody, without root's groups; else the worker's own user.
    expect(Number(uid)).toBe(asRoot ? 65534 : process.getuid?.());
    if (asRoot) expect(groups).toBe('65534');
    expect(listing).toMatch(asRoot ? /^drwx------ \d+ nobody / : /^drwx------ /);
    const env = Object.fromEntries(
      envLines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    // The worker's environment (DESIGN.md section 5) without any variable Porpoise reads.
    expect(Object.keys(env).filter((k) => CONFIG_VARIABLES.includes(k as ConfigVariable))).toEqual([]);
    expect(env).toMatchObject({ HOME: pwd, PWD: pwd, USER: asRoot ? 'nobody' : expect.any(String) });
    // Removed once the shell exited; nothing else left in the worker's directory.
    expect(existsSync(pwd!)).toBe(false);
    expect(readdirSync(root)).toEqual([]);
  });

  it('refuses a tenant on a worker without TASK_TENANTS', () => {
    const spec = taskSpec({ taskType: 'SHELL', command: 'id -u; pwd', payloadJson: '{"tenant":"daemon"}' });
    expect(() => shell().parsePayload(spec)).toThrow(
      /tenant.*"daemon" is not allowed: this worker has no TASK_TENANTS/,
    );
  });

  // Tenants need a root worker (decideTenants refuses otherwise).
  itUnless(notRootReason('tenants need a root worker'))(
    "runs a workflow's tenant's tasks as that user, and refuses a tenant not in TASK_TENANTS",
    async () => {
      const spec = taskSpec({ taskType: 'SHELL', command: 'id -u; pwd', payloadJson: '{"tenant":"daemon"}' });
      const withTenants = new LocalTaskSandbox(
        workerConfig({ TASK_WORK_DIR: workDir, TASK_TENANTS: 'daemon' }),
        new SystemUserDirectory(),
      );
      const type = new ShellTaskType(
        runner,
        watchdog as unknown as TaskWatchdog,
        { watchdogs: true } as unknown as LivenessService,
        withTenants,
      );
      expect(() => type.parsePayload({ ...spec, payloadJson: '{"tenant":"bin"}' })).toThrow(
        /"bin" is not one of this worker's TASK_TENANTS \(daemon\)/,
      );
      const r = await TestRun.start(spec);
      runs.push(r);
      expect((await type.run(r.ctx, type.parsePayload(spec))).state).toBe('SUCCESS');
      const [uid, pwd] = (await r.text()).trim().split('\n');
      expect(uid).toBe('1');
      expect(existsSync(pwd!)).toBe(false);
    },
  );
});
