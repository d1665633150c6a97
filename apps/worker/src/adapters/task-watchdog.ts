import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { PORPOISE_CONFIG, type WorkerConfig } from '@porpoise/common';
import { livenessTimings, type LivenessTimings } from '../domain/liveness';
import { aliveFilePath } from '../worker.config';
import { ProcessRunner } from './process-runner';

/**
 * The watchdog of one task: a tiny `/bin/sh` loop in a process of its own (its own session and
 * process group, so neither a kill of the task's group nor a signal to the worker's group reaches
 * it), supervising the task's process group from outside the worker's event loop. Every poll it
 *
 * - exits 0 once no process of the task's group is left;
 * - fires when its parent changed: the worker died (SIGKILL, crash), the watchdog was re-parented;
 * - fires when the worker's liveness file (DATA_DIR/worker.alive, holding the CLOCK_BOOTTIME time
 *   of its last touch in centiseconds, read from /proc/uptime on both sides) is older than the
 *   deadline, or unreadable: the worker is frozen and its session may expire soon.
 *
 * Firing writes the reason to the mark file first (the worker reads it when it reaps the task's
 * shell, and reports the run as KILL, never SUCCESS), then SIGKILLs the whole group, exit 3.
 * Only shell builtins run per poll, plus one `sleep` (exit 4 when even that fails, rather than
 * spin). Arguments: $1 pgid, $2 liveness file, $3 mark file, $4 deadline (centiseconds), $5 poll
 * interval (seconds).
 */
export const WATCHDOG_SCRIPT = `pgid=$1 alive=$2 mark=$3 deadline=$4 poll=$5 parent=$PPID
fire() {
  printf '%s\\n' "$1" > "$mark"
  kill -s KILL -- "-$pgid"
  exit 3
}
while kill -s 0 -- "-$pgid" 2>/dev/null; do
  ppid=
  read -r _ _ _ ppid _ < /proc/$$/stat
  [ "$ppid" = "$parent" ] || fire "the worker process died"
  read -r up _ < /proc/uptime
  now=$(( \${up%.*} * 100 + 1\${up#*.} - 100 ))
  last=
  read -r last < "$alive"
  case $last in ''|*[!0-9]*) fire "the worker's liveness file is unreadable" ;; esac
  age=$(( now - last ))
  [ "$age" -le "$deadline" ] || fire "the worker stalled: its liveness file is \${age}0 ms old"
  sleep "$poll" || exit 4
done
exit 0
`;

/** $0 of every watchdog: `ps` shows `/bin/sh -c … porpoise-watchdog <pgid> …`. */
export const WATCHDOG_NAME = 'porpoise-watchdog';
/** Exit codes of the script. */
export const WATCHDOG_EXIT = { groupGone: 0, fired: 3, broken: 4 } as const;

export interface WatchdogHandle {
  /** The watchdog's pid (undefined if it could not be started). */
  readonly pid: number | undefined;
  /** Ends the watchdog (SIGKILL); its exit is then expected and not reported. */
  stop(): void;
}

export interface WatchdogEvents {
  /** The watchdog could not be started, or ended on its own without its task's group being gone. */
  onFailure(why: string, canRestart: boolean): void;
}

/**
 * Starts and ends the per-task watchdogs and reads what they left behind. Behind an abstract
 * class like ProcessRunner, so the executor stays testable without processes.
 */
export abstract class TaskWatchdog {
  abstract readonly timings: LivenessTimings;
  /** Creates DATA_DIR/watchdog; false when this host cannot run watchdogs (no /proc). */
  abstract init(): boolean;
  /** Starts the watchdog of the task's process group. */
  abstract supervise(taskInstanceId: number, pgid: number, events: WatchdogEvents): WatchdogHandle;
  /** Why the task's watchdog fired (and forgets it), or null when it did not. */
  abstract takeFiring(taskInstanceId: number): string | null;
  /** Removes every mark left by an earlier run of the worker; returns how many there were. */
  abstract clearMarks(): number;
}

const noop = () => undefined;

@Injectable()
export class ShellTaskWatchdog extends TaskWatchdog {
  private readonly logger = new Logger('WorkerWatchdog');
  readonly timings: LivenessTimings;
  private readonly dir: string;
  private readonly aliveFile: string;
  private readonly path: string;

  constructor(@Inject(PORPOISE_CONFIG) config: WorkerConfig, runner: ProcessRunner) {
    super();
    this.timings = livenessTimings(config.registry.sessionTimeoutMs, config.registry.heartbeatIntervalMs);
    this.dir = join(resolve(config.dataDir), 'watchdog');
    this.aliveFile = aliveFilePath(config);
    // The watchdog needs nothing of the worker's environment but a PATH for `sleep`.
    this.path = runner.baseEnvironment().PATH ?? '/usr/local/bin:/usr/bin:/bin';
  }

  init(): boolean {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
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
    const mark = this.markFile(taskInstanceId);
    let stopped = false;
    let child: ChildProcess;
    try {
      child = spawn(
        '/bin/sh',
        [
          '-c',
          WATCHDOG_SCRIPT,
          WATCHDOG_NAME,
          String(pgid),
          this.aliveFile,
          mark,
          String(Math.floor(this.timings.deadlineMs / 10)),
          (this.timings.pollMs / 1000).toFixed(3),
        ],
        // detached: its own session and group, out of reach of signals to the worker's group
        // (a terminal's Ctrl-C, a supervisor killing the group): it must outlive the worker.
        { detached: true, stdio: 'ignore', env: { PATH: this.path, LC_ALL: 'C' } },
      );
    } catch (err) {
      events.onFailure(`cannot start the watchdog: ${(err as Error).message}`, false);
      return { pid: undefined, stop: noop };
    }
    child.unref();
    child.once('error', (err) => {
      if (!stopped) events.onFailure(`watchdog failed: ${err.message}`, false);
      stopped = true;
    });
    child.once('exit', (code, signal) => {
      if (stopped) return;
      stopped = true;
      if (code === WATCHDOG_EXIT.groupGone || code === WATCHDOG_EXIT.fired) return;
      if (code === WATCHDOG_EXIT.broken) events.onFailure('the watchdog cannot run `sleep`', false);
      else events.onFailure(`the watchdog ended unexpectedly (${signal ?? `exit ${code}`})`, true);
    });
    return {
      pid: child.pid,
      stop: () => {
        if (stopped) return;
        stopped = true;
        // A child Node has not reaped yet: its pid cannot belong to anyone else.
        child.kill('SIGKILL');
      },
    };
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
      if (!name.endsWith('.killed')) continue;
      try {
        unlinkSync(join(this.dir, name));
        removed++;
      } catch {
        // Gone already.
      }
    }
    return removed;
  }

  private markFile(taskInstanceId: number): string {
    return join(this.dir, `${taskInstanceId}.killed`);
  }
}
