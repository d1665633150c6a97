/**
 * The executor with task types written here (what a plugin sees and what the worker reports),
 * real log and marker stores in a temporary DATA_DIR, and stand-ins for delivery, admission and
 * the watchdog. SHELL end to end is in worker.int-spec.ts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskFinishedEvent, TaskSpec } from '@porpoise/rpc';
import { ManualClock } from '@porpoise/test-harness';
import type { ProcessRunner } from '../src/adapters/process-runner';
import type { SupersededStore } from '../src/adapters/superseded-store';
import { TaskLogStore } from '../src/adapters/task-log-store';
import type { TaskWatchdog } from '../src/adapters/task-watchdog';
import { RunningMarkerStore } from '../src/adapters/worker-stores';
import type { AdmissionService } from '../src/services/admission.service';
import type { ResultDeliveryService } from '../src/services/result-delivery.service';
import { TaskExecutorService } from '../src/services/task-executor.service';
import { EmptyTaskType } from '../src/task-types/empty.task-type';
import { STARTED_EVENT_DELAY_MS } from '../src/worker.constants';
import type { PreparedTask, TaskRunContext, TaskRunResult } from '../src/task-types/task-type';
import { taskSpec } from './support/run-context';
import { workerConfig } from './support/worker-config';

class FakeDelivery {
  readonly held: TaskFinishedEvent[] = [];
  readonly started: number[] = [];
  hold(_address: string, event: TaskFinishedEvent): Promise<void> {
    this.held.push(event);
    return Promise.resolve();
  }
  holds(id: number): boolean {
    return this.held.some((e) => e.taskInstanceId === id);
  }
  redirect(): undefined {
    return undefined;
  }
  sendStarted(target: () => { event: { taskInstanceId: number } }): Promise<void> {
    this.started.push(target().event.taskInstanceId);
    return Promise.resolve();
  }
}

class FakeAdmission {
  stallListener: (() => void) | undefined;
  /** What the session says once the task's log is open (it may change during those awaits). */
  atLaunch: () => string | null = () => null;
  refusal(): string | null {
    return null;
  }
  sessionRefusal(): string | null {
    return this.atLaunch();
  }
  onStall(listener: () => void): () => void {
    this.stallListener = listener;
    return () => undefined;
  }
}

/** A task type run inside the worker whose end the test decides. */
function controlled(): {
  prepared: (spec: TaskSpec) => PreparedTask;
  ctx: () => TaskRunContext;
  finish: (r: TaskRunResult) => void;
} {
  let context: TaskRunContext | undefined;
  let finish: ((r: TaskRunResult) => void) | undefined;
  return {
    prepared: (spec) => ({
      spec,
      startsProcess: false,
      instant: false,
      run: (ctx) =>
        new Promise<TaskRunResult>((resolve) => {
          context = ctx;
          finish = resolve;
          // Like HTTP and SQL: a stop aborts the work, which then ends on its own.
          ctx.signal.addEventListener('abort', () =>
            resolve({ state: 'FAILURE', exitCode: -1, message: 'aborted', outputs: {} }),
          );
        }),
    }),
    ctx: () => context!,
    finish: (r) => finish!(r),
  };
}

describe('TaskExecutorService with in-process task types', () => {
  let dataDir: string;
  let clock: ManualClock;
  let delivery: FakeDelivery;
  let admission: FakeAdmission;
  let logs: TaskLogStore;
  let markers: RunningMarkerStore;
  let executor: TaskExecutorService;

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'porpoise-executor-'));
    const config = workerConfig({ DATA_DIR: dataDir });
    clock = new ManualClock(1_000);
    delivery = new FakeDelivery();
    admission = new FakeAdmission();
    logs = new TaskLogStore(config);
    await logs.init();
    markers = new RunningMarkerStore(config);
    await markers.init();
    executor = new TaskExecutorService(
      config,
      {} as ProcessRunner,
      logs,
      markers,
      delivery as unknown as ResultDeliveryService,
      admission as unknown as AdmissionService,
      {} as TaskWatchdog,
      { epochOf: () => undefined } as unknown as SupersededStore,
      clock,
    );
  });

  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  const markerFile = (id: number) => join(dataDir, 'running', `${id}.json`);
  const logText = (spec: TaskSpec) =>
    readFileSync(logs.pathOf(spec.workflowInstanceId, spec.taskInstanceId), 'utf8');
  const waitHeld = async (n = 1) => {
    for (let i = 0; i < 500 && delivery.held.length < n; i++) await new Promise((r) => setTimeout(r, 5));
    expect(delivery.held).toHaveLength(n);
    return delivery.held[n - 1]!;
  };

  it('EMPTY: SUCCESS at once, without a TaskStarted (the result carries its start), a process or running marker', async () => {
    const spec = taskSpec({ taskType: 'EMPTY' });
    const empty = new EmptyTaskType();
    const prepared: PreparedTask = {
      spec,
      startsProcess: false,
      instant: true,
      run: () => empty.run(),
    };
    expect(await executor.dispatch(prepared)).toEqual({ accepted: true, reason: '' });
    expect(await waitHeld()).toMatchObject({
      taskInstanceId: spec.taskInstanceId,
      state: 'SUCCESS',
      exitCode: 0,
      message: '',
      outputs: {},
    });
    expect(delivery.started).toEqual([]);
    expect(existsSync(markerFile(spec.taskInstanceId))).toBe(false);
    // Idempotent like every type: its result is held, and once delivered its log still says it ran.
    expect(await executor.dispatch(prepared)).toEqual({ accepted: true, reason: 'already finished' });
    delivery.held.length = 0;
    expect(await executor.dispatch(prepared)).toEqual({ accepted: true, reason: 'already ran' });
  });

  it('sends TaskStarted only for a run that lasts STARTED_EVENT_DELAY_MS; a shorter one reports only its result', async () => {
    const short = controlled();
    const quick = taskSpec({ taskType: 'HTTP' });
    await executor.dispatch(short.prepared(quick));
    clock.advance(STARTED_EVENT_DELAY_MS - 1);
    short.finish({ state: 'SUCCESS', exitCode: 0, message: '', outputs: {} });
    expect(await waitHeld()).toMatchObject({ taskInstanceId: quick.taskInstanceId, startTimeMs: 1_000 });
    clock.advance(STARTED_EVENT_DELAY_MS);
    expect(delivery.started).toEqual([]);

    const long = controlled();
    const slow = taskSpec({ taskType: 'HTTP' });
    await executor.dispatch(long.prepared(slow));
    clock.advance(STARTED_EVENT_DELAY_MS - 1);
    expect(delivery.started).toEqual([]);
    clock.advance(1);
    expect(delivery.started).toEqual([slow.taskInstanceId]);
    long.finish({ state: 'SUCCESS', exitCode: 0, message: '', outputs: {} });
    expect(await waitHeld(2)).toMatchObject({ taskInstanceId: slow.taskInstanceId });
    expect(delivery.started).toEqual([slow.taskInstanceId]);
  });

  it('writes a running marker without a pid while the run lasts, and removes it after', async () => {
    const c = controlled();
    const spec = taskSpec({ taskType: 'HTTP' });
    await executor.dispatch(c.prepared(spec));
    expect(JSON.parse(readFileSync(markerFile(spec.taskInstanceId), 'utf8'))).toMatchObject({
      pid: null,
      taskInstanceId: spec.taskInstanceId,
    });
    c.finish({ state: 'SUCCESS', exitCode: 0, message: '', outputs: { status: '200' } });
    expect(await waitHeld()).toMatchObject({ state: 'SUCCESS', outputs: { status: '200' } });
    for (let i = 0; i < 100 && existsSync(markerFile(spec.taskInstanceId)); i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(existsSync(markerFile(spec.taskInstanceId))).toBe(false);
  });

  it('Kill aborts the run and reports KILL, whatever the run returned', async () => {
    const c = controlled();
    const spec = taskSpec({ taskType: 'HTTP' });
    await executor.dispatch(c.prepared(spec));
    const killed = executor.kill(spec.taskInstanceId);
    expect(c.ctx().signal.aborted).toBe(true);
    expect(await killed).toEqual({ killed: true });
    expect(await waitHeld()).toMatchObject({ state: 'KILL', exitCode: -1, message: 'killed on request' });
    expect(await executor.kill(spec.taskInstanceId)).toEqual({ killed: false });
  });

  it('the task timeout aborts the run and reports FAILURE "timeout"', async () => {
    const c = controlled();
    const spec = taskSpec({ taskType: 'SQL', timeoutMs: 5_000 });
    await executor.dispatch(c.prepared(spec));
    clock.advance(4_999);
    expect(c.ctx().signal.aborted).toBe(false);
    clock.advance(1);
    expect(c.ctx().signal.aborted).toBe(true);
    expect(await waitHeld()).toMatchObject({ state: 'FAILURE', exitCode: -1, message: 'timeout' });
  });

  it('a stall ends the runs inside the worker (KILL, session lost): no watchdog could', async () => {
    const c = controlled();
    const spec = taskSpec({ taskType: 'HTTP' });
    await executor.dispatch(c.prepared(spec));
    admission.stallListener?.();
    expect(await waitHeld()).toMatchObject({ state: 'KILL', message: 'registry session lost' });
  });

  it('a settled run keeps its result: later stops do not apply', async () => {
    const c = controlled();
    const spec = taskSpec({ taskType: 'HTTP', timeoutMs: 10 });
    await executor.dispatch(c.prepared(spec));
    c.ctx().settled();
    clock.advance(100);
    expect(await executor.kill(spec.taskInstanceId)).toEqual({ killed: false });
    expect(c.ctx().signal.aborted).toBe(false);
    c.finish({ state: 'SUCCESS', exitCode: 0, message: '', outputs: {} });
    expect(await waitHeld()).toMatchObject({ state: 'SUCCESS' });
  });

  it('leaves out outputs beyond the bounds, saying so in the task log', async () => {
    const c = controlled();
    const spec = taskSpec({ taskType: 'SQL' });
    await executor.dispatch(c.prepared(spec));
    c.finish({ state: 'SUCCESS', exitCode: 0, message: '', outputs: { id: '1', '?column?': '2' } });
    expect((await waitHeld()).outputs).toEqual({ id: '1' });
    expect(logText(spec)).toContain('[porpoise] output "?column?" left out: the name is not an identifier');
  });

  it('reports a run that throws as FAILURE naming its type', async () => {
    const spec = taskSpec({ taskType: 'HTTP' });
    await executor.dispatch({
      spec,
      startsProcess: false,
      instant: false,
      run: () => {
        throw new Error('boom');
      },
    });
    expect(await waitHeld()).toMatchObject({
      state: 'FAILURE',
      exitCode: -1,
      message: 'HTTP task failed: boom',
    });
  });

  it('reports KILL "worker restarted" for a marker without a pid left by a crash', async () => {
    await markers.write(77, {
      version: 1,
      taskInstanceId: 77,
      workflowInstanceId: 5,
      taskName: 'http',
      attempt: 2,
      masterAddress: 'm:1',
      epoch: 3,
      startTimeMs: 10,
      pid: null,
      startToken: null,
    });
    executor = new TaskExecutorService(
      workerConfig({ DATA_DIR: dataDir }),
      {
        startToken: () => {
          throw new Error('no process to look at');
        },
      } as unknown as ProcessRunner,
      logs,
      markers,
      delivery as unknown as ResultDeliveryService,
      admission as unknown as AdmissionService,
      { takeFiring: () => null, clearMarks: () => 0 } as unknown as TaskWatchdog,
      { epochOf: () => undefined } as unknown as SupersededStore,
      clock,
    );
    expect(await executor.recoverOrphans()).toBe(1);
    expect(delivery.held).toEqual([
      expect.objectContaining({
        taskInstanceId: 77,
        attempt: 2,
        epoch: 3,
        state: 'KILL',
        message: 'worker restarted while the task ran',
        outputs: {},
      }),
    ]);
  });

  it('a session suspended while the task was being launched: nothing runs, nothing is reported, the Dispatch is refused and the same attempt runs when sent again', async () => {
    // A short registry outage that began between the Dispatch's admission and the start: a KILL
    // result would make the master run the task again as a new attempt, for a run that never began.
    const c = controlled();
    const spec = taskSpec({ taskType: 'HTTP' });
    admission.atLaunch = () => 'session suspended';
    expect(await executor.dispatch(c.prepared(spec))).toEqual({
      accepted: false,
      reason: 'session suspended',
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(delivery.held).toEqual([]);
    expect(executor.runningCount).toBe(0);
    expect(existsSync(markerFile(spec.taskInstanceId))).toBe(false);
    // The session is back: the master sends the same attempt again, and it runs.
    admission.atLaunch = () => null;
    expect(await executor.dispatch(c.prepared(spec))).toEqual({ accepted: true, reason: '' });
    expect(c.ctx().signal.aborted).toBe(false);
    c.finish({ state: 'SUCCESS', exitCode: 0, message: '', outputs: {} });
    expect(await waitHeld()).toMatchObject({ taskInstanceId: spec.taskInstanceId, state: 'SUCCESS' });
  });

  it('a session suspended while launching a task someone else already asked about: reported KILL as before (they were told it runs)', async () => {
    const c = controlled();
    const spec = taskSpec({ taskType: 'HTTP' });
    let takeOver: Promise<unknown> | undefined;
    admission.atLaunch = () => {
      // A TakeOver that arrived during the launch's awaits was answered RUNNING.
      takeOver ??= executor.takeOver({
        taskInstanceId: spec.taskInstanceId,
        newMasterAddress: 'm2:1',
        epoch: 7,
      });
      return 'session suspended';
    };
    expect(await executor.dispatch(c.prepared(spec))).toEqual({ accepted: true, reason: '' });
    expect(await takeOver).toMatchObject({ status: 'RUNNING' });
    expect(await waitHeld()).toMatchObject({ state: 'KILL', message: 'registry session lost', epoch: 7 });
  });
});
