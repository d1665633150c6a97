/**
 * The task watchdog with real processes (a `sleep` in its own process group stands in for a
 * task): one watchdog process supervises every group; it leaves a live worker's tasks alone, and
 * kills each supervised group when the liveness file goes stale or unreadable, or when its parent
 * (the worker) dies. Short timings: 1 s session, 200 ms
 * heartbeat, so a 600 ms deadline and a 100 ms poll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  openSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeProcessRunner } from '../src/adapters/process-runner';
import { ShellTaskWatchdog, WATCHDOG_NAME, WATCHDOG_SCRIPT } from '../src/adapters/task-watchdog';
import { parseUptimeCentis } from '../src/domain/liveness';
import { workerConfig } from './support/worker-config';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Live (non-zombie) members of a process group. */
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

/** Whether a process exists and is not a zombie. */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

describe('task watchdog (real /bin/sh)', () => {
  let dir: string;
  let alive: string;
  let watchdog: ShellTaskWatchdog;
  let toucher: NodeJS.Timeout | undefined;
  const tasks: ChildProcess[] = [];
  /** This test process's groups directory (the watchdog's). */
  const groupsDir = () => {
    const name = readdirSync(join(dir, 'watchdog')).find((n) => n.startsWith(`groups-${process.pid}-`));
    return join(dir, 'watchdog', name!);
  };

  // As the worker does: a new file renamed over the old one, so a poll never reads a half-written
  // (empty) file and fires "unreadable".
  const touch = () => {
    writeFileSync(
      `${alive}.tmp`,
      `${String(parseUptimeCentis(readFileSync('/proc/uptime', 'utf8'))).padStart(20)}\n`,
    );
    renameSync(`${alive}.tmp`, alive);
  };
  const keepTouching = () => {
    touch();
    toucher = setInterval(touch, 100);
  };

  /** A stand-in task: `sleep` plus a background `sleep`, in a process group of their own. */
  function startTask(): number {
    const child = spawn('/bin/sh', ['-c', 'sleep 1000 & sleep 1000'], { detached: true, stdio: 'ignore' });
    tasks.push(child);
    return child.pid!;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'porpoise-watchdog-'));
    alive = join(dir, 'worker.alive');
    const config = workerConfig({
      DATA_DIR: dir,
      REGISTRY_SESSION_TIMEOUT_MS: '1000',
      HEARTBEAT_INTERVAL_MS: '200',
    });
    watchdog = new ShellTaskWatchdog(config, new NodeProcessRunner());
    expect(watchdog.init()).toBe(true);
    expect(watchdog.timings).toMatchObject({ deadlineMs: 600, pollMs: 100 });
  });

  afterEach(() => {
    clearInterval(toucher);
    toucher = undefined;
    watchdog.close();
    for (const t of tasks.splice(0)) {
      try {
        process.kill(-t.pid!, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves the task of a live worker alone; a group it no longer supervises is not its business', async () => {
    keepTouching();
    const pgid = startTask();
    const failures: string[] = [];
    const handle = watchdog.supervise(1, pgid, { onFailure: (why) => failures.push(why) });
    await sleep(1_500);
    expect(liveMembers(pgid).length).toBeGreaterThan(0);
    expect(liveMembers(handle.pid!)).toContain(handle.pid);
    handle.stop();
    expect(readdirSync(groupsDir())).toEqual([]);
    // Unsupervised now: a stall no longer reaches it, and the watchdog itself runs on.
    clearInterval(toucher);
    await sleep(1_000);
    expect(liveMembers(pgid).length).toBeGreaterThan(0);
    expect(liveMembers(handle.pid!)).toContain(handle.pid);
    expect(watchdog.takeFiring(1)).toBeNull();
    expect(failures).toEqual([]);
  });

  it('kills the group once the liveness file is older than the deadline, and says why', async () => {
    touch();
    const pgid = startTask();
    const failures: string[] = [];
    watchdog.supervise(2, pgid, { onFailure: (why) => failures.push(why) });
    await until('the group to die', () => liveMembers(pgid).length === 0, 10_000);
    // Not before the deadline: the age the watchdog saw when it fired is past it (the file was
    // fresh when the task started). Its own reading, not a timing of this test.
    const firing = watchdog.takeFiring(2);
    expect(firing).toMatch(/^the worker stalled: its liveness file is \d+ ms old$/);
    expect(Number(/(\d+) ms old/.exec(firing ?? '')?.[1])).toBeGreaterThan(watchdog.timings.deadlineMs);
    expect(watchdog.takeFiring(2)).toBeNull();
    expect(failures).toEqual([]);
  });

  it('one watchdog for every task: a stall kills each supervised group, with a mark for each', async () => {
    keepTouching();
    const first = startTask();
    const second = startTask();
    const a = watchdog.supervise(6, first, { onFailure: () => undefined });
    const b = watchdog.supervise(7, second, { onFailure: () => undefined });
    expect(a.pid).toBeDefined();
    expect(b.pid).toBe(a.pid);
    await sleep(300);
    clearInterval(toucher);
    await until(
      'both groups to die',
      () => liveMembers(first).length === 0 && liveMembers(second).length === 0,
      10_000,
    );
    expect(watchdog.takeFiring(6)).toMatch(/^the worker stalled/);
    expect(watchdog.takeFiring(7)).toMatch(/^the worker stalled/);
    // It runs on: the worker may wake, and its next task is supervised again.
    expect(liveMembers(a.pid!)).toContain(a.pid);
    keepTouching();
    const third = startTask();
    expect(watchdog.supervise(8, third, { onFailure: () => undefined }).pid).toBe(a.pid);
    await sleep(800);
    expect(liveMembers(third).length).toBeGreaterThan(0);
  });

  it('kills the group when the liveness file cannot be read', async () => {
    keepTouching();
    const pgid = startTask();
    watchdog.supervise(3, pgid, { onFailure: () => undefined });
    await sleep(300);
    expect(liveMembers(pgid).length).toBeGreaterThan(0);
    clearInterval(toucher);
    unlinkSync(alive);
    await until('the group to die', () => liveMembers(pgid).length === 0, 10_000);
    expect(watchdog.takeFiring(3)).toBe("the worker's liveness file is unreadable");
  });

  it('kills the groups when its parent (the worker) dies', async () => {
    keepTouching();
    const pgid = startTask();
    const groups = join(dir, 'watchdog', 'groups-stand-in');
    mkdirSync(groups);
    writeFileSync(join(groups, `4.${pgid}`), '');
    // A stand-in worker: a shell whose child is the watchdog, killed with SIGKILL. The watchdog's
    // pipe is held open by this test (not by the stand-in), so only the parent check can fire.
    const parent = spawn(
      '/bin/sh',
      ['-c', 'exec 3<&0; /bin/sh -c "$1" "$2" "$3" "$4" "$5" "$6" "$7" <&3 & wait', 'worker'].concat([
        WATCHDOG_SCRIPT,
        WATCHDOG_NAME,
        alive,
        groups,
        join(dir, 'watchdog'),
        '60',
        '0.1',
      ]),
      { stdio: ['pipe', 'ignore', 'ignore'] },
    );
    try {
      await sleep(500);
      expect(liveMembers(pgid).length).toBeGreaterThan(0);
      parent.kill('SIGKILL');
      await until('the group to die', () => liveMembers(pgid).length === 0, 10_000);
      expect(watchdog.takeFiring(4)).toBe('the worker process died');
      expect(readdirSync(groups)).toEqual([]);
    } finally {
      parent.stdin?.destroy();
    }
  });

  it('kills the groups at once when the worker process dies: the pipe only it held reaches EOF', async () => {
    keepTouching();
    const pgid = startTask();
    const groups = join(dir, 'watchdog', 'groups-piped');
    mkdirSync(groups);
    writeFileSync(join(groups, `10.${pgid}`), '');
    // A stand-in worker in Node, starting the watchdog as ShellTaskWatchdog does (stdin a pipe
    // that only it holds) and printing its pid. The poll is 1000 s: after its first look the
    // parent check sleeps, so only the pipe can fire before this test gives up.
    const standIn = [
      "const c = require('node:child_process').spawn('/bin/sh', ['-c', ...process.argv.slice(1)],",
      "  { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });",
      'c.unref(); c.stdin.unref(); console.log(c.pid); setInterval(() => undefined, 1e6);',
    ].join('\n');
    const parent = spawn(
      process.execPath,
      ['-e', standIn, WATCHDOG_SCRIPT, WATCHDOG_NAME, alive, groups, join(dir, 'watchdog'), '60', '1000'],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let out = '';
    parent.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until('the watchdog pid', () => /^\d+\n/.test(out), 10_000);
    const dog = Number(out.trim());
    try {
      await sleep(500);
      expect(liveMembers(pgid).length).toBeGreaterThan(0);
      expect(liveMembers(dog)).toContain(dog);
      parent.kill('SIGKILL');
      await until('the group to die', () => liveMembers(pgid).length === 0, 10_000);
      await until('the group forgotten', () => readdirSync(groups).length === 0, 10_000);
      expect(watchdog.takeFiring(10)).toBe('the worker process died');
      // The reader ended its watchdog too (its `sleep 1000` may linger; cleaned up below).
      await until('the watchdog to end', () => processAlive(dog) === false, 10_000);
    } finally {
      try {
        process.kill(-dog, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  });

  it("a task inherits nothing of the worker's but its stdio: not the watchdog's pipe (else it would never close)", async () => {
    keepTouching();
    const first = startTask();
    const handle = watchdog.supervise(11, first, { onFailure: () => undefined });
    // The watchdog's reader holds a socket pair's end from the worker (this process).
    const readsSocket = (pid: number) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/0`).startsWith('socket:');
      } catch {
        return false;
      }
    };
    await until('the pipe reader', () => liveMembers(handle.pid!).some(readsSocket), 10_000);
    const out = openSync(join(dir, 'task.out'), 'w');
    try {
      const task = await new NodeProcessRunner().spawn({
        command: 'sleep 1000',
        env: { PATH: '/usr/bin:/bin' },
        outputFd: out,
      });
      tasks.push({ pid: task.pid } as ChildProcess);
      // No socket at all (the worker's end is one). Other fds this test process inherited from
      // whoever started it (not opened close-on-exec) may show up and are not ours to judge.
      const fds = readdirSync(`/proc/${task.pid}/fd`).map((fd) => readlinkSync(`/proc/${task.pid}/fd/${fd}`));
      expect(fds.filter((link) => link.startsWith('socket:'))).toEqual([]);
      expect(readlinkSync(`/proc/${task.pid}/fd/0`)).toBe('/dev/null');
    } finally {
      closeSync(out);
    }
  });

  it('reports a watchdog that someone killed to every task it supervised, so the worker can start another one', async () => {
    keepTouching();
    const first = startTask();
    const second = startTask();
    const failures: [number, string, boolean][] = [];
    const handle = watchdog.supervise(5, first, {
      onFailure: (why, again) => failures.push([5, why, again]),
    });
    watchdog.supervise(9, second, { onFailure: (why, again) => failures.push([9, why, again]) });
    await sleep(200);
    process.kill(handle.pid!, 'SIGKILL');
    await until('the failure reports', () => failures.length === 2, 10_000);
    expect(failures).toEqual([
      [5, 'the watchdog ended unexpectedly (SIGKILL)', true],
      [9, 'the watchdog ended unexpectedly (SIGKILL)', true],
    ]);
    expect(liveMembers(first).length).toBeGreaterThan(0);
    // Supervising again starts a new watchdog, which still knows both groups.
    const again = watchdog.supervise(5, first, { onFailure: () => undefined });
    expect(again.pid).not.toBe(handle.pid);
    clearInterval(toucher);
    await until(
      'both groups to die',
      () => liveMembers(first).length === 0 && liveMembers(second).length === 0,
      10_000,
    );
  });

  it('clears marks and the groups directories left by an earlier run, keeping its own', () => {
    writeFileSync(join(dir, 'watchdog', '9.killed'), 'x\n');
    mkdirSync(join(dir, 'watchdog', 'groups-1-2'));
    writeFileSync(join(dir, 'watchdog', 'groups-1-2', '3.4'), '');
    expect(watchdog.clearMarks()).toBe(1);
    expect(watchdog.takeFiring(9)).toBeNull();
    expect(readdirSync(join(dir, 'watchdog')).sort()).toEqual([groupsDir().split('/').pop()]);
  });
});
