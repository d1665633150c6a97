/**
 * The task watchdog script with real processes (a `sleep` in its own process group stands in for
 * a task): it leaves a live worker's task alone, and kills the group when the liveness file goes
 * stale or unreadable, or when its parent (the worker) dies. Short timings: 1 s session, 200 ms
 * heartbeat, so a 600 ms deadline and a 100 ms poll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
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
  const stops: (() => void)[] = [];

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
    for (const stop of stops.splice(0)) stop();
    for (const t of tasks.splice(0)) {
      try {
        process.kill(-t.pid!, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves the task of a live worker alone and ends when the task is gone', async () => {
    keepTouching();
    const pgid = startTask();
    const failures: string[] = [];
    const handle = watchdog.supervise(1, pgid, { onFailure: (why) => failures.push(why) });
    stops.push(handle.stop);
    await sleep(1_500);
    expect(liveMembers(pgid).length).toBeGreaterThan(0);
    expect(liveMembers(handle.pid!)).toContain(handle.pid);
    process.kill(-pgid, 'SIGKILL');
    await until('the watchdog to end', () => liveMembers(handle.pid!).length === 0, 10_000);
    expect(watchdog.takeFiring(1)).toBeNull();
    expect(failures).toEqual([]);
  });

  it('kills the group once the liveness file is older than the deadline, and says why', async () => {
    touch();
    const pgid = startTask();
    const failures: string[] = [];
    const started = Date.now();
    stops.push(watchdog.supervise(2, pgid, { onFailure: (why) => failures.push(why) }).stop);
    await until('the group to die', () => liveMembers(pgid).length === 0, 3_000);
    // Not before the deadline (the file was fresh when the task started).
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
    expect(watchdog.takeFiring(2)).toMatch(/^the worker stalled: its liveness file is \d+ ms old$/);
    expect(watchdog.takeFiring(2)).toBeNull();
    expect(failures).toEqual([]);
  });

  it('kills the group when the liveness file cannot be read', async () => {
    keepTouching();
    const pgid = startTask();
    stops.push(watchdog.supervise(3, pgid, { onFailure: () => undefined }).stop);
    await sleep(300);
    expect(liveMembers(pgid).length).toBeGreaterThan(0);
    clearInterval(toucher);
    unlinkSync(alive);
    await until('the group to die', () => liveMembers(pgid).length === 0, 10_000);
    expect(watchdog.takeFiring(3)).toBe("the worker's liveness file is unreadable");
  });

  it('kills the group when its parent (the worker) dies', async () => {
    keepTouching();
    const pgid = startTask();
    const mark = join(dir, 'watchdog', '4.killed');
    // A stand-in worker: a shell whose child is the watchdog, killed with SIGKILL.
    const parent = spawn(
      '/bin/sh',
      ['-c', '/bin/sh -c "$1" "$2" "$3" "$4" "$5" "$6" "$7" & wait', 'worker'].concat([
        WATCHDOG_SCRIPT,
        WATCHDOG_NAME,
        String(pgid),
        alive,
        mark,
        '60',
        '0.1',
      ]),
      { stdio: 'ignore' },
    );
    await sleep(500);
    expect(liveMembers(pgid).length).toBeGreaterThan(0);
    parent.kill('SIGKILL');
    await until('the group to die', () => liveMembers(pgid).length === 0, 10_000);
    expect(watchdog.takeFiring(4)).toBe('the worker process died');
  });

  it('reports a watchdog that someone killed, so the worker can start another one', async () => {
    keepTouching();
    const pgid = startTask();
    const failures: [string, boolean][] = [];
    const handle = watchdog.supervise(5, pgid, { onFailure: (why, again) => failures.push([why, again]) });
    stops.push(handle.stop);
    await sleep(200);
    process.kill(handle.pid!, 'SIGKILL');
    await until('the failure report', () => failures.length > 0, 10_000);
    expect(failures).toEqual([['the watchdog ended unexpectedly (SIGKILL)', true]]);
    expect(liveMembers(pgid).length).toBeGreaterThan(0);
  });

  it('clears marks left by an earlier run', () => {
    writeFileSync(join(dir, 'watchdog', '9.killed'), 'x\n');
    expect(watchdog.clearMarks()).toBe(1);
    expect(watchdog.takeFiring(9)).toBeNull();
  });
});
