import { Injectable, Logger } from '@nestjs/common';
import { MAX_TASK_OUTPUT_VALUE_BYTES, TaskOutputCollector } from '@porpoise/common';
import type { TaskSpec } from '@porpoise/rpc';
import { ProcessRunner, type StartedProcess } from '../adapters/process-runner';
import { TaskSandbox } from '../adapters/task-sandbox';
import { TaskWatchdog, type WatchdogHandle } from '../adapters/task-watchdog';
import { buildTaskEnv } from '../domain/task-env';
import { decideOutcome, type ProcessExit } from '../domain/task-result';
import { LivenessService } from '../services/liveness.service';
import { RESULT_MESSAGES, WATCHDOG_RESTARTS } from '../worker.constants';
import { SpawnFailedError } from '../worker.errors';
import { describe, invalidPayload, PayloadFields } from './payload';
import type { ChildOutput, TaskLogSink, TaskRunContext, TaskRunResult, TaskType } from './task-type';
import { aboutTask } from '../domain/task-log-ids';

/**
 * A line longer than this cannot hold a `${setValue()}` worth reading (a value is at most 64 KiB)
 * and is skipped when outputs are collected.
 */
const MAX_OUTPUT_LINE_BYTES = MAX_TASK_OUTPUT_VALUE_BYTES + 4096;
/**
 * How long the output channel may stay open after the shell exited and its group was killed: only
 * a process that left the group (setsid) still holds it then, and it must not hold the result.
 */
const OUTPUT_END_GRACE_MS = 2000;

export interface ShellPayload {
  /** The workflow's tenant: the OS user to run as instead of TASK_USER (one of TASK_TENANTS). */
  readonly tenant?: string;
}

/**
 * SHELL (DESIGN.md section 5): `/bin/sh -c command` in its own process group, stdout and stderr
 * appended to the task's log, the whole group signalled on every stop (SIGTERM with a grace, or
 * SIGKILL) and killed when the shell exits. The executor records the group in a running marker,
 * so a restarted worker ends a group its predecessor left behind.
 *
 * Each group is also supervised by the worker's watchdog (adapters/task-watchdog.ts): a process of
 * its own that kills the group when the worker's liveness file goes stale (the worker is frozen)
 * or the worker dies, so that the task is dead before the worker's registry session can expire
 * and the masters run it again elsewhere. A run its watchdog killed is reported KILL (session
 * lost), never SUCCESS.
 *
 * Outputs: every `${setValue(name=value)}` in the lines the run printed (DESIGN.md section 9).
 *
 * Who and where (adapters/task-sandbox.ts): as the task user (TASK_USER when the worker is root),
 * in a working directory of its own that is removed when the shell has exited, with an
 * environment built from nothing (domain/task-env.ts): the node's secrets stay with the worker.
 */
@Injectable()
export class ShellTaskType implements TaskType<ShellPayload> {
  readonly type = 'SHELL' as const;
  readonly startsProcess = true;
  private readonly logger = new Logger('WorkerExecutor');

  constructor(
    private readonly runner: ProcessRunner,
    private readonly watchdog: TaskWatchdog,
    private readonly liveness: LivenessService,
    private readonly sandbox: TaskSandbox,
  ) {}

  /**
   * The command is the spec's own field (checked with it); the payload is empty or names the
   * workflow's tenant, which must be one of this worker's TASK_TENANTS.
   */
  parsePayload(spec: TaskSpec): ShellPayload {
    const f = PayloadFields.of(spec, { emptyAllowed: true });
    const tenant = f.string('tenant', { optional: true, nonEmpty: true, maxLength: 32 });
    f.finish();
    if (tenant === undefined) return {};
    if (this.sandbox.identityFor(tenant) === undefined) {
      const allowed = this.sandbox.tenants;
      invalidPayload(
        'tenant',
        allowed.length === 0
          ? `${describe(tenant)} is not allowed: this worker has no TASK_TENANTS`
          : `${describe(tenant)} is not one of this worker's TASK_TENANTS (${allowed.join(', ')})`,
      );
    }
    return { tenant };
  }

  async run(ctx: TaskRunContext, payload: ShellPayload = {}): Promise<TaskRunResult> {
    const { spec } = ctx;
    const id = spec.taskInstanceId;
    let proc: StartedProcess;
    let cwd: string | undefined;
    // stdout and stderr go through the worker, which caps the log (TASK_LOG_MAX_BYTES).
    const output = ctx.log.childOutput();
    try {
      // Nothing awaits before the spawn: the executor checked the session just before run().
      // parsePayload checked the tenant; the fallback is for a run without one.
      const who = this.sandbox.identityFor(payload.tenant) ?? this.sandbox.identity;
      cwd = this.sandbox.prepare(spec, who);
      const env = buildTaskEnv(this.runner.baseEnvironment(), { user: who.name, home: who.home, cwd }, spec);
      proc = await this.runner.spawn({
        command: spec.command,
        env,
        outputFd: output.stream,
        cwd,
        ...(who.switchUser ? { user: { uid: who.uid, gid: who.gid } } : {}),
      });
    } catch (err) {
      if (cwd !== undefined) this.sandbox.remove(cwd);
      const message =
        err instanceof SpawnFailedError ? err.message : `cannot start the task: ${(err as Error).message}`;
      this.logger.error(aboutTask(spec, `task ${id}: ${message}`));
      await output.ended(ctx.clock, 0);
      return { state: 'FAILURE', exitCode: -1, message, outputs: {} };
    } finally {
      // The child has its own copy now; the worker's would keep the channel open forever.
      output.release();
    }
    try {
      return await this.supervised(ctx, proc, output);
    } finally {
      this.sandbox.remove(cwd);
    }
  }

  /** From the spawn to the result: supervision, stops, the exit and the outputs. */
  private async supervised(
    ctx: TaskRunContext,
    proc: StartedProcess,
    output: ChildOutput,
  ): Promise<TaskRunResult> {
    const { spec } = ctx;
    const id = spec.taskInstanceId;
    const pgid = proc.pid;
    let exited = false;
    ctx.processStarted(proc);
    const dog = this.supervise(ctx, pgid, () => exited);
    // Also replays a stop that came while the shell was being started (as SIGKILL).
    ctx.onStop((graceMs) => this.signal(pgid, graceMs > 0 ? 'SIGTERM' : 'SIGKILL'));

    const end = await proc.exited;
    exited = true;
    ctx.settled();
    // The shell is gone; anything it left running in its group belongs to the finished task.
    this.signal(pgid, 'SIGKILL');
    dog.current?.stop();
    // Everything the group printed is in the log before outputs are read from it.
    if (!(await output.ended(ctx.clock, OUTPUT_END_GRACE_MS))) {
      await ctx.log.write(
        '[porpoise] a process that left the task still holds its output; the rest is not logged\n',
      );
    }
    let outcome = decideOutcome(end);
    const fired = this.watchdog.takeFiring(id);
    if (fired) {
      // The watchdog writes its mark before it kills, so a shell that died of a signal while the
      // mark exists died of that kill. A shell that had exited by itself first keeps its result.
      if (end.signal !== null) {
        this.logger.warn(aboutTask(spec, `task ${id}: its watchdog killed process group ${pgid}: ${fired}`));
        outcome = { state: 'KILL', exitCode: -1, message: RESULT_MESSAGES.sessionLost };
      } else {
        this.logger.warn(
          aboutTask(spec, `task ${id}: its watchdog fired (${fired}) after the task had exited by itself`),
        );
      }
    }
    return { ...outcome, outputs: await this.outputs(ctx.log, end) };
  }

  /**
   * The `${setValue(name=value)}` lines of the run's output. Only a shell that exited by itself
   * has outputs worth reading: a killed one's result never reaches a downstream task.
   */
  private async outputs(log: TaskLogSink, end: ProcessExit): Promise<Record<string, string>> {
    if (end.code === null) return {};
    const collector = new TaskOutputCollector();
    for await (const line of log.lines(MAX_OUTPUT_LINE_BYTES)) collector.addLine(line);
    const { outputs, rejected, rejectedCount } = collector.result();
    if (rejectedCount > 0) {
      const notes = rejected.map((r) => `[porpoise] setValue(${r.name}) ignored: ${r.reason}\n`);
      if (rejectedCount > rejected.length) {
        notes.push(`[porpoise] ... and ${rejectedCount - rejected.length} more setValue(s) ignored\n`);
      }
      await log.write(notes.join(''));
    }
    return outputs;
  }

  /**
   * Puts the group under the watchdog. A watchdog that cannot be started, or cannot run, ends the
   * task (KILL, unsupervised): a task a frozen worker could not end may run twice. One that
   * someone killed is started again (a few times per task).
   */
  private supervise(
    ctx: TaskRunContext,
    pgid: number,
    exited: () => boolean,
  ): { current: WatchdogHandle | undefined } {
    const id = ctx.spec.taskInstanceId;
    const dog: { current: WatchdogHandle | undefined } = { current: undefined };
    if (!this.liveness.watchdogs) return dog;
    let restarts = 0;
    const start = () => {
      dog.current = this.watchdog.supervise(id, pgid, {
        onFailure: (why, canRestart) => {
          if (exited() || ctx.signal.aborted) return;
          if (canRestart && restarts < WATCHDOG_RESTARTS) {
            restarts++;
            this.logger.warn(aboutTask(ctx.spec, `task ${id}: ${why}; starting it again`));
            start();
            return;
          }
          this.logger.error(
            aboutTask(ctx.spec, `task ${id}: ${why}; killing the task rather than run it unsupervised`),
          );
          ctx.stop({ state: 'KILL', message: RESULT_MESSAGES.unsupervised });
        },
      });
    };
    start();
    return dog;
  }

  private signal(pgid: number, signal: NodeJS.Signals): void {
    try {
      this.runner.signalGroup(pgid, signal);
    } catch (err) {
      this.logger.error(`cannot send ${signal} to process group ${pgid}: ${(err as Error).message}`);
    }
  }
}
