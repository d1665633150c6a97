import { ManualClock } from '@porpoise/test-harness/manual-clock';
import { nth } from '@porpoise/test-harness/defined';
/**
 * The runner's decisions with in-memory stand-ins for its database and peers: fencing on a
 * suspended session and on lost ownership, answers to stale or repeated events, retries, and
 * waiting for a worker. The integration suite runs the same code on Postgres and gRPC.
 */
import {
  buildWorkflowGraph,
  type DependentTaskDefinition,
  type SqlTaskDefinition,
  type SubWorkflowTaskDefinition,
  type TaskDefinition,
  type TaskState,
  type WorkflowState,
} from '@porpoise/common';
import {
  type DependencyOutcome,
  type DependencyQuery,
  type DependencyRepository,
  type InstanceFence,
  type InstanceStateRepository,
  type SubWorkflowRepository,
  type TaskInstanceRepository,
  type TaskRow,
} from '@porpoise/dao';
import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  RpcCallError,
  TASK_RESULT_MESSAGES,
  type DispatchResponse,
  type TakeOverResponse,
  type TaskFinishedEvent,
  type TaskSpec,
  type WorkerAddressee,
} from '@porpoise/rpc';
import { dispatchNeverSent } from '../../src/dispatch/worker-calls';
import { WorkflowRunner, type Adoption } from '../../src/engine/workflow-runner';
import { DEFAULT_MASTER_OPTIONS } from '../../src/master.constants';
import type { WorkerGateway } from '../../src/dispatch/worker-gateway';
import { task, typedTask } from '../support/tasks';

const ME = 'm:1';

/** Task rows and the instance fence, in memory, with the same guards as the SQL. */
class FakeStore {
  rows: TaskRow[] = [];
  owned = true;
  instanceState: WorkflowState = 'RUNNING_EXECUTION';
  /** retry_due_at of DELAY_EXECUTION rows, on the (manual) clock standing in for the database's. */
  readonly dueAt = new Map<number, number>();
  /** The message each row got last (markFinished / markState). */
  readonly messages = new Map<number, string>();
  /** Throws from the next call of a method (after applying it when `landed`): an unexpected error. */
  failNext: { method: keyof TaskInstanceRepository; landed: boolean } | undefined;
  private nextId = 100;

  constructor(private readonly clock: ManualClock) {}

  private fenced<T>(fence: InstanceFence, fn: () => T): T | { owned: false; ids: []; rows: [] } {
    return this.owned && fence.host === ME ? fn() : { owned: false, ids: [], rows: [] };
  }

  private update(ids: number[], from: readonly TaskState[], change: Partial<TaskRow>, host?: string) {
    const changed: number[] = [];
    for (const r of this.rows) {
      if (ids.includes(r.id) && from.includes(r.state) && (host === undefined || r.host === host)) {
        Object.assign(r, change);
        changed.push(r.id);
      }
    }
    return { owned: true, ids: changed };
  }

  private insert(
    name: string,
    attempt: number,
    retriesUsed: number,
    faultReruns: number,
    state: TaskState,
  ): TaskRow {
    const row: TaskRow = {
      id: this.nextId++,
      workflowInstanceId: 7,
      name,
      state,
      host: null,
      attempt,
      retriesUsed,
      faultReruns,
      retryDueInMs: null,
      outputs: {},
      runningForMs: null,
    };
    this.rows.push(row);
    return { ...row };
  }

  /** A row as the database returns it (the retry delay left, on its clock). */
  private read(r: TaskRow): TaskRow {
    const due = this.dueAt.get(r.id);
    const started = this.startedAt.get(r.id);
    return {
      ...r,
      retryDueInMs:
        r.state === 'DELAY_EXECUTION' && due !== undefined ? Math.max(0, due - this.clock.now()) : null,
      runningForMs:
        r.state === 'RUNNING_EXECUTION' && started !== undefined ? this.clock.now() - started : null,
    };
  }

  /** start_time of rows a markState moved to RUNNING_EXECUTION (master-side tasks), on the clock. */
  readonly startedAt = new Map<number, number>();
  /** DEPENDENT checks asked, and what the next ones answer (by workflow code; default waiting). */
  readonly dependencyChecks: DependencyQuery[] = [];
  readonly dependencyOutcome = new Map<string, DependencyOutcome>();
  dependencies: Pick<DependencyRepository, 'check'> = {
    check: async (q) => {
      this.dependencyChecks.push(q);
      return (
        this.dependencyOutcome.get(q.workflowCode) ?? { outcome: 'waiting', runs: 0, message: 'none yet' }
      );
    },
  };

  tasks: Partial<TaskInstanceRepository> = {
    createAttempts: async (fence, items) =>
      this.fenced(fence, () => ({
        owned: true,
        rows: items.map((i) =>
          this.insert(
            i.name,
            i.attempt,
            i.retriesUsed ?? 0,
            i.faultReruns ?? 0,
            i.skipped ? 'SKIPPED' : 'SUBMITTED_SUCCESS',
          ),
        ),
      })),
    markDispatch: async (fence, id, worker) =>
      this.maybeFail('markDispatch', () =>
        this.fenced(fence, () =>
          this.update([id], ['SUBMITTED_SUCCESS', 'DISPATCH'], { state: 'DISPATCH', host: worker }),
        ),
      ),
    markUndispatched: async (fence, id, worker) =>
      this.fenced(fence, () =>
        this.update([id], ['DISPATCH'], { state: 'SUBMITTED_SUCCESS', host: null }, worker),
      ),
    markStarted: async (fence, id, worker) =>
      this.fenced(fence, () => this.update([id], ['DISPATCH'], { state: 'RUNNING_EXECUTION' }, worker)),
    markFinished: async (fence, id, worker, result) =>
      this.maybeFail('markFinished', () =>
        this.fenced(fence, () => {
          const w = this.update(
            [id],
            ['DISPATCH', 'RUNNING_EXECUTION'],
            { state: result.state, outputs: { ...result.outputs } },
            worker,
          );
          if (w.ids.length > 0 && result.state === 'DELAY_EXECUTION') {
            this.dueAt.set(id, this.clock.now() + (result.retryDelayMs ?? 0));
          }
          for (const changed of w.ids) this.messages.set(changed, result.message);
          return w;
        }),
      ),
    markState: async (fence, ids, from, state, message) =>
      this.fenced(fence, () => {
        const w = this.update(ids, from, { state });
        for (const changed of w.ids) {
          this.messages.set(changed, message);
          if (state === 'RUNNING_EXECUTION' && !this.startedAt.has(changed)) {
            this.startedAt.set(changed, this.clock.now());
          }
        }
        return w;
      }),
    retry: async (fence, oldId, name, attempt) =>
      this.fenced(fence, () => {
        const old = this.rows.find((r) => r.id === oldId);
        const { ids } = this.update([oldId], ['DELAY_EXECUTION'], { state: 'FAILURE' });
        if (ids.length === 0 || old === undefined) return { owned: true, rows: [] };
        return {
          owned: true,
          rows: [this.insert(name, attempt, old.retriesUsed + 1, old.faultReruns, 'SUBMITTED_SUCCESS')],
        };
      }),
    latestAttempts: async () => {
      const latest = new Map<string, TaskRow>();
      for (const r of this.rows) if ((latest.get(r.name)?.attempt ?? 0) < r.attempt) latest.set(r.name, r);
      return [...latest.values()].map((r) => this.read(r));
    },
  };

  instances: Partial<InstanceStateRepository> = {
    finish: async (_fence, state) => {
      if (!this.owned) return false;
      this.instanceState = state;
      return true;
    },
    readOwnedState: async () => (this.owned ? this.instanceState : undefined),
  };

  private maybeFail<T>(method: keyof TaskInstanceRepository, fn: () => T): T {
    const fail = this.failNext?.method === method ? this.failNext : undefined;
    if (fail === undefined) return fn();
    this.failNext = undefined;
    if (fail.landed) fn();
    throw new Error(`connection terminated during ${method}`);
  }

  /** Child instances by parent task attempt (the unique key), and the halts asked. */
  readonly childByTask = new Map<number, { id: number; state: WorkflowState; message: string | null }>();
  readonly halts: string[] = [];
  startCalls = 0;
  private nextChild = 500;

  children: Pick<SubWorkflowRepository, 'startChild' | 'resumeChild' | 'childStates' | 'haltChildren'> = {
    resumeChild: async (fence, parentTaskInstanceId) => {
      if (!this.owned || fence.host !== ME) return { owned: false, childInstanceId: undefined };
      const row = this.rows.find((r) => r.id === parentTaskInstanceId);
      if (row?.state !== 'PAUSE') return { owned: true, childInstanceId: undefined };
      row.state = 'RUNNING_EXECUTION';
      const child = this.childByTask.get(parentTaskInstanceId);
      if (child?.state !== 'PAUSE' || this.instanceState !== 'RUNNING_EXECUTION') {
        return { owned: true, childInstanceId: undefined };
      }
      child.state = 'SUBMITTED_SUCCESS';
      return { owned: true, childInstanceId: child.id };
    },
    startChild: async (fence, input) => {
      this.startCalls++;
      if (!this.owned || fence.host !== ME) {
        return { owned: false, childInstanceId: undefined, created: false };
      }
      const existing = this.childByTask.get(input.parentTaskInstanceId);
      if (existing) return { owned: true, childInstanceId: existing.id, created: false };
      const id = this.nextChild++;
      this.childByTask.set(input.parentTaskInstanceId, { id, state: 'SUBMITTED_SUCCESS', message: null });
      return { owned: true, childInstanceId: id, created: true };
    },
    childStates: async () =>
      [...this.childByTask].map(([parentTaskInstanceId, c]) => ({
        parentTaskInstanceId,
        childInstanceId: c.id,
        state: c.state,
        message: c.message,
      })),
    haltChildren: async (_fence, action) => {
      this.halts.push(action);
      return [];
    },
  };

  row(name: string, attempt = 1): TaskRow | undefined {
    return this.rows.find((r) => r.name === name && r.attempt === attempt);
  }

  attempts(name: string): TaskRow[] {
    return this.rows.filter((r) => r.name === name);
  }
}

interface Harness {
  runner: WorkflowRunner;
  store: FakeStore;
  clock: ManualClock;
  sent: TaskSpec[];
  session: { ok: boolean };
  workers: string[];
  /** Workers the directory no longer lists at send time (they left after being picked). */
  leftBeforeSend: Set<string>;
  /** What the runner told the directory about each Dispatch: answered or not. */
  reachability: Array<[string, boolean]>;
  /** Each live worker's registration as the directory sees it (1 when not set). */
  registrations: Map<string, number>;
  closed: string[];
  answer: (spec: TaskSpec, worker: string) => DispatchResponse;
  /** Every Dispatch / TakeOver / Kill call, in order. */
  calls: Array<{
    what: 'dispatch' | 'takeOver' | 'kill';
    worker: string;
    id: number;
    epoch?: number;
    to?: WorkerAddressee;
  }>;
  takeOver: (worker: string, id: number) => TakeOverResponse;
  /** Data sources the opener knows (opened URLs). */
  datasources: Map<string, { type: string; url: string }>;
  /** The stage timings the runner reported (RunnerMetrics), in order: [stage, seconds]. */
  stages: Array<[string, number]>;
  /** Task groups: attempts holding a slot (all when undefined), and the calls made, in order. */
  slots: { given: Set<number> | undefined; calls: string[] };
  /**
   * A failover: the current runner is dropped and a new one (epoch + 1) adopts the instance
   * from the stored rows, as the master that takes the recovery command does; it is started.
   */
  failover: (commandType?: Adoption['commandType'], state?: Adoption['state']) => Promise<WorkflowRunner>;
}

const WORKER_START = 1_000;

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

function harness(
  tasks: TaskDefinition[] = [task('a'), task('b')],
  edges = [{ from: 'a', to: 'b' }],
  over: Partial<Adoption> = {},
): Harness {
  const clock = new ManualClock();
  const store = new FakeStore(clock);
  const h = {
    store,
    clock,
    sent: [] as TaskSpec[],
    session: { ok: true },
    workers: ['w:1'],
    leftBeforeSend: new Set<string>(),
    reachability: [],
    registrations: new Map<string, number>(),
    closed: [] as string[],
    datasources: new Map(),
    stages: [],
    slots: { given: undefined, calls: [] },
    answer: (): DispatchResponse => ({ accepted: true, reason: '' }),
    calls: [],
    takeOver: (): TakeOverResponse => ({ status: 'UNKNOWN', result: null, startTimeMs: 0 }),
  } as Omit<Harness, 'runner' | 'failover'> as Harness;
  const gateway: Partial<WorkerGateway> = {
    dispatch: async (w, spec, _deadline, to) => {
      h.sent.push(spec);
      h.calls.push({ what: 'dispatch', worker: w, id: spec.taskInstanceId, to });
      return h.answer(spec, w);
    },
    kill: async (w, id) => {
      h.calls.push({ what: 'kill', worker: w, id });
      return { killed: true };
    },
    takeOver: async (w, id, master, epoch) => {
      expect(master).toBe(ME);
      h.calls.push({ what: 'takeOver', worker: w, id, epoch });
      return h.takeOver(w, id);
    },
  };
  const dag = buildWorkflowGraph(tasks, edges);
  const adoption: Adoption = {
    instanceId: 7,
    epoch: 2,
    commandType: 'START_PROCESS',
    state: 'RUNNING_EXECUTION',
    params: { k: 'v' },
    dag,
    latest: [],
    ...over,
  };
  const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };
  const runnerFor = (a: Adoption) =>
    new WorkflowRunner(a, {
      me: ME,
      children: store.children,
      dependencies: store.dependencies,
      openDatasources: async (names) => new Map([...h.datasources].filter(([n]) => names.includes(n))),
      taskGroups: {
        enqueue: async (_fence, group, ids) => {
          h.slots.calls.push(`enqueue ${group} ${ids.join(',')}`);
          return { owned: true, groupExists: true };
        },
        grantPass: async (group) => {
          h.slots.calls.push(`grantPass ${group}`);
          return [];
        },
        granted: async (_instanceId, ids) => ids.filter((id) => h.slots.given?.has(id) ?? true),
      },
      tasks: store.tasks as TaskInstanceRepository,
      instances: store.instances as InstanceStateRepository,
      workers: {
        pick: (_g, exclude) => h.workers.find((w) => !exclude.has(w)),
        isLive: (a) => h.workers.includes(a),
        addressee: (a) =>
          h.workers.includes(a) && !h.leftBeforeSend.has(a)
            ? { startTimeMs: WORKER_START, registration: h.registrations.get(a) ?? 1 }
            : undefined,
        noteAssigned: () => undefined,
        noteReachability: (a, answered) => h.reachability.push([a, answered]),
      },
      gateway: gateway as WorkerGateway,
      clock,
      session: { canStartWork: () => h.session.ok },
      options: { ...DEFAULT_MASTER_OPTIONS, parkedRetryMs: 1000 },
      logger: silent,
      onClosed: (_r, reason) => h.closed.push(reason),
      metrics: {
        readyToDispatch: (seconds) => h.stages.push(['ready', seconds]),
        dispatchToStart: (seconds) => h.stages.push(['start', seconds]),
        finishToPersist: (seconds) => h.stages.push(['persist', seconds]),
      },
    });
  h.runner = runnerFor(adoption);
  h.failover = async (commandType = 'RECOVER_TOLERANCE_FAULT_PROCESS', state = adoption.state) => {
    h.runner.drop('failover');
    const latest = await store.tasks.latestAttempts!([7]);
    h.runner = runnerFor({ ...adoption, epoch: h.runner.epoch + 1, commandType, state, latest });
    await h.runner.start();
    await settle();
    return h.runner;
  };
  return h;
}

const finishedEvent = (
  spec: TaskSpec,
  state: TaskFinishedEvent['state'],
  over: Partial<TaskFinishedEvent> = {},
) => ({
  taskInstanceId: spec.taskInstanceId,
  workflowInstanceId: spec.workflowInstanceId,
  attempt: spec.attempt,
  state,
  exitCode: state === 'SUCCESS' ? 0 : 1,
  startTimeMs: 1,
  endTimeMs: 2,
  workerAddress: 'w:1',
  epoch: spec.epoch,
  message: '',
  outputs: {},
  ...over,
});

describe('WorkflowRunner', () => {
  it('a task of a task group waits for its slot: queue row and grant pass, then the grant (NOTIFY) sends it', async () => {
    const h = harness([task('a', { taskGroup: 'etl' })], []);
    h.slots.given = new Set();
    await h.runner.start();
    await settle();
    const id = h.store.row('a')?.id ?? -1;
    expect(h.slots.calls).toEqual([`enqueue etl ${id}`, 'grantPass etl']);
    expect(h.sent).toHaveLength(0);
    expect(h.runner.snapshot().tasks).toMatchObject([
      { name: 'a', status: 'queued', state: 'SUBMITTED_SUCCESS' },
    ]);
    expect(h.runner.queuedGroups()).toEqual(new Set(['etl']));

    // Another master's grant pass gave it a slot; the grant's NOTIFY reaches this runner's control().
    h.slots.given.add(id);
    await h.runner.control();
    await settle();
    expect(h.sent.map((s) => s.taskName)).toEqual(['a']);
    expect(h.runner.queuedGroups()).toEqual(new Set());
  });

  it('the tasks of a fan-out ask for their group in one request (one queue statement, one grant pass)', async () => {
    const h = harness(
      [task('a', { taskGroup: 'etl' }), task('b', { taskGroup: 'etl' }), task('c', { taskGroup: 'other' })],
      [],
    );
    h.slots.given = new Set();
    await h.runner.start();
    await settle();
    const [a, b, c] = ['a', 'b', 'c'].map((n) => h.store.row(n)?.id ?? -1);
    expect(h.slots.calls).toEqual([
      `enqueue etl ${a},${b}`,
      'grantPass etl',
      `enqueue other ${c}`,
      'grantPass other',
    ]);
  });

  it('a lost NOTIFY: the group timer asks again (idempotent) and the slot is found', async () => {
    const h = harness([task('a', { taskGroup: 'etl' })], []);
    h.slots.given = new Set();
    await h.runner.start();
    await settle();
    const id = h.store.row('a')?.id ?? -1;
    h.slots.given.add(id);
    h.clock.advance(1000);
    await settle();
    expect(h.slots.calls).toEqual([
      `enqueue etl ${id}`,
      'grantPass etl',
      `enqueue etl ${id}`,
      'grantPass etl',
    ]);
    expect(h.sent.map((s) => s.taskName)).toEqual(['a']);
  });

  it('dispatches with the instance epoch, its params and this master as the address', async () => {
    const h = harness();
    await h.runner.start();
    await settle();
    expect(h.sent).toHaveLength(1);
    expect(nth(h.sent, 0)).toMatchObject({
      taskName: 'a',
      attempt: 1,
      epoch: 2,
      masterAddress: ME,
      params: { k: 'v' },
    });
    expect(h.store.row('a')?.state).toBe('DISPATCH');
  });

  it('starts nothing while the registry session is suspended, and carries on when it is back', async () => {
    const h = harness();
    h.session.ok = false;
    await h.runner.start();
    await settle();
    expect(h.sent).toHaveLength(0);
    h.session.ok = true;
    h.runner.resume();
    await settle();
    expect(h.sent.map((s) => s.taskName)).toEqual(['a']);
  });

  it('holds a due retry back while the session is suspended and makes it when the session is back', async () => {
    const h = harness([task('a', { retries: 1, retryIntervalMs: 500 })], []);
    await h.runner.start();
    await settle();
    await h.runner.taskFinished(finishedEvent(nth(h.sent, 0), 'FAILURE'));
    expect(h.store.row('a')?.state).toBe('DELAY_EXECUTION');
    h.session.ok = false;
    h.clock.advance(500);
    await settle();
    expect(h.store.row('a', 2)).toBeUndefined();
    expect(h.sent).toHaveLength(1);
    h.session.ok = true;
    h.runner.resume();
    await settle();
    expect(h.store.row('a', 2)).toMatchObject({ state: 'DISPATCH' });
    expect(h.sent).toHaveLength(2);
  });

  it('stops at once when a write finds the instance owned by someone else', async () => {
    const h = harness();
    await h.runner.start();
    await settle();
    h.store.owned = false;
    const ack = await h.runner.taskFinished(finishedEvent(nth(h.sent, 0), 'SUCCESS'));
    expect(ack.status).toBe('NOT_OWNER');
    expect(h.runner.isClosed).toBe(true);
    expect(h.closed[0]).toMatch(/lost ownership of workflow instance 7/);
    // Nothing more is dispatched for it.
    await settle();
    expect(h.sent).toHaveLength(1);
    expect((await h.runner.taskFinished(finishedEvent(nth(h.sent, 0), 'SUCCESS'))).status).toBe('NOT_OWNER');
  });

  it('answers a repeated TaskFinished ACCEPTED, a superseded attempt OBSOLETE and a newer epoch NOT_OWNER', async () => {
    const h = harness([task('a', { retries: 1, retryIntervalMs: 500 })], []);
    await h.runner.start();
    await settle();
    const first = nth(h.sent, 0);
    expect((await h.runner.taskFinished(finishedEvent(first, 'FAILURE'))).status).toBe('ACCEPTED');
    expect(h.store.row('a')?.state).toBe('DELAY_EXECUTION');
    expect((await h.runner.taskFinished(finishedEvent(first, 'FAILURE'))).status).toBe('ACCEPTED');
    h.clock.advance(500);
    await settle();
    expect(h.store.row('a', 1)?.state).toBe('FAILURE');
    expect(h.store.row('a', 2)?.state).toBe('DISPATCH');
    const late = await h.runner.taskFinished(finishedEvent(first, 'SUCCESS'));
    expect(late).toMatchObject({ status: 'OBSOLETE' });
    const newer = await h.runner.taskFinished(finishedEvent(nth(h.sent, 1), 'SUCCESS', { epoch: 3 }));
    expect(newer.status).toBe('NOT_OWNER');
    expect(
      (await h.runner.taskFinished(finishedEvent(nth(h.sent, 1), 'SUCCESS', { workerAddress: 'w:9' })))
        .status,
    ).toBe('OBSOLETE');
    expect((await h.runner.taskFinished(finishedEvent(nth(h.sent, 1), 'SUCCESS'))).status).toBe('ACCEPTED');
    await settle();
    expect(h.store.instanceState).toBe('SUCCESS');
    // After the end, events are dropped (OBSOLETE), not kept for another owner.
    expect((await h.runner.taskFinished(finishedEvent(nth(h.sent, 1), 'SUCCESS'))).status).toBe('OBSOLETE');
  });

  it('addresses each Dispatch to the worker registration the directory lists at send time', async () => {
    const h = harness([task('a'), task('b')], [{ from: 'a', to: 'b' }]);
    h.registrations.set('w:1', 3);
    await h.runner.start();
    await settle();
    expect(h.calls).toEqual([
      {
        what: 'dispatch',
        worker: 'w:1',
        id: nth(h.sent, 0).taskInstanceId,
        to: { startTimeMs: WORKER_START, registration: 3 },
      },
    ]);
    // Lost and registered again before the next Dispatch: that one names the new registration.
    h.registrations.set('w:1', 4);
    await h.runner.taskFinished(finishedEvent(nth(h.sent, 0), 'SUCCESS'));
    await settle();
    expect(h.calls[1]).toMatchObject({ what: 'dispatch', worker: 'w:1', to: { registration: 4 } });
  });

  it('never sends a Dispatch to a worker that left the registry after it was picked: the next one gets it', async () => {
    const h = harness([task('a')], []);
    h.workers = ['w:1', 'w:2'];
    h.leftBeforeSend.add('w:1');
    await h.runner.start();
    await settle();
    expect(h.calls.map((c) => c.worker)).toEqual(['w:2']);
    expect(h.store.row('a')).toMatchObject({ state: 'DISPATCH', host: 'w:2', attempt: 1 });
  });

  it('tries every live worker, then waits for one instead of looping', async () => {
    const h = harness([task('a')], []);
    h.workers = ['w:1', 'w:2'];
    h.answer = () => ({ accepted: false, reason: 'over capacity' });
    await h.runner.start();
    await settle();
    expect(h.sent).toHaveLength(2);
    expect(h.store.row('a')).toMatchObject({ state: 'SUBMITTED_SUCCESS', host: null });
    await settle();
    expect(h.sent).toHaveLength(2);
    h.answer = () => ({ accepted: true, reason: '' });
    h.runner.workersAvailable('default');
    await settle();
    expect(h.sent).toHaveLength(3);
    expect(h.store.row('a')?.state).toBe('DISPATCH');
  });

  it('times each stage of a task on the clock: ready → dispatch (waiting for a worker too), dispatch → accepted (the run began), finish → persist', async () => {
    const h = harness(
      [task('a'), task('b'), task('c')],
      [
        { from: 'a', to: 'b' },
        { from: 'a', to: 'c' },
      ],
    );
    h.workers = [];
    // The worker answers once the run has begun: a after 40 ms, b and c after 10 ms each.
    h.answer = (spec) => {
      h.clock.advance(spec.taskName === 'a' ? 40 : 10);
      return { accepted: true, reason: '' };
    };
    await h.runner.start();
    await settle();
    // a is ready but no worker is live: its wait counts until a worker takes it.
    h.clock.advance(1500);
    h.workers = ['w:1'];
    h.runner.workersAvailable('default');
    await settle();
    const a = nth(h.sent, 0);
    // TaskStarted times nothing (a short run sends none).
    await h.runner.taskStarted({ ...finishedEvent(a, 'SUCCESS'), startTimeMs: 1 });
    h.clock.advance(100);
    // The worker says it ended 25 ms ago (its clock); b and c are created and sent at once.
    await h.runner.taskFinished(finishedEvent(a, 'SUCCESS', { endTimeMs: h.clock.now() - 25 }));
    await settle();
    const b = nth(h.sent, 1);
    await h.runner.taskFinished(finishedEvent(b, 'SUCCESS', { endTimeMs: h.clock.now() }));
    await settle();
    // b is sent and answered (the clock moves 10 ms in the answer) before c is sent.
    expect(h.stages).toEqual([
      ['ready', 1.5],
      ['start', 0.04],
      ['persist', 0.025],
      ['ready', 0],
      ['start', 0.01],
      ['ready', 0.01],
      ['start', 0.01],
      ['persist', 0],
    ]);
  });

  it('times ready → dispatch once per attempt, however many workers refuse it; a retry is a new attempt', async () => {
    const h = harness([task('a', { retries: 1, retryIntervalMs: 500 })], []);
    h.workers = ['w:1', 'w:2'];
    let refusals = 1;
    h.answer = () =>
      refusals-- > 0 ? { accepted: false, reason: 'over capacity' } : { accepted: true, reason: '' };
    await h.runner.start();
    await settle();
    expect(h.sent).toHaveLength(2);
    await h.runner.taskFinished(
      finishedEvent(nth(h.sent, 1), 'FAILURE', { endTimeMs: h.clock.now(), workerAddress: 'w:2' }),
    );
    h.clock.advance(500);
    await settle();
    expect(h.store.row('a', 2)?.state).toBe('DISPATCH');
    expect(h.stages.filter(([stage]) => stage === 'ready')).toEqual([
      ['ready', 0],
      ['ready', 0],
    ]);
  });

  it('re-runs the task of a lost worker as a new attempt without using a retry', async () => {
    const h = harness([task('a', { retries: 0 })], []);
    await h.runner.start();
    await settle();
    await h.runner.taskStarted({ ...finishedEvent(nth(h.sent, 0), 'SUCCESS'), startTimeMs: 1 });
    h.workers = ['w:2'];
    await h.runner.workerLost('w:1');
    await settle();
    expect(h.store.row('a', 1)?.state).toBe('NEED_FAULT_TOLERANCE');
    expect(h.store.row('a', 2)).toMatchObject({ state: 'DISPATCH', host: 'w:2' });
  });

  describe('a worker process restarted on the same address (incarnations)', () => {
    const OLD = 1_000;
    const NEW = 2_000;
    const accepted = (workerStartTimeMs: number) => () => ({ accepted: true, reason: '', workerStartTimeMs });

    /** A one-task run dispatched to w:1 (w:2 is live too), its Dispatch answered by `answer`. */
    async function dispatchedToW1(
      answer: Harness['answer'],
      takeOver?: Harness['takeOver'],
    ): Promise<Harness> {
      const h = harness([task('a', { retries: 0 })], []);
      h.answer = answer;
      if (takeOver) h.takeOver = takeOver;
      h.workers = ['w:1', 'w:2'];
      await h.runner.start();
      await settle();
      return h;
    }

    /** A Dispatch answer the test gives later. */
    function later(): { answer: Harness['answer']; give: (r: DispatchResponse) => void } {
      let give!: (r: DispatchResponse) => void;
      const pending = new Promise<DispatchResponse>((r) => (give = r));
      return { answer: (() => pending) as never, give };
    }

    const stillOnW1 = (h: Harness, state: TaskState) => {
      expect(h.store.row('a', 1)).toMatchObject({ state, host: 'w:1' });
      expect(h.store.row('a', 2)).toBeUndefined();
    };
    const reRunOnW2 = (h: Harness) => {
      expect(h.store.row('a', 1)?.state).toBe('NEED_FAULT_TOLERANCE');
      expect(h.store.row('a', 2)).toMatchObject({ state: 'DISPATCH', host: 'w:2' });
    };

    it('the loss of the old process leaves a task the new process took where it runs', async () => {
      const h = await dispatchedToW1(accepted(NEW));
      await h.runner.workerLost('w:1', OLD);
      await settle();
      stillOnW1(h, 'DISPATCH');
      // The loss of the process that took it does re-run it.
      h.workers = ['w:2'];
      await h.runner.workerLost('w:1', NEW);
      await settle();
      reRunOnW2(h);
    });

    it('the loss of an earlier registration of the same process leaves a task a later one took', async () => {
      const byRegistration = (workerRegistration: number) => () => ({
        accepted: true,
        reason: '',
        workerStartTimeMs: NEW,
        workerRegistration,
      });
      const h = await dispatchedToW1(byRegistration(2));
      // A late report of registration 1's loss (the worker was lost and registered again, and
      // took this task on registration 2): nothing to re-run.
      await h.runner.workerLost('w:1', NEW, 1);
      await settle();
      stillOnW1(h, 'DISPATCH');
      h.workers = ['w:2'];
      await h.runner.workerLost('w:1', NEW, 2);
      await settle();
      reRunOnW2(h);

      // In flight when registration 1 was reported gone: the answer (registration 2) keeps it.
      const { answer, give } = later();
      const h2 = await dispatchedToW1(answer);
      await h2.runner.workerLost('w:1', NEW, 1);
      give(byRegistration(2)());
      await settle();
      stillOnW1(h2, 'DISPATCH');
    });

    it('a loss that names no process, or a worker that names none, re-runs as before', async () => {
      for (const [answerTime, lostTime] of [
        [NEW, undefined],
        [0, OLD],
      ] as const) {
        const h = await dispatchedToW1(accepted(answerTime));
        h.workers = ['w:2'];
        await h.runner.workerLost('w:1', lostTime);
        await settle();
        reRunOnW2(h);
      }
    });

    it('a loss reported while the Dispatch is in flight is decided by which process answers', async () => {
      for (const [taker, rerun] of [
        [NEW, false],
        [OLD, true],
      ] as const) {
        const dispatch = later();
        const h = await dispatchedToW1(dispatch.answer);
        expect(h.store.row('a', 1)).toMatchObject({ state: 'DISPATCH', host: 'w:1' });
        h.workers = ['w:2'];
        await h.runner.workerLost('w:1', OLD);
        await settle();
        expect(h.store.row('a', 2)).toBeUndefined();
        dispatch.give(accepted(taker)());
        await settle();
        if (rerun) reRunOnW2(h);
        else stillOnW1(h, 'DISPATCH');
      }
    });

    it('knows the process that took it when its TaskStarted came before the Dispatch answer', async () => {
      const dispatch = later();
      const h = await dispatchedToW1(dispatch.answer);
      await h.runner.taskStarted({ ...finishedEvent(nth(h.sent, 0), 'SUCCESS'), startTimeMs: 1 });
      expect(h.store.row('a', 1)).toMatchObject({ state: 'RUNNING_EXECUTION', host: 'w:1' });
      dispatch.give(accepted(NEW)());
      await settle();
      await h.runner.workerLost('w:1', OLD);
      await settle();
      stillOnW1(h, 'RUNNING_EXECUTION');
    });

    it('tells the worker directory which Dispatches were answered (a refusal is an answer) and which were not', async () => {
      const h = await dispatchedToW1(() => {
        throw new RpcCallError('Dispatch', 'w:1', GrpcStatus.DEADLINE_EXCEEDED, 'deadline');
      });
      expect(h.reachability[0]).toEqual(['w:1', false]);
      expect(h.reachability.every(([, answered]) => !answered)).toBe(true);
      const ok = await dispatchedToW1(() => ({ accepted: true, reason: '' }));
      expect(ok.reachability).toEqual([['w:1', true]]);
      const refused = await dispatchedToW1(() => ({ accepted: false, reason: 'over capacity' }));
      expect(refused.reachability[0]).toEqual(['w:1', true]);
    });

    it('a task re-attached by TakeOver belongs to the process that answered', async () => {
      const h = await dispatchedToW1(
        () => {
          throw new RpcCallError('Dispatch', 'w:1', GrpcStatus.DEADLINE_EXCEEDED, 'deadline');
        },
        () => ({ status: 'RUNNING', result: null, startTimeMs: 5, workerStartTimeMs: NEW }),
      );
      expect(h.store.row('a', 1)).toMatchObject({ state: 'RUNNING_EXECUTION', host: 'w:1' });
      await h.runner.workerLost('w:1', OLD);
      await settle();
      stillOnW1(h, 'RUNNING_EXECUTION');
    });
  });

  it.each([
    ['sessionLost', TASK_RESULT_MESSAGES.sessionLost],
    ['stopping', TASK_RESULT_MESSAGES.stopping],
    ['restarted', TASK_RESULT_MESSAGES.restarted],
    ['obsolete', TASK_RESULT_MESSAGES.obsolete],
  ])(
    'a KILL its worker did on its own (%s) is fault tolerance: a new attempt elsewhere, no retry used, the instance not failed',
    async (_name, message) => {
      const h = harness([task('a', { retries: 0 }), task('b')], [{ from: 'a', to: 'b' }]);
      h.workers = ['w:1', 'w:2'];
      await h.runner.start();
      await settle();
      expect(h.store.row('a', 1)).toMatchObject({ state: 'DISPATCH', host: 'w:1' });
      const ack = await h.runner.taskFinished(
        finishedEvent(nth(h.sent, 0), 'KILL', { exitCode: -1, message }),
      );
      expect(ack.status).toBe('ACCEPTED');
      await settle();
      expect(h.store.row('a', 1)?.state).toBe('NEED_FAULT_TOLERANCE');
      // Preferably not on the worker that ended it.
      expect(h.store.row('a', 2)).toMatchObject({ state: 'DISPATCH', host: 'w:2' });
      expect(h.runner.snapshot().failed).toBe(false);
      const second = h.sent.find((x) => x.attempt === 2)!;
      await h.runner.taskFinished(finishedEvent(second, 'SUCCESS', { workerAddress: 'w:2' }));
      await settle();
      const third = h.sent.find((x) => x.taskName === 'b')!;
      await h.runner.taskFinished(
        finishedEvent(third, 'SUCCESS', { workerAddress: h.store.row('b')!.host! }),
      );
      await settle();
      expect(h.store.instanceState).toBe('SUCCESS');
    },
  );

  it('a worker-ended attempt runs again on the same worker when it is the only one', async () => {
    const h = harness([task('a')], []);
    await h.runner.start();
    await settle();
    await h.runner.taskFinished(
      finishedEvent(nth(h.sent, 0), 'KILL', { exitCode: -1, message: TASK_RESULT_MESSAGES.restarted }),
    );
    await settle();
    expect(h.store.row('a', 2)).toMatchObject({ state: 'DISPATCH', host: 'w:1' });
  });

  it('a KILL it asked for (killed on request) while running still fails the instance', async () => {
    const h = harness([task('a', { retries: 2 })], []);
    await h.runner.start();
    await settle();
    await h.runner.taskFinished(
      finishedEvent(nth(h.sent, 0), 'KILL', { exitCode: -1, message: TASK_RESULT_MESSAGES.killed }),
    );
    await settle();
    expect(h.store.row('a', 1)?.state).toBe('KILL');
    expect(h.store.row('a', 2)).toBeUndefined();
    expect(h.store.instanceState).toBe('FAILURE');
  });

  it('a worker-ended attempt while pausing ends PAUSE (resume runs it again), not FAILURE', async () => {
    const h = harness([task('a')], []);
    await h.runner.start();
    await settle();
    h.store.instanceState = 'READY_PAUSE';
    await h.runner.control();
    await h.runner.taskFinished(
      finishedEvent(nth(h.sent, 0), 'KILL', { exitCode: -1, message: TASK_RESULT_MESSAGES.stopping }),
    );
    await settle();
    expect(h.store.row('a', 1)?.state).toBe('PAUSE');
    expect(h.store.instanceState).toBe('PAUSE');
  });

  it('settled() waits for a Dispatch call still in flight (a hand-over must not race it)', async () => {
    const h = harness([task('a')], []);
    let answer!: (r: DispatchResponse) => void;
    h.answer = () => undefined as never;
    const gatewayDispatch = new Promise<DispatchResponse>((r) => (answer = r));
    (h.runner as unknown as { deps: { gateway: { dispatch: unknown } } }).deps.gateway.dispatch = () =>
      gatewayDispatch;
    await h.runner.start();
    await settle();
    h.runner.drop('handing over');
    let settled = false;
    void h.runner.settled(10_000).then(() => (settled = true));
    await settle();
    expect(settled).toBe(false);
    answer({ accepted: true, reason: '' });
    await settle();
    expect(settled).toBe(true);
  });

  it('settled() gives up waiting after its bound', async () => {
    const h = harness([task('a')], []);
    (h.runner as unknown as { deps: { gateway: { dispatch: unknown } } }).deps.gateway.dispatch = () =>
      new Promise(() => undefined);
    await h.runner.start();
    await settle();
    h.runner.drop('handing over');
    let settled = false;
    void h.runner.settled(1000).then(() => (settled = true));
    await settle();
    expect(settled).toBe(false);
    h.clock.advance(1000);
    await settle();
    expect(settled).toBe(true);
  });

  describe('a Dispatch that failed', () => {
    const rpcError = (code: number, detail: string) => new RpcCallError('Dispatch', 'w:1', code, detail);
    const dropped = () => rpcError(GrpcStatus.UNAVAILABLE, 'Connection dropped');
    const neverSent = () =>
      rpcError(
        GrpcStatus.UNAVAILABLE,
        'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ',
      );
    /** w:1 fails every Dispatch with err(); w:2 accepts. */
    const failingFirst = (h: Harness, err: () => Error) => {
      h.workers = ['w:1', 'w:2'];
      h.answer = (_spec, w) => {
        if (w === 'w:1') throw err();
        return { accepted: true, reason: '' };
      };
    };
    const dispatchesOf = (h: Harness, id: number) =>
      h.calls.filter((c) => c.what === 'dispatch' && c.id === id).map((c) => c.worker);
    const takeOversOf = (h: Harness, id: number) =>
      h.calls.filter((c) => c.what === 'takeOver' && c.id === id).map((c) => c.worker);

    it('tells an error that provably happened before sending from an ambiguous one', () => {
      expect(dispatchNeverSent(neverSent())).toBe(true);
      // Found by test/e2e/fuzz-registry.int-spec.ts: a worker entry whose host does not resolve.
      expect(
        dispatchNeverSent(
          rpcError(GrpcStatus.UNAVAILABLE, 'Name resolution failed for target dns:nohost.invalid:5'),
        ),
      ).toBe(true);
      expect(
        dispatchNeverSent(rpcError(GrpcStatus.INTERNAL, 'Name resolution failed for target dns:x:5')),
      ).toBe(false);
      expect(dispatchNeverSent(dropped())).toBe(false);
      expect(dispatchNeverSent(rpcError(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded'))).toBe(false);
      expect(dispatchNeverSent(rpcError(GrpcStatus.INTERNAL, 'No connection established'))).toBe(false);
      expect(dispatchNeverSent(rpcError(GrpcStatus.UNAVAILABLE, 'worker: No connection established'))).toBe(
        false,
      );
      expect(dispatchNeverSent(new Error('UNAVAILABLE: No connection established'))).toBe(false);
    });

    it.each([
      ['UNAVAILABLE: Connection dropped', () => rpcError(GrpcStatus.UNAVAILABLE, 'Connection dropped')],
      ['DEADLINE_EXCEEDED', () => rpcError(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded')],
      ['CANCELLED', () => rpcError(GrpcStatus.CANCELLED, 'Call cancelled')],
      ['INTERNAL', () => rpcError(GrpcStatus.INTERNAL, 'boom')],
      ['a non-gRPC error', () => new Error('socket hang up')],
    ])(
      'ambiguous (%s): asks the same worker (TakeOver), never sends the task instance to another one',
      async (_name, err) => {
        const h = harness([task('a', { retries: 0 })], []);
        failingFirst(h, err);
        h.takeOver = () => ({ status: 'RUNNING', result: null, startTimeMs: 5 });
        await h.runner.start();
        await settle();
        const id = h.store.row('a')!.id;
        expect(dispatchesOf(h, id)).toEqual(['w:1']);
        expect(h.calls.find((c) => c.what === 'takeOver')).toEqual({
          what: 'takeOver',
          worker: 'w:1',
          id,
          epoch: 2,
        });
        // No fire-and-forget Kill either: TakeOver settles it.
        expect(h.calls.filter((c) => c.what === 'kill')).toHaveLength(0);
        h.clock.advance(60_000);
        await settle();
        expect(dispatchesOf(h, id)).toEqual(['w:1']);
        expect(h.store.rows).toHaveLength(1);
      },
    );

    it('ambiguous, TakeOver RUNNING: re-attached on that worker, its events accepted', async () => {
      const h = harness();
      failingFirst(h, dropped);
      h.takeOver = () => ({ status: 'RUNNING', result: null, startTimeMs: 5 });
      await h.runner.start();
      await settle();
      const a = h.store.row('a')!;
      expect(a).toMatchObject({ state: 'RUNNING_EXECUTION', host: 'w:1' });
      expect(takeOversOf(h, a.id)).toEqual(['w:1']);
      h.answer = () => ({ accepted: true, reason: '' });
      const ack = await h.runner.taskFinished(finishedEvent(nth(h.sent, 0), 'SUCCESS'));
      expect(ack.status).toBe('ACCEPTED');
      await settle();
      expect(h.store.row('a')?.state).toBe('SUCCESS');
      expect(h.store.row('a', 2)).toBeUndefined();
      expect(h.store.row('b')).toMatchObject({ state: 'DISPATCH', host: 'w:1' });
      expect(dispatchesOf(h, a.id)).toEqual(['w:1']);
    });

    it('ambiguous, TakeOver FINISHED: the held result is applied', async () => {
      const h = harness();
      failingFirst(h, dropped);
      h.takeOver = (_w, id) => ({
        status: 'FINISHED',
        result: finishedEvent(
          h.sent.find((s) => s.taskInstanceId === id)!,
          'SUCCESS',
        ),
        startTimeMs: 1,
      });
      const failing = h.answer;
      h.answer = (spec, w) => (spec.taskName === 'a' ? failing(spec, w) : { accepted: true, reason: '' });
      await h.runner.start();
      await settle();
      const a = h.store.row('a')!;
      expect(a.state).toBe('SUCCESS');
      expect(dispatchesOf(h, a.id)).toEqual(['w:1']);
      expect(h.store.row('a', 2)).toBeUndefined();
      expect(h.store.row('b')).toMatchObject({ state: 'DISPATCH', host: 'w:1' });
    });

    it('ambiguous, TakeOver UNKNOWN: NEED_FAULT_TOLERANCE and a new attempt with a new id, no retry used', async () => {
      const h = harness([task('a', { retries: 0 })], []);
      failingFirst(h, dropped);
      await h.runner.start();
      await settle();
      const first = h.store.row('a', 1)!;
      expect(first.state).toBe('NEED_FAULT_TOLERANCE');
      expect(takeOversOf(h, first.id)).toEqual(['w:1']);
      expect(dispatchesOf(h, first.id)).toEqual(['w:1']);
      const second = h.store.row('a', 2)!;
      expect(second.id).not.toBe(first.id);
      // Preferably not on the worker whose connection failed.
      expect(second).toMatchObject({ state: 'DISPATCH', host: 'w:2' });
      expect(h.runner.snapshot().failed).toBe(false);
      await h.runner.taskFinished(
        finishedEvent(
          h.sent.find((s) => s.taskInstanceId === second.id)!,
          'SUCCESS',
          { workerAddress: 'w:2' },
        ),
      );
      await settle();
      expect(h.store.instanceState).toBe('SUCCESS');
    });

    it('ambiguous, TakeOver UNKNOWN while the session is suspended: the new attempt waits for the session', async () => {
      const h = harness([task('a')], []);
      failingFirst(h, dropped);
      h.takeOver = () => {
        h.session.ok = false; // suspended while the TakeOver was on its way
        return { status: 'UNKNOWN', result: null, startTimeMs: 0 };
      };
      await h.runner.start();
      await settle();
      expect(h.store.row('a', 1)?.state).toBe('NEED_FAULT_TOLERANCE');
      expect(h.store.row('a', 2)).toBeUndefined();
      h.session.ok = true;
      h.runner.resume();
      await settle();
      expect(h.store.row('a', 2)).toMatchObject({ state: 'DISPATCH' });
    });

    it('ambiguous: TakeOver is retried with a backoff (no tight loop) until the worker answers', async () => {
      const h = harness([task('a')], []);
      failingFirst(h, dropped);
      let failures = 3;
      h.takeOver = () => {
        if (failures-- > 0) {
          throw new RpcCallError('TakeOver', 'w:1', GrpcStatus.UNAVAILABLE, 'No connection');
        }
        return { status: 'RUNNING', result: null, startTimeMs: 5 };
      };
      await h.runner.start();
      await settle();
      const id = h.store.row('a')!.id;
      expect(takeOversOf(h, id)).toHaveLength(1);
      await settle();
      expect(takeOversOf(h, id)).toHaveLength(1);
      h.clock.advance(250);
      await settle();
      expect(takeOversOf(h, id)).toHaveLength(2);
      h.clock.advance(250);
      await settle();
      expect(takeOversOf(h, id)).toHaveLength(2);
      h.clock.advance(250);
      await settle();
      expect(takeOversOf(h, id)).toHaveLength(3);
      h.clock.advance(1000);
      await settle();
      expect(takeOversOf(h, id)).toHaveLength(4);
      expect(h.store.row('a')).toMatchObject({ state: 'RUNNING_EXECUTION', host: 'w:1' });
      h.clock.advance(60_000);
      await settle();
      expect(takeOversOf(h, id)).toHaveLength(4);
      expect(dispatchesOf(h, id)).toEqual(['w:1']);
    });

    it('ambiguous, worker lost while unresolved: a new attempt (new id) elsewhere, TakeOver stops', async () => {
      const h = harness([task('a', { retries: 0 })], []);
      failingFirst(h, dropped);
      h.takeOver = () => {
        throw new RpcCallError('TakeOver', 'w:1', GrpcStatus.UNAVAILABLE, 'No connection established');
      };
      await h.runner.start();
      await settle();
      const first = h.store.row('a', 1)!;
      h.clock.advance(250);
      await settle();
      expect(first.state).toBe('DISPATCH');
      expect(h.store.row('a', 2)).toBeUndefined();
      h.workers = ['w:2'];
      await h.runner.workerLost('w:1');
      await settle();
      expect(h.store.row('a', 1)?.state).toBe('NEED_FAULT_TOLERANCE');
      const second = h.store.row('a', 2)!;
      expect(second).toMatchObject({ state: 'DISPATCH', host: 'w:2' });
      expect(dispatchesOf(h, first.id)).toEqual(['w:1']);
      const asked = takeOversOf(h, first.id).length;
      h.clock.advance(60_000);
      await settle();
      expect(takeOversOf(h, first.id)).toHaveLength(asked);
      expect(h.runner.snapshot().failed).toBe(false);
    });

    it('ambiguous, and the worker is no longer live when it would be asked: the worker-loss path re-runs it', async () => {
      const h = harness([task('a')], []);
      failingFirst(h, dropped);
      h.answer = (_spec, w) => {
        if (w === 'w:1') {
          h.workers = ['w:2']; // its key went away; the runner has not been told yet
          throw dropped();
        }
        return { accepted: true, reason: '' };
      };
      await h.runner.start();
      await settle();
      const first = h.store.row('a', 1)!;
      expect(first.state).toBe('NEED_FAULT_TOLERANCE');
      expect(takeOversOf(h, first.id)).toHaveLength(0);
      expect(dispatchesOf(h, first.id)).toEqual(['w:1']);
      expect(h.store.row('a', 2)).toMatchObject({ state: 'DISPATCH', host: 'w:2' });
      // The late registry event changes nothing more.
      await h.runner.workerLost('w:1');
      await settle();
      expect(h.store.rows).toHaveLength(2);
    });

    it('never sent (no connection established): the next worker, same task instance id', async () => {
      const h = harness([task('a')], []);
      failingFirst(h, neverSent);
      await h.runner.start();
      await settle();
      const row = h.store.row('a')!;
      expect(dispatchesOf(h, row.id)).toEqual(['w:1', 'w:2']);
      expect(row).toMatchObject({ state: 'DISPATCH', host: 'w:2' });
      expect(h.calls.filter((c) => c.what === 'takeOver')).toHaveLength(0);
      expect(h.store.rows).toHaveLength(1);
    });

    it('refused (accepted=false): the next worker, same task instance id', async () => {
      const h = harness([task('a')], []);
      h.workers = ['w:1', 'w:2'];
      h.answer = (_spec, w) =>
        w === 'w:1' ? { accepted: false, reason: 'superseded' } : { accepted: true, reason: '' };
      await h.runner.start();
      await settle();
      const row = h.store.row('a')!;
      expect(dispatchesOf(h, row.id)).toEqual(['w:1', 'w:2']);
      expect(row).toMatchObject({ state: 'DISPATCH', host: 'w:2' });
      expect(h.calls.filter((c) => c.what === 'takeOver')).toHaveLength(0);
    });

    it('ambiguous while stopping: the row ends KILL and TakeOver stops', async () => {
      const h = harness([task('a')], []);
      failingFirst(h, dropped);
      h.takeOver = () => {
        throw new RpcCallError('TakeOver', 'w:1', GrpcStatus.UNAVAILABLE, 'No connection established');
      };
      await h.runner.start();
      await settle();
      const id = h.store.row('a')!.id;
      h.store.instanceState = 'READY_STOP';
      await h.runner.control();
      await settle();
      expect(h.store.row('a')?.state).toBe('KILL');
      expect(h.calls.filter((c) => c.what === 'kill').map((c) => c.worker)).toEqual(['w:1']);
      const asked = takeOversOf(h, id).length;
      h.clock.advance(60_000);
      await settle();
      expect(takeOversOf(h, id)).toHaveLength(asked);
      expect(dispatchesOf(h, id)).toEqual(['w:1']);
    });
  });

  describe('budgets counted in the database', () => {
    const specOf = (h: Harness, attempt: number) => h.sent.filter((x) => x.attempt === attempt).at(-1)!;
    const running = (): TakeOverResponse => ({ status: 'RUNNING', result: null, startTimeMs: 1 });

    it('a failover neither resets the retry budget nor cuts a waiting retry short: at most retries + 1 runs', async () => {
      const h = harness([task('a', { retries: 2, retryIntervalMs: 1000 })], []);
      h.takeOver = running;
      await h.runner.start();
      await settle();
      await h.runner.taskFinished(finishedEvent(specOf(h, 1), 'FAILURE'));
      expect(h.store.row('a', 1)?.state).toBe('DELAY_EXECUTION');
      h.clock.advance(600);

      // The new owner waits out the rest of the delay (400 ms by the database), not none.
      await h.failover();
      expect(h.store.row('a', 2)).toBeUndefined();
      h.clock.advance(399);
      await settle();
      expect(h.store.row('a', 2)).toBeUndefined();
      h.clock.advance(1);
      await settle();
      expect(h.store.row('a', 2)).toMatchObject({ state: 'DISPATCH', retriesUsed: 1 });

      // Attempt 2 fails and the instance moves at once: the retry still waits its full delay.
      await h.runner.taskFinished(finishedEvent(specOf(h, 2), 'FAILURE'));
      await h.failover();
      h.clock.advance(999);
      await settle();
      expect(h.store.row('a', 3)).toBeUndefined();
      h.clock.advance(1);
      await settle();
      expect(h.store.row('a', 3)).toMatchObject({ state: 'DISPATCH', retriesUsed: 2 });

      // Another failover re-attaches attempt 3; its failure is the last one.
      await h.failover();
      expect(h.calls.filter((c) => c.what === 'takeOver').map((c) => c.id)).toContain(
        h.store.row('a', 3)?.id,
      );
      await h.runner.taskFinished(finishedEvent(specOf(h, 3), 'FAILURE'));
      await settle();
      expect(h.store.attempts('a').map((r) => [r.attempt, r.state])).toEqual([
        [1, 'FAILURE'],
        [2, 'FAILURE'],
        [3, 'FAILURE'],
      ]);
      expect(h.store.instanceState).toBe('FAILURE');
      h.clock.advance(60_000);
      await settle();
      expect(h.store.attempts('a')).toHaveLength(3);
    });

    it('MAX_FAULT_RERUNS: a task whose worker keeps losing it fails after the fourth loss, across failovers too', async () => {
      const h = harness([task('a', { retries: 5 })], []);
      h.takeOver = running;
      const lose = async (attempt: number) => {
        await h.runner.taskFinished(
          finishedEvent(specOf(h, attempt), 'KILL', {
            exitCode: -1,
            message: TASK_RESULT_MESSAGES.sessionLost,
          }),
        );
        await settle();
      };
      await h.runner.start();
      await settle();
      await lose(1);
      await lose(2);
      expect(h.store.row('a', 3)).toMatchObject({ state: 'DISPATCH', faultReruns: 2, retriesUsed: 0 });
      await h.failover();
      await lose(3);
      expect(h.store.row('a', 4)).toMatchObject({ state: 'DISPATCH', faultReruns: 3 });
      await lose(4);
      const fourth = h.store.row('a', 4)!;
      expect(fourth.state).toBe('FAILURE');
      expect(h.store.messages.get(fourth.id)).toMatch(
        /lost under it 4 times, more than MAX_FAULT_RERUNS \(3\)/,
      );
      expect(h.store.attempts('a')).toHaveLength(4);
      expect(h.store.instanceState).toBe('FAILURE');
    });

    it('a poison task (every Dispatch ambiguous, the worker never has it) stops after MAX_FAULT_RERUNS re-runs', async () => {
      const h = harness([task('a')], []);
      // What a worker that refuses the message with RESOURCE_EXHAUSTED looks like to the master
      // (bounded, so that a broken limit fails this test instead of looping on).
      let calls = 0;
      h.answer = () => {
        if (++calls > 10) return { accepted: true, reason: '' };
        throw new RpcCallError('Dispatch', 'w:1', GrpcStatus.RESOURCE_EXHAUSTED, 'message larger than max');
      };
      await h.runner.start();
      await settle();
      expect(h.store.attempts('a').map((r) => r.state)).toEqual([
        'NEED_FAULT_TOLERANCE',
        'NEED_FAULT_TOLERANCE',
        'NEED_FAULT_TOLERANCE',
        'FAILURE',
      ]);
      expect(h.store.instanceState).toBe('FAILURE');
    });
  });

  it('a stop while pausing wins: running tasks are killed and the instance ends STOP', async () => {
    const h = harness([task('a'), task('b')], [{ from: 'a', to: 'b' }]);
    await h.runner.start();
    await settle();
    h.store.instanceState = 'READY_PAUSE';
    await h.runner.control();
    expect(h.runner.snapshot().mode).toBe('pausing');
    h.store.instanceState = 'READY_STOP';
    await h.runner.control();
    await settle();
    expect(h.calls.filter((c) => c.what === 'kill').map((c) => c.id)).toEqual([h.store.row('a')?.id]);
    expect(h.store.row('a')?.state).toBe('KILL');
    expect(h.store.instanceState).toBe('STOP');
  });

  describe('an unexpected database error', () => {
    it('refuses the event (the worker keeps and retries it), reads the rows back, and records it once', async () => {
      const h = harness([task('a')], []);
      await h.runner.start();
      await settle();
      h.store.failNext = { method: 'markFinished', landed: false };
      const ev = finishedEvent(nth(h.sent, 0), 'SUCCESS');
      await expect(h.runner.taskFinished(ev)).rejects.toThrow(/connection terminated/);
      expect(h.store.row('a')?.state).toBe('DISPATCH');
      const retried = await h.runner.taskFinished(ev);
      expect(retried.status).toBe('ACCEPTED');
      await settle();
      expect(h.store.row('a')?.state).toBe('SUCCESS');
      expect(h.store.instanceState).toBe('SUCCESS');
    });

    it('a result whose write landed although its answer was lost: the retried event is answered from the rows', async () => {
      const h = harness();
      await h.runner.start();
      await settle();
      h.store.failNext = { method: 'markFinished', landed: true };
      const ev = finishedEvent(nth(h.sent, 0), 'SUCCESS');
      await expect(h.runner.taskFinished(ev)).rejects.toThrow();
      expect(await h.runner.taskFinished(ev)).toMatchObject({
        status: 'ACCEPTED',
        reason: 'already recorded',
      });
      await settle();
      // Read back, the run went on from the stored result: b runs, a ran once.
      expect(h.store.row('b')?.state).toBe('DISPATCH');
      expect(h.store.attempts('a')).toHaveLength(1);
    });

    it('DISPATCH written but its answer lost: after the read-back it is sent to that worker, never another', async () => {
      const h = harness([task('a')], []);
      h.workers = ['w:1', 'w:2'];
      h.store.failNext = { method: 'markDispatch', landed: true };
      await h.runner.start();
      await settle();
      const id = h.store.row('a')!.id;
      expect(h.store.row('a')).toMatchObject({ state: 'DISPATCH', host: 'w:1' });
      expect(h.calls.filter((c) => c.what === 'dispatch')).toHaveLength(0);
      h.clock.advance(2000); // the recovery pass
      await settle();
      expect(h.calls.filter((c) => c.what === 'dispatch').map((c) => [c.id, c.worker])).toEqual([
        [id, 'w:1'],
      ]);
      expect(h.store.rows).toHaveLength(1);
    });
  });

  describe('dispatch payloads (DESIGN.md section 9)', () => {
    it('resolves params: declared defaults < run params < upstream outputs (all ancestors, topological order), plus built-ins', async () => {
      const h = harness(
        [
          task('a'),
          task('b'),
          task('c', {
            command:
              'run ${x} ${k} ${d} ${porpoise.taskName}#${porpoise.attempt} ${porpoise.scheduleTime} ${HOME}',
          }),
        ],
        [
          { from: 'a', to: 'b' },
          { from: 'b', to: 'c' },
        ],
        { defaults: { d: 'def', k: 'overridden' }, scheduleTimeMs: Date.UTC(2024, 0, 2, 3, 4, 5) },
      );
      await h.runner.start();
      await settle();
      await h.runner.taskFinished(
        finishedEvent(nth(h.sent, 0), 'SUCCESS', { outputs: { x: 'from-a', y: 'a' } }),
      );
      await settle();
      await h.runner.taskFinished(finishedEvent(nth(h.sent, 1), 'SUCCESS', { outputs: { x: 'from-b' } }));
      await settle();
      const c = nth(h.sent, 2);
      // b is nearer c than a: its x wins; a's y still reaches c (an ancestor, not a direct upstream).
      expect(c.params).toEqual({ d: 'def', k: 'v', x: 'from-b', y: 'a' });
      expect(c.command).toBe(`run from-b v def c#1 2024-01-02T03:04:05.000Z \${HOME}`);
      expect(c.taskType).toBe('SHELL');
      expect(nth(h.sent, 0).params).toEqual({ d: 'def', k: 'v' });
    });

    it.each([
      ['UTC', '20231231 20240101'],
      ['Asia/Shanghai', '20240101 20240102'],
    ])('computes the date built-ins in the run time zone (%s)', async (timezone, expected) => {
      // 17:30 UTC on 1 January is already 01:30 on 2 January in Shanghai.
      const h = harness([task('a', { command: 'echo ${porpoise.bizDate} $[yyyyMMdd]' })], [], {
        scheduleTimeMs: Date.UTC(2024, 0, 1, 17, 30),
        timezone,
      });
      await h.runner.start();
      await settle();
      expect(nth(h.sent, 0).command).toBe(`echo ${expected}`);
    });

    it('an unknown parameter fails the attempt with a message naming it; nothing is marked DISPATCH or sent', async () => {
      const h = harness([task('a', { command: 'echo ${porpoise.nope}', retries: 2 })], []);
      await h.runner.start();
      await settle();
      expect(h.sent).toHaveLength(0);
      const row = h.store.row('a');
      expect(row?.state).toBe('FAILURE');
      expect(row?.host).toBeNull();
      expect(h.store.messages.get(row?.id ?? 0)).toContain('porpoise.nope');
      // A refusal is not retried: it would be refused again.
      expect(h.store.attempts('a')).toHaveLength(1);
      expect(h.store.instanceState).toBe('FAILURE');
    });

    it('a TaskSpec larger than 3.5 MiB serialized is refused before anything is sent', async () => {
      const h = harness([task('a', { command: `echo ${'x'.repeat(4 * 1024 * 1024)}` })], []);
      await h.runner.start();
      await settle();
      expect(h.sent).toHaveLength(0);
      expect(h.store.row('a')?.state).toBe('FAILURE');
      expect(h.store.messages.get(h.store.row('a')?.id ?? 0)).toContain('3.5 MiB');
    });

    it('an SQL task gets its data source opened for the dispatch; a data source that is gone refuses it', async () => {
      const sql = typedTask<SqlTaskDefinition>({
        name: 'q',
        type: 'SQL',
        sql: { datasource: 'main', statement: 'select ${k}' },
      });
      const h = harness(
        [sql, { ...sql, name: 'q2', sql: { datasource: 'gone', statement: 'select 1' } }],
        [],
      );
      h.datasources.set('main', { type: 'postgres', url: 'postgres://u:secret@h/db' });
      await h.runner.start();
      await settle();
      expect(h.sent.map((s) => s.taskName)).toEqual(['q']);
      expect(nth(h.sent, 0)).toMatchObject({ taskType: 'SQL', command: '' });
      expect(JSON.parse(nth(h.sent, 0).payloadJson)).toEqual({
        datasourceType: 'postgres',
        url: 'postgres://u:secret@h/db',
        text: 'select $1',
        values: ['v'],
      });
      expect(h.store.row('q2')?.state).toBe('FAILURE');
      expect(h.store.messages.get(h.store.row('q2')?.id ?? 0)).toContain('data source "gone"');
    });

    it('a worker answering INVALID_ARGUMENT fails the task with that message (not ambiguous: no TakeOver, no re-dispatch)', async () => {
      const h = harness([task('a', { retries: 0 })], []);
      h.answer = () => {
        throw new RpcCallError('Dispatch', 'w:1', GrpcStatus.INVALID_ARGUMENT, 'payloadJson: bad');
      };
      await h.runner.start();
      await settle();
      expect(h.calls.map((c) => c.what)).toEqual(['dispatch']);
      expect(h.store.row('a')?.state).toBe('FAILURE');
      expect(h.store.messages.get(h.store.row('a')?.id ?? 0)).toContain('payloadJson: bad');
      expect(h.store.instanceState).toBe('FAILURE');
    });
  });

  describe('outputs (DESIGN.md section 9)', () => {
    it('outputs stored with an attempt reach the tasks downstream across a failover (rows and a TakeOver FINISHED result)', async () => {
      const h = harness(
        [task('a'), task('b'), task('c')],
        [
          { from: 'a', to: 'b' },
          { from: 'b', to: 'c' },
        ],
      );
      await h.runner.start();
      await settle();
      await h.runner.taskFinished(finishedEvent(nth(h.sent, 0), 'SUCCESS', { outputs: { x: '1' } }));
      await settle();
      expect(h.store.row('a')?.outputs).toEqual({ x: '1' });
      const b = nth(h.sent, 1);
      expect(b.params).toEqual({ k: 'v', x: '1' });
      // The new owner asks the worker about b: it finished meanwhile, with an output of its own.
      h.takeOver = () => ({
        status: 'FINISHED',
        result: finishedEvent(b, 'SUCCESS', { outputs: { y: '2' } }),
        startTimeMs: 1,
      });
      await h.failover();
      await settle();
      expect(h.store.row('b')).toMatchObject({ state: 'SUCCESS', outputs: { y: '2' } });
      const c = nth(h.sent, 2);
      expect(c.taskName).toBe('c');
      // a's output came from its row (the new runner never saw a's TaskFinished).
      expect(c.params).toEqual({ k: 'v', x: '1', y: '2' });
    });
  });

  describe('SUB_WORKFLOW', () => {
    const sub = () =>
      typedTask<SubWorkflowTaskDefinition>({
        name: 'sub',
        type: 'SUB_WORKFLOW',
        subWorkflow: { workflowCode: 'child', params: { p: '${k}' } },
      });

    it('starts exactly one child per attempt (a failover finds it again), stays RUNNING_EXECUTION, and ends with it', async () => {
      const h = harness([sub(), task('after')], [{ from: 'sub', to: 'after' }]);
      await h.runner.start();
      await settle();
      const row = h.store.row('sub');
      expect(row).toMatchObject({ state: 'RUNNING_EXECUTION', host: null });
      expect([...h.store.childByTask.keys()]).toEqual([row?.id]);
      expect(h.sent).toEqual([]);
      await h.failover();
      expect(h.store.startCalls).toBe(2);
      expect(h.store.childByTask.size).toBe(1);
      expect(h.store.row('sub', 2)).toBeUndefined();
      // The child ends: the trigger NOTIFYs the parent's channel.
      const child = h.store.childByTask.get(row?.id ?? 0);
      if (child) child.state = 'SUCCESS';
      await h.runner.control();
      await settle();
      expect(h.store.row('sub')?.state).toBe('SUCCESS');
      expect(h.sent.map((s) => s.taskName)).toEqual(['after']);
    });

    it('a child end whose NOTIFY was lost (LISTEN down during a database restart) is found when the listener is back', async () => {
      const h = harness([sub(), task('after')], [{ from: 'sub', to: 'after' }]);
      await h.runner.start();
      await settle();
      const child = h.store.childByTask.get(h.store.row('sub')?.id ?? 0);
      if (child) child.state = 'SUCCESS';
      // No control() call: the NOTIFY never came, and nothing polls for it.
      h.clock.advance(60_000);
      await settle();
      expect(h.store.row('sub')?.state).not.toBe('SUCCESS');
      // The listener reconnected (InstanceControlService → engine.wakeAllChildren()).
      await h.runner.childrenWake();
      await settle();
      expect(h.store.row('sub')?.state).toBe('SUCCESS');
      expect(h.sent.map((s) => s.taskName)).toEqual(['after']);
    });

    it('a children check that failed on a database error is asked again by the recovery pass', async () => {
      const h = harness([sub(), task('after')], [{ from: 'sub', to: 'after' }]);
      await h.runner.start();
      await settle();
      const child = h.store.childByTask.get(h.store.row('sub')?.id ?? 0);
      if (child) child.state = 'SUCCESS';
      const childStates = h.store.children.childStates;
      h.store.children.childStates = () => Promise.reject(new Error('Connection terminated unexpectedly'));
      // The NOTIFY arrived, but its check failed: the end is not seen now.
      await h.runner.control();
      await settle();
      expect(h.store.row('sub')?.state).not.toBe('SUCCESS');
      h.store.children.childStates = childStates;
      h.clock.advance(5_000);
      await settle();
      expect(h.store.row('sub')?.state).toBe('SUCCESS');
      expect(h.sent.map((s) => s.taskName)).toEqual(['after']);
    });

    it('a child that does not succeed fails the task with a message naming the child; a stop reaches the children', async () => {
      const h = harness([sub()], []);
      await h.runner.start();
      await settle();
      const id = h.store.row('sub')?.id ?? 0;
      const child = h.store.childByTask.get(id);
      if (child) {
        child.state = 'FAILURE';
        child.message = 'boom';
      }
      await h.runner.control();
      await settle();
      expect(h.store.row('sub')?.state).toBe('FAILURE');
      expect(h.store.messages.get(id)).toBe(`child workflow instance ${child?.id} ended FAILURE: boom`);
      expect(h.store.instanceState).toBe('FAILURE');

      const h2 = harness([sub()], []);
      await h2.runner.start();
      await settle();
      h2.store.instanceState = 'READY_STOP';
      await h2.runner.control();
      await settle();
      expect(h2.store.halts).toEqual(['stop']);
      expect(h2.store.row('sub')?.state).toBe('KILL');
      expect(h2.store.instanceState).toBe('STOP');
    });

    const childOf = (h: Harness) => {
      const child = h.store.childByTask.get(h.store.row('sub')?.id ?? 0);
      if (child === undefined) throw new Error('no child');
      return child;
    };

    it('a pause reaches the child; the task and the run end PAUSE; the resume resumes the same child', async () => {
      const h = harness([sub(), task('after')], [{ from: 'sub', to: 'after' }]);
      await h.runner.start();
      await settle();
      h.store.instanceState = 'READY_PAUSE';
      await h.runner.control();
      await settle();
      expect(h.store.halts).toEqual(['pause']);
      // Still waiting for the child to pause.
      expect(h.store.row('sub')?.state).toBe('RUNNING_EXECUTION');
      childOf(h).state = 'PAUSE';
      await h.runner.control();
      await settle();
      expect(h.store.row('sub')?.state).toBe('PAUSE');
      expect(h.store.instanceState).toBe('PAUSE');

      // Resume (RECOVER_SUSPENDED_PROCESS): the same attempt and the same child go on.
      h.store.instanceState = 'RUNNING_EXECUTION';
      await h.failover('RECOVER_SUSPENDED_PROCESS');
      expect(h.store.row('sub')?.state).toBe('RUNNING_EXECUTION');
      expect(h.store.row('sub', 2)).toBeUndefined();
      expect(h.store.childByTask.size).toBe(1);
      expect(childOf(h).state).toBe('SUBMITTED_SUCCESS');
      childOf(h).state = 'SUCCESS';
      await h.runner.control();
      await settle();
      expect(h.store.row('sub')?.state).toBe('SUCCESS');
      expect(h.sent.map((s) => s.taskName)).toEqual(['after']);
    });

    it('a child paused on its own while the parent runs is waited for, not failed', async () => {
      const h = harness([sub()], []);
      await h.runner.start();
      await settle();
      childOf(h).state = 'PAUSE';
      await h.runner.control();
      await settle();
      expect(h.store.row('sub')?.state).toBe('RUNNING_EXECUTION');
      expect(h.store.instanceState).toBe('RUNNING_EXECUTION');
      childOf(h).state = 'SUCCESS';
      await h.runner.control();
      await settle();
      expect(h.store.row('sub')?.state).toBe('SUCCESS');
      expect(h.store.instanceState).toBe('SUCCESS');
    });

    it('a run taken over while a stop or pause was asked passes it on to the children itself', async () => {
      for (const [state, action] of [
        ['READY_STOP', 'stop'],
        ['READY_PAUSE', 'pause'],
      ] as const) {
        const h = harness([sub()], []);
        await h.runner.start();
        await settle();
        h.store.instanceState = state;
        await h.failover('RECOVER_TOLERANCE_FAULT_PROCESS', state);
        expect(h.store.halts).toEqual([action]);
      }
    });
  });

  describe('DEPENDENT', () => {
    const dep = (over: Partial<DependentTaskDefinition['dependent']> = {}, timeoutMs = 60_000) =>
      typedTask<DependentTaskDefinition>({
        name: 'dep',
        type: 'DEPENDENT',
        timeoutMs,
        dependent: { workflowCode: 'wf_up', interval: 'day', offset: -1, checkIntervalMs: 10_000, ...over },
      });
    /** 10:00 UTC on 2026-12-01 is 11:00 in Berlin. */
    const scheduled = { scheduleTimeMs: Date.parse('2026-12-01T10:00:00Z'), timezone: 'Europe/Berlin' };

    it('waits on the master, checking the window of its schedule time in its time zone; a wake and the interval check again; met ends it', async () => {
      const h = harness([dep(), task('after')], [{ from: 'dep', to: 'after' }], scheduled);
      await h.runner.start();
      await settle();
      expect(h.store.row('dep')).toMatchObject({ state: 'RUNNING_EXECUTION', host: null });
      expect(h.sent).toEqual([]);
      expect(h.store.dependencyChecks).toEqual([
        {
          workflowCode: 'wf_up',
          taskName: undefined,
          // The day before, Berlin time (CET, +01:00).
          fromMs: Date.parse('2026-11-29T23:00:00Z'),
          toMs: Date.parse('2026-11-30T23:00:00Z'),
        },
      ]);
      expect(h.runner.dependentCodes).toEqual(new Set(['wf_up']));
      h.runner.dependencyWake('wf_other');
      await settle();
      expect(h.store.dependencyChecks).toHaveLength(1);
      h.runner.dependencyWake('wf_up');
      await settle();
      expect(h.store.dependencyChecks).toHaveLength(2);
      h.clock.advance(9_999);
      await settle();
      expect(h.store.dependencyChecks).toHaveLength(2);
      h.clock.advance(1);
      await settle();
      expect(h.store.dependencyChecks).toHaveLength(3);
      h.store.dependencyOutcome.set('wf_up', {
        outcome: 'met',
        instanceId: 5,
        message: 'wf_up succeeded in 5',
      });
      h.runner.dependencyWake('wf_up');
      await settle();
      const id = h.store.row('dep')?.id ?? 0;
      expect(h.store.row('dep')?.state).toBe('SUCCESS');
      expect(h.store.messages.get(id)).toBe('wf_up succeeded in 5');
      expect(h.sent.map((s) => s.taskName)).toEqual(['after']);
      // Nothing checks any more: its timers went with it.
      h.clock.advance(120_000);
      await settle();
      expect(h.store.dependencyChecks).toHaveLength(4);
    });

    it('keeps its original timeout across a failover (counted from the row’s start_time)', async () => {
      const h = harness([dep()], [], scheduled);
      await h.runner.start();
      await settle();
      h.clock.advance(45_000);
      await settle();
      const before = h.store.dependencyChecks.length;
      await h.failover();
      // The new owner checks at once...
      expect(h.store.dependencyChecks).toHaveLength(before + 1);
      expect(h.store.row('dep', 2)).toBeUndefined();
      h.clock.advance(14_999);
      await settle();
      expect(h.store.row('dep')?.state).toBe('RUNNING_EXECUTION');
      // ...and fails 60 s after the task started, not 60 s after the failover.
      h.clock.advance(1);
      await settle();
      const id = h.store.row('dep')?.id ?? 0;
      expect(h.store.row('dep')?.state).toBe('FAILURE');
      expect(h.store.messages.get(id)).toBe('the dependency on workflow wf_up was not met within 60000 ms');
      expect(h.store.instanceState).toBe('FAILURE');
    });

    it('a check that errors is a warning and waits for the next interval; failed ends it FAILURE', async () => {
      const h = harness([dep({ taskName: 'load' }, 0)], [], scheduled);
      let calls = 0;
      h.store.dependencies.check = async (q) => {
        calls++;
        if (calls === 1) throw new Error('connection refused');
        expect(q.taskName).toBe('load');
        return { outcome: 'failed', instanceId: 9, message: 'instance 9 ended STOP' };
      };
      await h.runner.start();
      await settle();
      expect(calls).toBe(1);
      expect(h.store.row('dep')?.state).toBe('RUNNING_EXECUTION');
      h.clock.advance(10_000);
      await settle();
      expect(calls).toBe(2);
      expect(h.store.row('dep')?.state).toBe('FAILURE');
      expect(h.store.messages.get(h.store.row('dep')?.id ?? 0)).toBe('instance 9 ended STOP');
      expect(h.store.instanceState).toBe('FAILURE');
    });
  });
});
