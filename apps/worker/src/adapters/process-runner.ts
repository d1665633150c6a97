import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { Injectable } from '@nestjs/common';
import type { ProcessExit } from '../domain/task-result';
import { SpawnFailedError } from '../worker.errors';

export interface SpawnRequest {
  command: string;
  /** The whole environment of the task (domain/task-env.ts): nothing of the worker's is added. */
  env: Record<string, string>;
  /**
   * For both stdout and stderr: an open file descriptor, or a socket (the task log's drained
   * channel, TaskLogSink.childOutput(); its descriptor is duplicated into the child).
   */
  outputFd: number | Socket;
  /** The task's working directory. */
  cwd?: string;
  /** Run as this user (the worker is root); absent: as the worker's own user. */
  user?: { uid: number; gid: number };
}

export interface StartedProcess {
  /** The shell's pid; it leads its own process group, so this is also the group id. */
  pid: number;
  /** The kernel's start time of the process, to recognise it after a worker restart. */
  startToken: string | null;
  /** Resolves when the shell exits (other members of its group may live on). */
  exited: Promise<ProcessExit>;
}

/**
 * The side effects of running tasks, behind one injectable adapter: starting a shell in its own
 * process group and signalling whole groups. Everything that decides *what* to do lives in the
 * executor service; this class only talks to the operating system.
 */
export abstract class ProcessRunner {
  /**
   * The worker's own environment. A task gets only the few harmless variables of it that
   * buildTaskEnv() picks (PATH, the locale); the watchdog only PATH.
   */
  abstract baseEnvironment(): Record<string, string | undefined>;
  /** Starts `/bin/sh -c command` detached; rejects with SpawnFailedError. */
  abstract spawn(request: SpawnRequest): Promise<StartedProcess>;
  /** Signals every process of the group; false when no process of it is left (ESRCH). */
  abstract signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean;
  /** The start token of a live process, or null when there is no such process. */
  abstract startToken(pid: number): string | null;
}

const noop = () => undefined;

@Injectable()
export class NodeProcessRunner extends ProcessRunner {
  baseEnvironment(): Record<string, string | undefined> {
    // Not configuration (PATH and the locale for tasks and the watchdog), so it is read here rather
    // than through loadConfigFromProcess(); buildTaskEnv() keeps only a short list of it.
    // eslint-disable-next-line no-restricted-properties
    return { ...process.env };
  }

  spawn(request: SpawnRequest): Promise<StartedProcess> {
    return new Promise((resolve, reject) => {
      let child: ChildProcess;
      try {
        // detached: the shell calls setsid(), so it leads a new process group (pgid = its pid) and a
        // kill of -pid reaches everything the task started, and nothing of the worker.
        // uid and gid: libuv drops the worker's supplementary groups (setgroups) before setgid and
        // setuid, so a task keeps nothing of root's.
        child = spawn('/bin/sh', ['-c', request.command], {
          detached: true,
          env: request.env,
          stdio: ['ignore', request.outputFd, request.outputFd],
          ...(request.cwd !== undefined ? { cwd: request.cwd } : {}),
          ...(request.user !== undefined ? { uid: request.user.uid, gid: request.user.gid } : {}),
        });
      } catch (err) {
        reject(new SpawnFailedError((err as Error).message, { cause: err }));
        return;
      }
      const exited = new Promise<ProcessExit>((done) =>
        child.once('exit', (code, signal) => done({ code, signal })),
      );
      const onError = (err: Error) => reject(new SpawnFailedError(err.message, { cause: err }));
      child.once('error', onError);
      child.once('spawn', () => {
        child.off('error', onError);
        // Later 'error' events (none are expected: signals go through process.kill) must not crash us.
        child.on('error', noop);
        const pid = child.pid;
        // Node sets the pid before 'spawn'; without one the group could never be signalled.
        if (pid === undefined) reject(new SpawnFailedError('the shell started without a pid'));
        else resolve({ pid, startToken: this.startToken(pid), exited });
      });
    });
  }

  signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
    // kill(0) and kill(-1) would hit the worker's own group or every process we may signal.
    if (!Number.isSafeInteger(pgid) || pgid <= 1) throw new RangeError(`not a task process group: ${pgid}`);
    try {
      process.kill(-pgid, signal);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
      throw err;
    }
  }

  startToken(pid: number): string | null {
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so
      // split after the last ')'. Field 22 (starttime) is index 19 of what follows.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return fields[19] ?? null;
    } catch {
      return null;
    }
  }
}
