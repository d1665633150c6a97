import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock, type Clock } from '@porpoise/common';
import type { TaskSpec } from '@porpoise/rpc';
import { TaskLogStore, type TaskLogFile } from '../../src/adapters/task-log-store';
import type { StopReason } from '../../src/domain/task-result';
import type { TaskProcess, TaskRunContext } from '../../src/task-types/task-type';
import { workerConfig } from './worker-config';

let nextId = 1;

export function taskSpec(over: Partial<TaskSpec> = {}): TaskSpec {
  return {
    taskInstanceId: nextId++,
    workflowInstanceId: 1,
    taskName: 'task',
    command: '',
    attempt: 1,
    timeoutMs: 0,
    params: {},
    masterAddress: '127.0.0.1:5678',
    epoch: 1,
    taskType: 'SHELL',
    payloadJson: '',
    ...over,
  };
}

/**
 * What the executor gives a task type, for testing a type alone: a real task log in a temporary
 * DATA_DIR, an abort controller standing for Kill and timeout, and records of what the run told.
 */
export class TestRun {
  readonly abort = new AbortController();
  readonly processes: TaskProcess[] = [];
  readonly stopRequests: StopReason[] = [];
  readonly stopListeners: ((graceMs: number) => void)[] = [];
  settled = false;
  readonly ctx: TaskRunContext;

  private constructor(
    readonly spec: TaskSpec,
    readonly log: TaskLogFile,
    private readonly dataDir: string,
    clock: Clock,
  ) {
    this.ctx = {
      spec,
      log,
      signal: this.abort.signal,
      clock,
      onStop: (listener) => {
        this.stopListeners.push(listener);
        if (this.abort.signal.aborted) listener(0);
      },
      processStarted: (p) => this.processes.push(p),
      settled: () => (this.settled = true),
      stop: (reason) => {
        this.stopRequests.push(reason);
        this.stop(0);
      },
    };
  }

  static async start(spec: TaskSpec, clock: Clock = systemClock): Promise<TestRun> {
    const dataDir = mkdtempSync(join(tmpdir(), 'porpoise-task-type-'));
    const logs = new TaskLogStore(workerConfig({ DATA_DIR: dataDir }));
    await logs.init();
    const log = await logs.openForAppend(spec.workflowInstanceId, spec.taskInstanceId);
    if (spec.taskType === 'SHELL') await log.openChildOutput(spec.taskInstanceId);
    return new TestRun(spec, log, dataDir, clock);
  }

  /** What the executor does on Kill (graceMs > 0) or timeout (0). */
  stop(graceMs: number): void {
    this.abort.abort({ state: 'KILL', message: 'test stop' });
    for (const l of this.stopListeners) l(graceMs);
  }

  /** The log as written so far (after the queued writes). */
  async text(): Promise<string> {
    await this.log.write('');
    return readFileSync(this.log.path, 'utf8');
  }

  async dispose(): Promise<void> {
    await this.log.close().catch(() => undefined);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
