import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { PORPOISE_CONFIG, type WorkerConfig } from '@porpoise/common';
import { livenessTimings, type LivenessTimings } from '../domain/liveness';
import { aliveFilePath } from '../worker.config';
import { ProcessRunner } from './process-runner';

/**
 * The watchdog of a worker's tasks: one tiny `/bin/sh` loop per worker process, in a process of
 * its own (its own session and process group, so neither a kill of a task's group nor a signal
 * to the worker's group reaches it), supervising the tasks' process groups from outside the
 * worker's event loop. A task's group is supervised while a file named `{taskInstanceId}.{pgid}`
 * exists in the watchdog's groups directory (the worker creates it right after the spawn and
 * removes it once the task's shell exited). Every poll it
 *
 * - fires at once when the worker process ends: its stdin is a pipe (a socket pair) whose other
 *   end only the worker holds (close-on-exec, so no task inherits it), and the kernel closes that
 *   end with the worker's last fd, however it died (SIGKILL, crash, exit). A reader in the
 *   background (a subshell of the watchdog, in its process group) blocks on the pipe and fires on
 *   EOF, so a killed worker's tasks die before its registry key can go and before the masters
 *   re-dispatch them — even when a master fails the worker over long before its session expires
 *   (docs/failover.md, "Provable death"). A reader whose watchdog was killed fires nothing (the
 *   worker lives on and starts another watchdog);
 * - fires when its parent changed (the worker died and the watchdog was re-parented), the
 *   fallback should the pipe not tell; it exits 3 after firing;
 * - fires when the worker's liveness file (DATA_DIR/worker.alive, holding the CLOCK_BOOTTIME time
 *   of its last touch in centiseconds, read from /proc/uptime on both sides) is older than the
 *   deadline, or unreadable: the worker is frozen and its session may expire soon. It goes on
 *   polling (the worker may wake and run new tasks).
 *
 * Firing, for each supervised group: writes the reason to the task's mark file first (the worker
 * reads it when it reaps the task's shell, and reports the run as KILL, never SUCCESS), SIGKILLs
 * the whole group, and forgets the group. Only shell builtins run per poll, plus one `sleep` (exit
 * 4 when even that fails, rather than spin). One process for every task, rather than one per task:
 * a spawn from the worker blocks its event loop for a millisecond or two (fork copies the page
 * tables of a large process), and profiles showed half of a busy worker's time in spawns.
 * Arguments: $1 liveness file, $2 groups directory, $3 marks directory, $4 deadline
 * (centiseconds), $5 poll interval (seconds); stdin: the worker's pipe.
 *
 * A frozen worker (SIGSTOP) keeps its end open, so only the liveness file tells; a draining
 * worker too, so a graceful stop is unaffected (its tasks finish; anything still listed when it
 * exits is killed, as before).
 */
export const WATCHDOG_SCRIPT = `alive=$1 groups=$2 marks=$3 deadline=$4 poll=$5 parent=$PPID
fire() {
  for f in "$groups"/*; do
    [ -e "$f" ] || continue
    name=\${f##*/}
    case $name in *.*) ;; *) continue ;; esac
    id=\${name%%.*} pgid=\${name#*.}
    case $id in ''|*[!0-9]*) continue ;; esac
    case $pgid in ''|*[!0-9]*) continue ;; esac
    printf '%s\\n' "$1" > "$marks/$id.killed"
    kill -s KILL -- "-$pgid" 2>/dev/null
    rm -f -- "$f"
  done
}
# The pipe as fd 3, then stdin from /dev/null for everything else (sleep, rm). An asynchronous
# list's stdin is /dev/null unless redirected, hence <&3 on the reader.
exec 3<&0 0</dev/null
{
  while read -r _; do :; done
  # EOF: the worker's end is closed. Only while our watchdog lives (kill -0): a killed watchdog
  # is reaped by the worker before it drops the pipe, and the worker starts another one.
  kill -0 "$$" 2>/dev/null || exit 0
  kill -s KILL "$$" 2>/dev/null
  fire "the worker process died"
  exit 3
} <&3 &
exec 3<&-
while :; do
  ppid=
  read -r _ _ _ ppid _ < /proc/$$/stat
  if [ "$ppid" != "$parent" ]; then
    fire "the worker process died"
    exit 3
  fi
  read -r up _ < /proc/uptime
  now=$(( \${up%.*} * 100 + 1\${up#*.} - 100 ))
  last=
  read -r last < "$alive"
  case $last in
    ''|*[!0-9]*) fire "the worker's liveness file is unreadable" ;;
    *)
      age=$(( now - last ))
      [ "$age" -le "$deadline" ] || fire "the worker stalled: its liveness file is \${age}0 ms old"
      ;;
  esac
  sleep "$poll" || exit 4
done
`;

/** $0 of the watchdog: `ps` shows `/bin/sh -c … porpoise-watchdog <liveness file> …`. */
export const WATCHDOG_NAME = 'porpoise-watchdog';
/** Exit codes of the script. */
export const WATCHDOG_EXIT = { fired: 3, broken: 4 } as const;

export interface WatchdogHandle {
  /** The watchdog's pid (undefined if it could not be started). */
  readonly pid: number | undefined;
  /** The task's group is no longer supervised (its shell exited). */
  stop(): void;
}

export interface WatchdogEvents {
  /** The watchdog could not be started, or ended on its own: the group is not supervised now. */
  onFailure(why: string, canRestart: boolean): void;
}

/**
 * Supervises task process groups and reads what the watchdog left behind. Behind an abstract
 * class like ProcessRunner, so the executor stays testable without processes.
 */
export abstract class TaskWatchdog {
  abstract readonly timings: LivenessTimings;
  /** Creates DATA_DIR/watchdog; false when this host cannot run watchdogs (no /proc). */
  abstract init(): boolean;
  /** Supervises the task's process group (starting the watchdog process when none runs). */
  abstract supervise(taskInstanceId: number, pgid: number, events: WatchdogEvents): WatchdogHandle;
  /** Why the watchdog fired for the task (and forgets it), or null when it did not. */
  abstract takeFiring(taskInstanceId: number): string | null;
  /** Removes every mark left by an earlier run of the worker; returns how many there were. */
  abstract clearMarks(): number;
  /**
   * Ends the watchdog process (tests, embedding). A worker that stops does not call it: its
   * watchdog sees the worker gone and kills any group still listed, then exits.
   */
  abstract close(): void;
}

const noop = () => undefined;

@Injectable()
export class ShellTaskWatchdog extends TaskWatchdog {
  private readonly logger = new Logger('WorkerWatchdog');
  readonly timings: LivenessTimings;
  private readonly dir: string;
  /** This worker process's groups directory: another process's watchdog never reads it. */
  private readonly groupsDir: string;
  private readonly aliveFile: string;
  private readonly path: string;
  private child: ChildProcess | undefined;
  /** Supervised tasks (taskInstanceId → their events), told when the watchdog ends. */
  private readonly supervised = new Map<number, WatchdogEvents>();
  private closed = false;

  constructor(@Inject(PORPOISE_CONFIG) config: WorkerConfig, runner: ProcessRunner) {
    super();
    this.timings = livenessTimings(config.registry.sessionTimeoutMs, config.registry.heartbeatIntervalMs);
    this.dir = join(resolve(config.dataDir), 'watchdog');
    this.groupsDir = join(this.dir, `groups-${process.pid}-${Math.round(performance.timeOrigin)}`);
    this.aliveFile = aliveFilePath(config);
    // The watchdog needs nothing of the worker's environment but a PATH for `sleep` and `rm`.
    this.path = runner.baseEnvironment().PATH ?? '/usr/local/bin:/usr/bin:/bin';
  }

  init(): boolean {
    mkdirSync(this.groupsDir, { recursive: true, mode: 0o700 });
    try {
      readFileSync('/proc/uptime', 'utf8');
      readFileSync('/proc/self/stat', 'utf8');
      return true;
    } catch {
      return false;
    }
  }

  supervise(taskInstanceId: number, pgid: number, events: WatchdogEvents): WatchdogHandle {
    if (!Number.isSafeInteger(pgid) || pgid <= 1) throw new RangeError(`not a task process group: ${pgid}`);
    const file = join(this.groupsDir, `${taskInstanceId}.${pgid}`);
    try {
      writeFileSync(file, '', { mode: 0o600 });
    } catch (err) {
      events.onFailure(`cannot register the task with the watchdog: ${(err as Error).message}`, false);
      return { pid: undefined, stop: noop };
    }
    this.supervised.set(taskInstanceId, events);
    const forget = () => {
      if (this.supervised.get(taskInstanceId) === events) this.supervised.delete(taskInstanceId);
      try {
        unlinkSync(file);
      } catch {
        // Gone already (the watchdog fired and forgot it).
      }
    };
    let pid: number | undefined;
    try {
      pid = this.running();
    } catch (err) {
      forget();
      events.onFailure(`cannot start the watchdog: ${(err as Error).message}`, false);
      return { pid: undefined, stop: noop };
    }
    return { pid, stop: forget };
  }

  takeFiring(taskInstanceId: number): string | null {
    const file = this.markFile(taskInstanceId);
    let reason: string;
    try {
      reason = readFileSync(file, 'utf8').trim();
    } catch {
      return null;
    }
    try {
      unlinkSync(file);
    } catch (err) {
      this.logger.warn(`cannot remove ${file}: ${(err as Error).message}`);
    }
    return reason || 'the watchdog fired';
  }

  clearMarks(): number {
    let removed = 0;
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name);
      if (name.startsWith('groups-') && path !== this.groupsDir) {
        // An earlier worker process's: its watchdog, if still alive, finds nothing left to kill.
        rmSync(path, { recursive: true, force: true });
        continue;
      }
      if (!name.endsWith('.killed')) continue;
      try {
        unlinkSync(path);
        removed++;
      } catch {
        // Gone already.
      }
    }
    return removed;
  }

  close(): void {
    this.closed = true;
    // The whole group (the script and its pipe reader): it leads one (detached).
    const pid = this.child?.pid;
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    this.child?.stdin?.destroy();
    this.child = undefined;
    rmSync(this.groupsDir, { recursive: true, force: true });
  }

  /** The watchdog's pid, started when none runs; throws when it cannot be spawned. */
  private running(): number | undefined {
    if (this.child !== undefined) return this.child.pid;
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        WATCHDOG_SCRIPT,
        WATCHDOG_NAME,
        this.aliveFile,
        this.groupsDir,
        this.dir,
        String(Math.floor(this.timings.deadlineMs / 10)),
        (this.timings.pollMs / 1000).toFixed(3),
      ],
      // detached: its own session and group, out of reach of signals to the worker's group
      // (a terminal's Ctrl-C, a supervisor killing the group): it must outlive the worker.
      // stdin: a pipe whose write end only this process holds (libuv opens it close-on-exec, so
      // no task spawned later inherits it): its EOF tells the watchdog this process is gone.
      {
        detached: true,
        stdio: ['pipe', 'ignore', 'ignore'],
        env: { PATH: this.path, LC_ALL: 'C' },
      },
    );
    child.unref();
    // Never written to: it must not keep the event loop alive, nor crash us when the watchdog died.
    child.stdin?.on('error', noop);
    // A 'pipe' stdio is a net.Socket (typed Writable).
    (child.stdin as Socket | null)?.unref();
    this.child = child;
    const ended = (why: string, canRestart: boolean) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.closed) return;
      this.logger.warn(`${why}; ${this.supervised.size} task(s) were supervised by it`);
      for (const events of [...this.supervised.values()]) events.onFailure(why, canRestart);
    };
    child.once('error', (err) => ended(`watchdog failed: ${err.message}`, false));
    child.once('exit', (code, signal) => {
      if (code === WATCHDOG_EXIT.broken) ended('the watchdog cannot run `sleep`', false);
      else ended(`the watchdog ended unexpectedly (${signal ?? `exit ${code}`})`, true);
    });
    return child.pid;
  }

  private markFile(taskInstanceId: number): string {
    return join(this.dir, `${taskInstanceId}.killed`);
  }
}
