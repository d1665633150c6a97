/**
 * The run engine's transition function, row by row: a state and an event in, the next state and
 * the effects out. Each row names the path of the runner it covers. Log effects are left out of
 * the comparison (they are checked where their text matters).
 */
import type { TaskState } from '@porpoise/common';
import { TASK_RESULT_MESSAGES, type TaskFinishedEvent } from '@porpoise/rpc';
import { adoptRun } from '../../src/engine/domain/adoption';
import type { Effect } from '../../src/engine/domain/run-effects';
import type { RunEnv, RunEvent, StoredRow } from '../../src/engine/domain/run-events';
import {
  RowIndex,
  slotOf,
  type AttemptRef,
  type FailurePolicy,
  type RunMode,
  type RunState,
  type RunTaskDef,
  type Slot,
  type SlotStatus,
} from '../../src/engine/domain/run-state';
import { transition } from '../../src/engine/domain/transition';

// ---------------------------------------------------------------- builders

const at = (id: number, attempt = 1, retriesUsed = 0, faultReruns = 0): AttemptRef => ({
  id,
  attempt,
  retriesUsed,
  faultReruns,
});

const pending = (over: Partial<Extract<SlotStatus, { kind: 'pending' }>> = {}): SlotStatus => ({
  kind: 'pending',
  next: { retriesUsed: 0, faultReruns: 0 },
  ...over,
});
const submitted = (
  a: AttemptRef,
  over: Partial<Extract<SlotStatus, { kind: 'submitted' }>> = {},
): SlotStatus => ({
  kind: 'submitted',
  at: a,
  tried: [],
  parked: false,
  ...over,
});
const dispatching = (
  a: AttemptRef,
  worker = 'w1',
  over: Partial<Extract<SlotStatus, { kind: 'dispatching' }>> = {},
): SlotStatus => ({ kind: 'dispatching', at: a, worker, tried: [worker], started: false, ...over });
const running = (
  a: AttemptRef,
  worker = 'w1',
  over: Partial<Extract<SlotStatus, { kind: 'onWorker' }>> = {},
): SlotStatus => ({ kind: 'onWorker', at: a, worker, started: true, ...over });
const resolving = (
  a: AttemptRef,
  worker = 'w1',
  over: Partial<Extract<SlotStatus, { kind: 'resolving' }>> = {},
): SlotStatus => ({
  kind: 'resolving',
  at: a,
  worker,
  started: false,
  cause: 'dispatch',
  asking: true,
  backoffMs: 250,
  ...over,
});
const delayed = (a: AttemptRef, due = false): SlotStatus => ({ kind: 'delayed', at: a, host: 'w1', due });
const ended = (
  a: AttemptRef,
  state: 'SUCCESS' | 'FAILURE' | 'KILL' = 'SUCCESS',
  host: string | null = 'w1',
): SlotStatus => ({
  kind: 'ended',
  at: a,
  state,
  host,
  outputs: {},
});

interface Def extends Partial<RunTaskDef> {
  name: string;
}

/** A run of tasks (a chain unless edges are given), with some slots set. */
function state(
  tasks: Array<string | Def>,
  slots: Record<string, SlotStatus> = {},
  opts: {
    edges?: Array<[string, string]>;
    mode?: RunMode;
    policy?: FailurePolicy;
    maxFaultReruns?: number;
  } = {},
): RunState {
  const defs: RunTaskDef[] = tasks.map((t) => ({
    type: 'SHELL',
    retries: 0,
    retryIntervalMs: 1000,
    workerGroup: 'g',
    ...(typeof t === 'string' ? { name: t } : t),
  }));
  const names = defs.map((d) => d.name);
  const edges = opts.edges ?? names.slice(1).map((n, i): [string, string] => [names[i] ?? '', n]);
  const upstream = new Map(names.map((n) => [n, edges.filter(([, to]) => to === n).map(([from]) => from)]));
  const downstream = new Map(names.map((n) => [n, edges.filter(([from]) => from === n).map(([, to]) => to)]));
  const slotList: Slot[] = [];
  const rowIds = new RowIndex();
  for (const def of defs) {
    const status = slots[def.name] ?? pending();
    const a = 'at' in status ? status.at : status.kind === 'pending' ? status.last?.at : undefined;
    if (a) rowIds.add(a.id, def.name);
    slotList.push({ name: def.name, def, lastAttempt: a?.attempt ?? 0, status });
  }
  return {
    instanceId: 7,
    epoch: 2,
    graph: { tasks: new Map(defs.map((d) => [d.name, d])), upstream, downstream, order: names },
    failurePolicy: opts.policy ?? 'END',
    maxFaultReruns: opts.maxFaultReruns ?? 3,
    timings: { parkedRetryMs: 5000, resolveBackoffMinMs: 250, resolveBackoffMaxMs: 5000 },
    mode: opts.mode ?? { kind: 'running' },
    slots: slotList,
    index: new Map(names.map((n, i) => [n, i])),
    rowIds,
  };
}

function env(over: { live?: string[]; canStartWork?: boolean } = {}): RunEnv {
  const live = over.live ?? ['w1', 'w2'];
  return {
    canStartWork: over.canStartWork ?? true,
    isLive: (a) => live.includes(a),
    pick: (_group, exclude) => live.find((w) => !exclude.has(w)),
  };
}

const result = (
  id: number,
  stateOf: TaskFinishedEvent['state'],
  over: Partial<TaskFinishedEvent> = {},
): RunEvent => ({
  type: 'taskFinished',
  ev: {
    taskInstanceId: id,
    workflowInstanceId: 7,
    attempt: 1,
    state: stateOf,
    exitCode: stateOf === 'SUCCESS' ? 0 : 1,
    startTimeMs: 10,
    endTimeMs: 20,
    workerAddress: 'w1',
    epoch: 2,
    message: '',
    outputs: {},
    ...over,
  },
});
const started = (
  id: number,
  over: Partial<{ epoch: number; workerAddress: string; attempt: number }> = {},
): RunEvent => ({
  type: 'taskStarted',
  ev: {
    taskInstanceId: id,
    workflowInstanceId: 7,
    attempt: 1,
    startTimeMs: 5,
    workerAddress: 'w1',
    epoch: 2,
    ...over,
  },
});
const row = (id: number, name: string, stateOf: TaskState, over: Partial<StoredRow> = {}): StoredRow => ({
  id,
  name,
  state: stateOf,
  host: null,
  attempt: 1,
  retriesUsed: 0,
  faultReruns: 0,
  retryDueInMs: null,
  outputs: {},
  ...over,
});

const finishedWrite = (id: number, stateOf: TaskState, over: Record<string, unknown> = {}) => ({
  kind: 'markFinished',
  rowId: id,
  worker: 'w1',
  state: stateOf,
  exitCode: stateOf === 'SUCCESS' ? 0 : 1,
  startMs: 10,
  endMs: 20,
  message: '',
  outputs: {},
  ...over,
});
const accepted = (reason = '') => ({ kind: 'reply', ack: { status: 'ACCEPTED', reason } });
const dispatchTo = (id: number, name: string, worker: string, attempt = 1) => [
  { kind: 'markDispatch', rowId: id, worker },
  { kind: 'dispatch', rowId: id, attempt, name, worker },
];
const create = (...items: Array<[string, number, number?, number?, boolean?]>) => ({
  kind: 'createAttempts',
  items: items.map(([name, attempt, retriesUsed = 0, faultReruns = 0, skipped = false]) => ({
    name,
    attempt,
    retriesUsed,
    faultReruns,
    skipped,
  })),
});
const markState = (ids: number[], from: TaskState[], stateOf: TaskState, message: string) => ({
  kind: 'markState',
  rowIds: ids,
  from,
  state: stateOf,
  message,
});
const ACTIVE: TaskState[] = ['DISPATCH', 'RUNNING_EXECUTION'];

interface Row {
  /** The path of the runner this covers. */
  readonly path: string;
  readonly given: RunState;
  readonly event: RunEvent;
  readonly env?: RunEnv;
  /** Every effect but logs, in order. */
  readonly effects: readonly unknown[];
  /** Slots whose status must be exactly this afterwards. */
  readonly slots?: Record<string, SlotStatus>;
  readonly mode?: RunMode;
}

function check(r: Row): { next: RunState; effects: readonly Effect[] } {
  const { state: next, effects } = transition(r.given, r.event, r.env ?? env());
  expect(effects.filter((e) => e.kind !== 'log')).toEqual(r.effects);
  for (const [name, status] of Object.entries(r.slots ?? {})) {
    expect(slotOf(next, name)?.status).toEqual(status);
  }
  if (r.mode) expect(next.mode).toEqual(r.mode);
  return { next, effects };
}

// ---------------------------------------------------------------- rows

const A1 = at(11);
const B1 = at(21);

const adoption: Row[] = [
  {
    path: 'a fresh run creates the tasks without upstream tasks, in one statement',
    given: state(['a', 'b']),
    event: { type: 'start' },
    effects: [create(['a', 1])],
    slots: { a: { kind: 'creating', attempt: 1, next: { retriesUsed: 0, faultReruns: 0 } }, b: pending() },
  },
  {
    path: 'while the registry session is suspended nothing new starts',
    given: state(['a']),
    event: { type: 'start' },
    env: env({ canStartWork: false }),
    effects: [],
    slots: { a: pending() },
  },
  {
    path: 'an attempt found running on a live worker is asked about (TakeOver), not run again',
    given: state(['a', 'b'], {
      a: resolving(A1, 'w1', { cause: 'adoption', asking: false, started: true, backoffMs: 0 }),
    }),
    event: { type: 'start' },
    effects: [{ kind: 'takeOver', rowId: 11, name: 'a', worker: 'w1' }],
    slots: { a: resolving(A1, 'w1', { cause: 'adoption', started: true }) },
  },
  {
    path: 'an attempt found on a worker that is gone runs again (a fault re-run, counted)',
    given: state(['a'], { a: resolving(A1, 'w9', { cause: 'adoption', asking: false, backoffMs: 0 }) }),
    event: { type: 'start' },
    effects: [
      markState([11], ACTIVE, 'NEED_FAULT_TOLERANCE', 'not found on w9 after failover'),
      { kind: 'clearTimer', key: 'resolve:a' },
      create(['a', 2, 0, 1]),
    ],
  },
  {
    path: 'a waiting retry adopted with its delay not over waits out the rest of it',
    given: state(['a'], { a: { kind: 'delayed', at: at(11, 1), host: 'w1', due: false, dueInMs: 1234 } }),
    event: { type: 'start' },
    effects: [{ kind: 'setTimer', key: 'retry:a', ms: 1234 }],
  },
  {
    path: 'a waiting retry adopted after its delay is over retries at once, counting the retry',
    given: state(['a'], { a: { kind: 'delayed', at: at(11, 1, 1), host: 'w1', due: true, dueInMs: 0 } }),
    event: { type: 'start' },
    effects: [{ kind: 'retry', rowId: 11, name: 'a', attempt: 2 }],
    slots: { a: { kind: 'creating', attempt: 2, next: { retriesUsed: 2, faultReruns: 0 } } },
  },
  {
    path: 'adopted while READY_STOP: what runs is killed, not asked about, and the run ends STOP',
    given: state(
      ['a'],
      { a: resolving(A1, 'w1', { cause: 'adoption', asking: false, started: true }) },
      {
        mode: { kind: 'stopping', endAs: 'STOP', reason: 'stop requested' },
      },
    ),
    event: { type: 'start' },
    effects: [
      { kind: 'clearTimer', key: 'resolve:a' },
      { kind: 'kill', targets: [{ rowId: 11, worker: 'w1' }], wait: true },
      markState([11], ACTIVE, 'KILL', 'stopped by request'),
      { kind: 'finish', state: 'STOP', message: undefined },
    ],
  },
  {
    path: 'a workflow timeout is a timer',
    given: state(['a'], { a: running(A1) }),
    event: { type: 'start', timeoutInMs: 60_000 },
    effects: [{ kind: 'setTimer', key: 'timeout', ms: 60_000 }],
  },
];

const workerEvents: Row[] = [
  {
    path: 'TaskStarted while the Dispatch is in flight: RUNNING_EXECUTION, the answer still awaited',
    given: state(['a'], { a: dispatching(A1) }),
    event: started(11),
    effects: [{ kind: 'markStarted', rowId: 11, worker: 'w1', startMs: 5 }, accepted()],
    slots: { a: dispatching(A1, 'w1', { started: true }) },
  },
  {
    path: 'a repeated TaskStarted is accepted without a write',
    given: state(['a'], { a: running(A1) }),
    event: started(11),
    effects: [accepted('already RUNNING_EXECUTION')],
  },
  {
    path: 'an event from a newer epoch: we are the stale owner',
    given: state(['a'], { a: running(A1) }),
    event: started(11, { epoch: 3 }),
    effects: [{ kind: 'reply', ack: { status: 'NOT_OWNER', reason: 'epoch 3 is newer than ours (2)' } }],
  },
  {
    path: 'TaskStarted of an attempt the run gave up (KILL): OBSOLETE, so the worker kills it',
    given: state(['a'], { a: ended(A1, 'KILL') }),
    event: started(11),
    effects: [{ kind: 'reply', ack: { status: 'OBSOLETE', reason: 'task instance 11 is KILL' } }],
  },
  {
    path: 'TaskFinished SUCCESS: recorded, answered, and the next tasks start after the answer',
    given: state(['a', 'b'], { a: running(A1) }),
    event: result(11, 'SUCCESS', { outputs: { x: '1' } }),
    effects: [finishedWrite(11, 'SUCCESS', { outputs: { x: '1' } }), accepted(), { kind: 'advanceLater' }],
    slots: { a: { kind: 'ended', at: A1, state: 'SUCCESS', host: 'w1', outputs: { x: '1' } } },
  },
  {
    path: 'a failure with a retry left waits in DELAY_EXECUTION; the delay is kept by the database',
    given: state([{ name: 'a', retries: 2, retryIntervalMs: 500 }], { a: running(A1) }),
    event: result(11, 'FAILURE'),
    effects: [
      finishedWrite(11, 'DELAY_EXECUTION', { retryDelayMs: 500 }),
      { kind: 'setTimer', key: 'retry:a', ms: 500 },
      accepted(),
      { kind: 'advanceLater' },
    ],
    slots: { a: delayed(A1) },
  },
  {
    path: 'a failure with its retries used up (END): FAILURE, the run fails',
    given: state([{ name: 'a', retries: 2 }], { a: running(at(11, 3, 2)) }),
    event: result(11, 'FAILURE', { attempt: 3 }),
    effects: [finishedWrite(11, 'FAILURE'), accepted(), { kind: 'advanceLater' }],
    mode: { kind: 'failing', reason: 'task a ended FAILURE' },
  },
  {
    path: 'a failure under CONTINUE: the run goes on, to end FAILURE',
    given: state(['a', 'b'], { a: running(A1) }, { policy: 'CONTINUE' }),
    event: result(11, 'FAILURE'),
    effects: [finishedWrite(11, 'FAILURE'), accepted(), { kind: 'advanceLater' }],
    mode: { kind: 'running', failure: 'task a ended FAILURE' },
  },
  {
    path: 'a failure with a retry left while pausing: FAILURE now, the resume retries it (counted)',
    given: state([{ name: 'a', retries: 1 }], { a: running(A1) }, { mode: { kind: 'pausing' } }),
    event: result(11, 'FAILURE'),
    effects: [finishedWrite(11, 'FAILURE'), accepted(), { kind: 'advanceLater' }],
    slots: {
      a: pending({
        next: { retriesUsed: 1, faultReruns: 0 },
        last: { at: A1, state: 'FAILURE', host: 'w1' },
      }),
    },
    mode: { kind: 'pausing' },
  },
  {
    path: 'a KILL its worker did itself is a fault: NEED_FAULT_TOLERANCE, re-run elsewhere, no retry used',
    given: state(['a'], { a: running(A1) }),
    event: result(11, 'KILL', { message: TASK_RESULT_MESSAGES.stopping }),
    effects: [
      finishedWrite(11, 'NEED_FAULT_TOLERANCE', { exitCode: 1, message: TASK_RESULT_MESSAGES.stopping }),
      accepted(),
      { kind: 'advanceLater' },
    ],
    slots: {
      a: pending({
        next: { retriesUsed: 0, faultReruns: 1 },
        avoid: 'w1',
        last: { at: A1, state: 'NEED_FAULT_TOLERANCE', host: 'w1' },
      }),
    },
    mode: { kind: 'running' },
  },
  {
    path: 'MAX_FAULT_RERUNS: the fourth loss of its worker fails the task, saying so',
    given: state(['a'], { a: running(at(11, 4, 0, 3)) }),
    event: result(11, 'KILL', { attempt: 4, message: TASK_RESULT_MESSAGES.sessionLost }),
    effects: [
      finishedWrite(11, 'FAILURE', {
        message: `${TASK_RESULT_MESSAGES.sessionLost}; its worker was lost under it 4 times, more than MAX_FAULT_RERUNS (3): not run again`,
      }),
      accepted(),
      { kind: 'advanceLater' },
    ],
    slots: { a: ended(at(11, 4, 0, 3), 'FAILURE') },
    mode: {
      kind: 'failing',
      reason: `task a: ${TASK_RESULT_MESSAGES.sessionLost}; its worker was lost under it 4 times, more than MAX_FAULT_RERUNS (3): not run again`,
    },
  },
  {
    path: 'a KILL its worker did itself while the run fails: KILL (the one decision), not FAILURE',
    given: state(['a'], { a: running(A1) }, { mode: { kind: 'failing', reason: 'task x ended FAILURE' } }),
    event: result(11, 'KILL', { message: TASK_RESULT_MESSAGES.restarted }),
    effects: [
      finishedWrite(11, 'KILL', { message: TASK_RESULT_MESSAGES.restarted }),
      accepted(),
      { kind: 'advanceLater' },
    ],
    slots: { a: ended(A1, 'KILL') },
  },
  {
    path: 'a KILL its worker did itself while pausing: PAUSE (a resume runs it again)',
    given: state(['a'], { a: running(A1) }, { mode: { kind: 'pausing' } }),
    event: result(11, 'KILL', { message: TASK_RESULT_MESSAGES.stopping }),
    effects: [
      finishedWrite(11, 'PAUSE', { message: TASK_RESULT_MESSAGES.stopping }),
      accepted(),
      { kind: 'advanceLater' },
    ],
    slots: { a: pending({ last: { at: A1, state: 'PAUSE', host: 'w1' } }) },
  },
  {
    path: 'a KILL it asked for (killed on request) while running fails the run',
    given: state([{ name: 'a', retries: 3 }], { a: running(A1) }),
    event: result(11, 'KILL', { message: TASK_RESULT_MESSAGES.killed }),
    effects: [
      finishedWrite(11, 'KILL', { message: TASK_RESULT_MESSAGES.killed }),
      accepted(),
      { kind: 'advanceLater' },
    ],
    mode: { kind: 'failing', reason: 'task a ended KILL' },
  },
  {
    path: 'a repeated FAILURE of an attempt waiting for its retry is already recorded',
    given: state(['a'], { a: delayed(A1) }),
    event: result(11, 'FAILURE'),
    effects: [accepted('already recorded')],
  },
  {
    path: 'a result of a superseded attempt is OBSOLETE',
    given: state(['a'], { a: running(at(12, 2)) }, {}),
    event: result(11, 'SUCCESS'),
    effects: [
      { kind: 'reply', ack: { status: 'OBSOLETE', reason: 'task instance 11 is not part of this run' } },
    ],
  },
  {
    path: 'a result from a worker the attempt is not assigned to is OBSOLETE',
    given: state(['a'], { a: running(A1) }),
    event: result(11, 'SUCCESS', { workerAddress: 'w9' }),
    effects: [{ kind: 'reply', ack: { status: 'OBSOLETE', reason: 'task instance 11 is assigned to w1' } }],
  },
];

const progress: Row[] = [
  {
    path: 'tasks ready at once are created highest priority first, then in the graph order',
    given: state(
      [{ name: 'low', priority: 'LOW' }, 'mid', { name: 'high', priority: 'HIGHEST' }, 'mid2'],
      {},
      { edges: [] },
    ),
    event: { type: 'start' },
    effects: [create(['high', 1], ['mid', 1], ['mid2', 1], ['low', 1])],
  },
  {
    path: 'waiting tasks are sent out highest priority first (when workers are short they get them)',
    given: state(
      [
        { name: 'low', priority: 'LOWEST' },
        { name: 'high', priority: 'HIGH' },
      ],
      { low: submitted(A1), high: submitted(B1) },
      { edges: [] },
    ),
    event: { type: 'start' },
    effects: [...dispatchTo(21, 'high', 'w1'), ...dispatchTo(11, 'low', 'w1')],
  },
  {
    path: 'advance: a task whose upstream succeeded is created',
    given: state(['a', 'b'], { a: ended(A1) }),
    event: { type: 'advance' },
    effects: [create(['b', 1])],
  },
  {
    path: 'advance: every task succeeded (or was skipped): SUCCESS',
    given: state(['a', 'b'], { a: ended(A1), b: { kind: 'skipped', at: B1 } }),
    event: { type: 'advance' },
    effects: [{ kind: 'finish', state: 'SUCCESS', message: undefined }],
  },
  {
    path: 'advance: a due retry is made (DELAY_EXECUTION → FAILURE + attempt 2, one more retry used)',
    given: state([{ name: 'a', retries: 1 }], { a: delayed(A1, true) }),
    event: { type: 'advance' },
    effects: [{ kind: 'retry', rowId: 11, name: 'a', attempt: 2 }],
    slots: { a: { kind: 'creating', attempt: 2, next: { retriesUsed: 1, faultReruns: 0 } } },
  },
  {
    path: 'advance: a due retry is held back while the session is suspended',
    given: state([{ name: 'a', retries: 1 }], { a: delayed(A1, true) }),
    event: { type: 'advance' },
    env: env({ canStartWork: false }),
    effects: [],
  },
  {
    path: 'SKIPPED carries down a branch: only-through-skipped tasks are skipped, others run',
    given: state(
      ['s', 'x', 'b', 'c', 'd'],
      { s: { kind: 'skipped', at: at(1) }, x: ended(at(2)) },
      {
        edges: [
          ['s', 'b'],
          ['b', 'c'],
          ['s', 'd'],
          ['x', 'd'],
        ],
      },
    ),
    event: { type: 'advance' },
    effects: [create(['d', 1], ['b', 1, 0, 0, true], ['c', 1, 0, 0, true])],
  },
  {
    path: 'CONTINUE: once nothing runs and what the failure blocks cannot start, FAILURE',
    given: state(
      ['a', 'b', 'c'],
      { a: ended(A1, 'FAILURE'), c: ended(at(31)) },
      {
        edges: [['a', 'b']],
        policy: 'CONTINUE',
        mode: { kind: 'running', failure: 'task a ended FAILURE' },
      },
    ),
    event: { type: 'advance' },
    effects: [{ kind: 'finish', state: 'FAILURE', message: 'task a ended FAILURE' }],
  },
  {
    path: 'CONTINUE: a task not downstream of the failure still starts',
    given: state(
      ['a', 'b', 'c'],
      { a: ended(A1, 'FAILURE') },
      {
        edges: [['a', 'b']],
        policy: 'CONTINUE',
        mode: { kind: 'running', failure: 'task a ended FAILURE' },
      },
    ),
    event: { type: 'advance' },
    effects: [create(['c', 1])],
  },
  {
    path: 'running, nothing runs and nothing can start (never for a valid DAG): FAILURE, not stuck',
    given: state(['a', 'b'], { a: ended(A1, 'FAILURE') }),
    event: { type: 'advance' },
    effects: [{ kind: 'finish', state: 'FAILURE', message: 'nothing runs and nothing can start' }],
  },
  {
    path: 'failing: what has not started is KILL, a waiting retry FAILURE, running tasks finish',
    given: state(
      ['a', 'b', 'c', 'd'],
      { a: ended(A1, 'FAILURE'), b: submitted(B1), c: delayed(at(31)), d: running(at(41)) },
      {
        edges: [],
        mode: { kind: 'failing', reason: 'task a ended FAILURE' },
      },
    ),
    event: { type: 'advance' },
    effects: [
      markState([21], ['SUBMITTED_SUCCESS'], 'KILL', 'not started: the workflow failed'),
      { kind: 'clearTimer', key: 'retry:c' },
      markState([31], ['DELAY_EXECUTION'], 'FAILURE', 'not retried: the workflow failed'),
    ],
    slots: { b: ended(B1, 'KILL', null), c: ended(at(31), 'FAILURE') },
  },
  {
    path: 'failing: once nothing runs, FAILURE with the reason',
    given: state(
      ['a', 'b'],
      { a: ended(A1, 'FAILURE') },
      { mode: { kind: 'failing', reason: 'task a ended FAILURE' } },
    ),
    event: { type: 'advance' },
    effects: [{ kind: 'finish', state: 'FAILURE', message: 'task a ended FAILURE' }],
  },
  {
    path: 'pausing: unstarted → PAUSE, a waiting retry → FAILURE kept for the resume (counted), then PAUSE',
    given: state(['a', 'b'], { a: submitted(A1), b: delayed(B1) }, { edges: [], mode: { kind: 'pausing' } }),
    event: { type: 'advance' },
    effects: [
      markState([11], ['SUBMITTED_SUCCESS'], 'PAUSE', 'not started: the workflow is pausing'),
      { kind: 'clearTimer', key: 'retry:b' },
      markState(
        [21],
        ['DELAY_EXECUTION'],
        'FAILURE',
        'not retried yet: the workflow is pausing (a resume retries it)',
      ),
      { kind: 'finish', state: 'PAUSE', message: undefined },
    ],
    slots: {
      a: pending({ last: { at: A1, state: 'PAUSE', host: null } }),
      b: pending({
        next: { retriesUsed: 1, faultReruns: 0 },
        last: { at: B1, state: 'FAILURE', host: 'w1' },
      }),
    },
  },
  {
    path: 'stopping: unstarted and waiting → KILL; running tasks are killed (live workers only) and KILL; STOP',
    given: state(
      ['a', 'b', 'c', 'd', 'e'],
      {
        a: submitted(A1, { parked: true }),
        b: delayed(B1),
        c: running(at(31)),
        d: running(at(41), 'w9'),
        e: resolving(at(51)),
      },
      { edges: [], mode: { kind: 'stopping', endAs: 'STOP', reason: 'stop requested' } },
    ),
    event: { type: 'advance' },
    effects: [
      { kind: 'clearTimer', key: 'park:a' },
      markState([11], ['SUBMITTED_SUCCESS'], 'KILL', 'not started: the workflow is stopping'),
      { kind: 'clearTimer', key: 'retry:b' },
      markState([21], ['DELAY_EXECUTION'], 'KILL', 'not retried: the workflow is stopping'),
      {
        kind: 'kill',
        targets: [
          { rowId: 31, worker: 'w1' },
          { rowId: 51, worker: 'w1' },
        ],
        wait: true,
      },
      markState([31, 41, 51], ACTIVE, 'KILL', 'stopped by request'),
      { kind: 'finish', state: 'STOP', message: undefined },
    ],
  },
  {
    path: 'the workflow timeout stops the run and ends it FAILURE with a message',
    given: state(['a'], { a: running(A1) }),
    event: { type: 'timer', key: 'timeout' },
    effects: [
      { kind: 'kill', targets: [{ rowId: 11, worker: 'w1' }], wait: true },
      markState([11], ACTIVE, 'KILL', 'stopped: the workflow timed out'),
      { kind: 'finish', state: 'FAILURE', message: 'the workflow timed out' },
    ],
  },
  {
    path: 'a definition that cannot run fails the instance at once',
    given: adoptRun({
      instanceId: 7,
      epoch: 1,
      commandType: 'START_PROCESS',
      state: 'RUNNING_EXECUTION',
      graph: new Error('the edges form a cycle'),
      latest: [],
      failurePolicy: 'END',
      maxFaultReruns: 3,
      timings: { parkedRetryMs: 5000, resolveBackoffMinMs: 250, resolveBackoffMaxMs: 5000 },
    }),
    event: { type: 'start' },
    effects: [{ kind: 'finish', state: 'FAILURE', message: 'cannot run: the edges form a cycle' }],
  },
];

const dispatch: Row[] = [
  {
    path: 'new attempts come back (created) and go out: DISPATCH written before the call',
    given: state(['a', 'b'], {
      a: { kind: 'creating', attempt: 1, next: { retriesUsed: 0, faultReruns: 0 } },
    }),
    event: { type: 'created', rows: [row(11, 'a', 'SUBMITTED_SUCCESS')] },
    effects: dispatchTo(11, 'a', 'w1'),
    slots: { a: dispatching(A1) },
  },
  {
    path: 'a worker that ended the previous attempt itself is avoided when another is live',
    given: state(['a'], {
      a: { kind: 'creating', attempt: 2, next: { retriesUsed: 0, faultReruns: 1 }, avoid: 'w1' },
    }),
    event: { type: 'created', rows: [row(12, 'a', 'SUBMITTED_SUCCESS', { attempt: 2, faultReruns: 1 })] },
    effects: dispatchTo(12, 'a', 'w2', 2),
  },
  {
    path: 'accepted: on the worker, with the process that took it; counted for worker selection',
    given: state(['a'], { a: dispatching(A1) }),
    event: {
      type: 'dispatchAnswered',
      rowId: 11,
      worker: 'w1',
      accepted: true,
      reason: '',
      incarnation: 1000,
    },
    effects: [{ kind: 'noteAssigned', worker: 'w1' }],
    slots: { a: running(A1, 'w1', { started: false, incarnation: 1000 }) },
  },
  {
    path: 'accepted by the very process reported lost meanwhile: run again',
    given: state(['a'], { a: dispatching(A1, 'w1', { lostDuring: 1000 }) }),
    event: {
      type: 'dispatchAnswered',
      rowId: 11,
      worker: 'w1',
      accepted: true,
      reason: '',
      incarnation: 1000,
    },
    effects: [markState([11], ACTIVE, 'NEED_FAULT_TOLERANCE', 'worker w1 lost'), create(['a', 2, 0, 1])],
  },
  {
    path: 'accepted by a newer process than the one reported lost: it stays',
    given: state(['a'], { a: dispatching(A1, 'w1', { lostDuring: 1000 }) }),
    event: {
      type: 'dispatchAnswered',
      rowId: 11,
      worker: 'w1',
      accepted: true,
      reason: '',
      incarnation: 2000,
    },
    effects: [{ kind: 'noteAssigned', worker: 'w1' }],
    slots: { a: running(A1, 'w1', { started: false, incarnation: 2000 }) },
  },
  {
    path: 'refused: the next worker, the same attempt (DISPATCH moves on from the refusing worker)',
    given: state(['a'], { a: dispatching(A1) }),
    event: { type: 'dispatchAnswered', rowId: 11, worker: 'w1', accepted: false, reason: 'over capacity' },
    effects: dispatchTo(11, 'a', 'w2'),
    slots: { a: dispatching(A1, 'w2', { tried: ['w1', 'w2'] }) },
  },
  {
    path: 'refused by the last worker: back to SUBMITTED_SUCCESS and parked until a worker appears',
    given: state(['a'], { a: dispatching(A1, 'w2', { tried: ['w1', 'w2'] }) }),
    event: { type: 'dispatchAnswered', rowId: 11, worker: 'w2', accepted: false, reason: 'over capacity' },
    effects: [
      { kind: 'markUndispatched', rowId: 11, worker: 'w2' },
      { kind: 'setTimer', key: 'park:a', ms: 5000 },
    ],
    slots: { a: submitted(A1, { tried: ['w1', 'w2'], parked: true }) },
  },
  {
    path: 'refused while the run fails: the attempt never started, KILL',
    given: state(
      ['a', 'b'],
      { a: dispatching(A1), b: ended(B1, 'FAILURE') },
      {
        edges: [],
        mode: { kind: 'failing', reason: 'task b ended FAILURE' },
      },
    ),
    event: { type: 'dispatchAnswered', rowId: 11, worker: 'w1', accepted: false, reason: 'draining' },
    effects: [
      markState([11], ['DISPATCH'], 'KILL', 'not started: the workflow failed'),
      { kind: 'finish', state: 'FAILURE', message: 'task b ended FAILURE' },
    ],
  },
  {
    path: 'never sent (no connection): like a refusal, the next worker',
    given: state(['a'], { a: dispatching(A1) }),
    event: { type: 'dispatchFailed', rowId: 11, worker: 'w1', ambiguous: false, reason: 'ECONNREFUSED' },
    effects: dispatchTo(11, 'a', 'w2'),
  },
  {
    path: 'ambiguous: it may run there, so only TakeOver on that worker settles it',
    given: state(['a'], { a: dispatching(A1) }),
    event: { type: 'dispatchFailed', rowId: 11, worker: 'w1', ambiguous: true, reason: 'deadline' },
    effects: [{ kind: 'takeOver', rowId: 11, name: 'a', worker: 'w1' }],
    slots: { a: resolving(A1) },
  },
  {
    path: 'ambiguous on a worker that is already gone: the worker-loss path (a new attempt)',
    given: state(['a'], { a: dispatching(A1) }),
    event: { type: 'dispatchFailed', rowId: 11, worker: 'w1', ambiguous: true, reason: 'dropped' },
    env: env({ live: ['w2'] }),
    effects: [markState([11], ACTIVE, 'NEED_FAULT_TOLERANCE', 'worker w1 lost'), create(['a', 2, 0, 1])],
  },
  {
    path: 'a Dispatch that landed after its attempt was given up (KILL) is killed',
    given: state(['a'], { a: ended(A1, 'KILL') }),
    event: { type: 'dispatchAnswered', rowId: 11, worker: 'w1', accepted: true, reason: '' },
    effects: [{ kind: 'kill', targets: [{ rowId: 11, worker: 'w1' }], wait: false }],
  },
  {
    path: 'TakeOver RUNNING: re-attached there (RUNNING_EXECUTION), with its process',
    given: state(['a'], { a: resolving(A1) }),
    event: {
      type: 'takeOverAnswered',
      rowId: 11,
      worker: 'w1',
      answer: { status: 'RUNNING', result: null, startTimeMs: 7, workerStartTimeMs: 2000 },
    },
    effects: [
      { kind: 'markStarted', rowId: 11, worker: 'w1', startMs: 7 },
      { kind: 'noteAssigned', worker: 'w1' },
    ],
    slots: { a: running(A1, 'w1', { incarnation: 2000 }) },
  },
  {
    path: 'TakeOver FINISHED: the result the worker held is applied',
    given: state(['a', 'b'], { a: resolving(A1, 'w1', { cause: 'adoption', started: true }) }),
    event: {
      type: 'takeOverAnswered',
      rowId: 11,
      worker: 'w1',
      answer: {
        status: 'FINISHED',
        startTimeMs: 10,
        result: (result(11, 'SUCCESS') as Extract<RunEvent, { type: 'taskFinished' }>).ev,
      },
    },
    effects: [finishedWrite(11, 'SUCCESS'), create(['b', 1])],
  },
  {
    path: 'TakeOver UNKNOWN: it never started (and now cannot): a new attempt, elsewhere if possible',
    given: state(['a'], { a: resolving(A1) }),
    event: {
      type: 'takeOverAnswered',
      rowId: 11,
      worker: 'w1',
      answer: { status: 'UNKNOWN', result: null, startTimeMs: 0 },
    },
    effects: [
      markState([11], ACTIVE, 'NEED_FAULT_TOLERANCE', 'Dispatch to w1 failed; the worker never started it'),
      create(['a', 2, 0, 1]),
    ],
  },
  {
    path: 'after a failover, a live worker that never had an attempt that never started: re-run, not a fault re-run',
    given: state(['a'], { a: resolving(at(11, 4, 0, 3), 'w1', { cause: 'adoption' }) }),
    event: {
      type: 'takeOverAnswered',
      rowId: 11,
      worker: 'w1',
      answer: { status: 'UNKNOWN', result: null, startTimeMs: 0 },
    },
    effects: [
      markState([11], ACTIVE, 'NEED_FAULT_TOLERANCE', 'not found on w1 after failover'),
      create(['a', 5, 0, 3]),
    ],
  },
  {
    path: 'after a failover, a worker that no longer has an attempt that started: a fault re-run (MAX_FAULT_RERUNS)',
    given: state(['a'], { a: resolving(at(11, 4, 0, 3), 'w1', { cause: 'adoption', started: true }) }),
    event: {
      type: 'takeOverAnswered',
      rowId: 11,
      worker: 'w1',
      answer: { status: 'UNKNOWN', result: null, startTimeMs: 0 },
    },
    effects: [
      markState(
        [11],
        ACTIVE,
        'FAILURE',
        'not found on w1 after failover; its worker was lost under it 4 times, more than MAX_FAULT_RERUNS (3): not run again',
      ),
      { kind: 'finish', state: 'FAILURE', message: expect.stringContaining('MAX_FAULT_RERUNS') },
    ],
  },
  {
    path: 'TakeOver failed: asked again after a backoff that doubles',
    given: state(['a'], { a: resolving(A1, 'w1', { backoffMs: 500 }) }),
    event: { type: 'takeOverFailed', rowId: 11, worker: 'w1', reason: 'unavailable' },
    effects: [{ kind: 'setTimer', key: 'resolve:a', ms: 500 }],
    slots: { a: resolving(A1, 'w1', { asking: false, backoffMs: 1000 }) },
  },
  {
    path: 'the backoff is over: TakeOver again',
    given: state(['a'], { a: resolving(A1, 'w1', { asking: false }) }),
    event: { type: 'timer', key: 'resolve:a' },
    effects: [{ kind: 'takeOver', rowId: 11, name: 'a', worker: 'w1' }],
    slots: { a: resolving(A1, 'w1', { asking: true }) },
  },
  {
    path: 'the backoff is over and the worker is gone: lost, a new attempt',
    given: state(['a'], { a: resolving(A1, 'w1', { asking: false }) }),
    event: { type: 'timer', key: 'resolve:a' },
    env: env({ live: ['w2'] }),
    effects: [
      markState([11], ACTIVE, 'NEED_FAULT_TOLERANCE', 'worker w1 lost'),
      { kind: 'clearTimer', key: 'resolve:a' },
      create(['a', 2, 0, 1]),
    ],
  },
  {
    path: 'parked tasks of a group go out when a worker of it is available',
    given: state(['a'], { a: submitted(A1, { parked: true, tried: ['w1'] }) }),
    event: { type: 'workersAvailable', group: 'g' },
    effects: [{ kind: 'clearTimer', key: 'park:a' }, ...dispatchTo(11, 'a', 'w1')],
  },
  {
    path: 'the park timer retries the group on its own',
    given: state(['a'], { a: submitted(A1, { parked: true }) }),
    event: { type: 'timer', key: 'park:a' },
    effects: [{ kind: 'clearTimer', key: 'park:a' }, ...dispatchTo(11, 'a', 'w1')],
  },
  {
    path: 'the session is back: what was held goes out',
    given: state(['a'], { a: submitted(A1) }),
    event: { type: 'sessionResumed' },
    effects: dispatchTo(11, 'a', 'w1'),
  },
  {
    path: 'a master-side task never goes to a worker',
    given: state([{ name: 'sw', type: 'SUB_WORKFLOW' }], {
      sw: { kind: 'creating', attempt: 1, next: { retriesUsed: 0, faultReruns: 0 } },
    }),
    event: { type: 'created', rows: [row(11, 'sw', 'SUBMITTED_SUCCESS')] },
    effects: [
      markState([11], ['SUBMITTED_SUCCESS'], 'RUNNING_EXECUTION', 'runs on the master'),
      { kind: 'runOnMaster', rowId: 11, name: 'sw' },
    ],
    slots: { sw: { kind: 'onMaster', at: A1 } },
  },
  {
    path: 'a master-side task ended: recorded, and the run goes on',
    given: state(['sw', 'b'], { sw: { kind: 'onMaster', at: A1 } }),
    event: { type: 'masterTaskEnded', rowId: 11, state: 'SUCCESS', message: '', outputs: { k: 'v' } },
    effects: [markState([11], ['RUNNING_EXECUTION'], 'SUCCESS', ''), create(['b', 1])],
    slots: { sw: { kind: 'ended', at: A1, state: 'SUCCESS', host: null, outputs: { k: 'v' } } },
  },
];

// ---------------------------------------------------------------- CONDITIONS and SWITCH

const A2 = at(12);
const creatingSlot = (): SlotStatus => ({
  kind: 'creating',
  attempt: 1,
  next: { retriesUsed: 0, faultReruns: 0 },
});
/** up → cond; cond → ok (success), cond → bad (failure); bad → tail. */
const conditionsRun = (up: SlotStatus, cond: SlotStatus, policy: FailurePolicy = 'END') =>
  state(
    [
      'up',
      { name: 'cond', type: 'CONDITIONS', conditions: { success: ['ok'], failure: ['bad'] } },
      'ok',
      'bad',
      'tail',
    ],
    { up, cond },
    {
      edges: [
        ['up', 'cond'],
        ['cond', 'ok'],
        ['cond', 'bad'],
        ['bad', 'tail'],
      ],
      policy,
    },
  );
/** sw → A | B | D (default, when given); A → tail, B → tail (tail is reachable through A too). */
const switchRun = (x: string, withDefault = true) => ({
  ...state(
    [
      {
        name: 'sw',
        type: 'SWITCH',
        switch: {
          cases: [
            { when: "${x} == 'a'", then: 'A' },
            { when: "${x} == 'b' || ${porpoise.taskName} == 'nope'", then: 'B' },
          ],
          ...(withDefault ? { default: 'D' } : {}),
        },
      },
      'A',
      'B',
      'D',
      'tail',
    ],
    { sw: creatingSlot() },
    {
      edges: [
        ['sw', 'A'],
        ['sw', 'B'],
        ['sw', 'D'],
        ['A', 'tail'],
        ['B', 'tail'],
      ],
    },
  ),
  params: { defaults: { x: 'none' }, run: { x }, scheduleTimeMs: 0, timezone: 'UTC' },
});
const swRow = row(11, 'sw', 'SUBMITTED_SUCCESS');

const branching: Row[] = [
  {
    path: 'CONDITIONS, every upstream task succeeded: SUCCESS in one write; success targets run, failure targets (and what only they reach) SKIPPED in one createAttempts',
    given: conditionsRun(ended(A1), creatingSlot()),
    event: { type: 'created', rows: [row(12, 'cond', 'SUBMITTED_SUCCESS')] },
    effects: [
      markState([12], ['SUBMITTED_SUCCESS'], 'SUCCESS', 'every upstream task succeeded'),
      create(['ok', 1], ['bad', 1, 0, 0, true], ['tail', 1, 0, 0, true]),
    ],
    slots: { cond: { kind: 'ended', at: A2, state: 'SUCCESS', host: null, outputs: {} } },
    mode: { kind: 'running' },
  },
  {
    path: 'CONDITIONS, an upstream task failed: the failure targets run, the success targets are SKIPPED',
    given: conditionsRun(ended(A1, 'FAILURE'), creatingSlot()),
    event: { type: 'created', rows: [row(12, 'cond', 'SUBMITTED_SUCCESS')] },
    effects: [
      markState([12], ['SUBMITTED_SUCCESS'], 'SUCCESS', 'an upstream task did not succeed'),
      create(['bad', 1], ['ok', 1, 0, 0, true]),
    ],
    mode: { kind: 'running' },
  },
  {
    path: 'CONDITIONS waits for its upstream tasks to end, however they end: a failed one does not block it',
    given: conditionsRun(ended(A1, 'FAILURE'), pending()),
    event: { type: 'advance' },
    effects: [create(['cond', 1])],
  },
  {
    path: 'CONDITIONS does not start before every upstream task ended',
    given: conditionsRun(running(A1), pending()),
    event: { type: 'advance' },
    effects: [],
  },
  {
    path: 'an upstream failure a CONDITIONS task handles does not fail the run (END)',
    given: conditionsRun(running(A1), pending()),
    event: result(11, 'FAILURE'),
    effects: [finishedWrite(11, 'FAILURE'), accepted(), { kind: 'advanceLater' }],
    mode: { kind: 'running' },
  },
  {
    path: 'an upstream failure a CONDITIONS task handles does not fail the run (CONTINUE)',
    given: conditionsRun(running(A1), pending(), 'CONTINUE'),
    event: result(11, 'FAILURE'),
    effects: [finishedWrite(11, 'FAILURE'), accepted(), { kind: 'advanceLater' }],
    mode: { kind: 'running' },
  },
  {
    path: 'a failure is handled only when every task below it is a CONDITIONS task: one with a plain task beside it fails the run (END)',
    given: state(
      [
        'up',
        { name: 'cond', type: 'CONDITIONS', conditions: { success: ['ok'], failure: ['bad'] } },
        'ok',
        'bad',
        'plain',
      ],
      { up: running(A1) },
      {
        edges: [
          ['up', 'cond'],
          ['up', 'plain'],
          ['cond', 'ok'],
          ['cond', 'bad'],
        ],
      },
    ),
    event: result(11, 'FAILURE'),
    effects: [finishedWrite(11, 'FAILURE'), accepted(), { kind: 'advanceLater' }],
    mode: { kind: 'failing', reason: 'task up ended FAILURE' },
  },
  {
    path: 'a run whose only failure was handled by a CONDITIONS task ends SUCCESS',
    given: state(
      [
        'up',
        { name: 'cond', type: 'CONDITIONS', conditions: { success: ['ok'], failure: ['bad'] } },
        'ok',
        'bad',
      ],
      {
        up: ended(A1, 'FAILURE'),
        cond: ended(A2, 'SUCCESS', null),
        ok: { kind: 'skipped', at: at(13) },
        bad: ended(at(14)),
      },
      {
        edges: [
          ['up', 'cond'],
          ['cond', 'ok'],
          ['cond', 'bad'],
        ],
      },
    ),
    event: { type: 'advance' },
    effects: [{ kind: 'finish', state: 'SUCCESS', message: undefined }],
  },
  {
    path: 'SWITCH: the first case that holds picks its task; the other branches (the default too) are SKIPPED; a task also reachable through the taken one is not',
    given: switchRun('a'),
    event: { type: 'created', rows: [swRow] },
    effects: [
      markState([11], ['SUBMITTED_SUCCESS'], 'SUCCESS', 'took A'),
      create(['A', 1], ['B', 1, 0, 0, true], ['D', 1, 0, 0, true]),
    ],
    slots: { sw: { kind: 'ended', at: A1, state: 'SUCCESS', host: null, outputs: {} } },
  },
  {
    path: 'SWITCH: a later case (run params over declared ones, built-ins known)',
    given: switchRun('b'),
    event: { type: 'created', rows: [swRow] },
    effects: [
      markState([11], ['SUBMITTED_SUCCESS'], 'SUCCESS', 'took B'),
      create(['B', 1], ['A', 1, 0, 0, true], ['D', 1, 0, 0, true]),
    ],
  },
  {
    path: 'SWITCH: no case holds: the default is taken',
    given: switchRun('zzz'),
    event: { type: 'created', rows: [swRow] },
    effects: [
      markState([11], ['SUBMITTED_SUCCESS'], 'SUCCESS', 'took D'),
      create(['D', 1], ['A', 1, 0, 0, true], ['B', 1, 0, 0, true], ['tail', 1, 0, 0, true]),
    ],
  },
  {
    path: 'SWITCH: no case holds and no default: every branch SKIPPED (and what only they reach); a downstream task that is no branch runs',
    given: switchRun('zzz', false),
    event: { type: 'created', rows: [swRow] },
    effects: [
      markState([11], ['SUBMITTED_SUCCESS'], 'SUCCESS', 'no case holds and there is no default'),
      create(['D', 1], ['A', 1, 0, 0, true], ['B', 1, 0, 0, true], ['tail', 1, 0, 0, true]),
    ],
  },
];

const registryAndControl: Row[] = [
  {
    path: 'worker lost: its attempts re-run; another process on the address keeps its own',
    given: state(
      ['a', 'b', 'c'],
      {
        a: running(A1, 'w1', { incarnation: 1000 }),
        b: running(B1, 'w1', { incarnation: 2000 }),
        c: dispatching(at(31)),
      },
      { edges: [] },
    ),
    event: { type: 'workerLost', address: 'w1', incarnation: 1000 },
    effects: [markState([11], ACTIVE, 'NEED_FAULT_TOLERANCE', 'worker w1 lost'), create(['a', 2, 0, 1])],
    slots: {
      b: running(B1, 'w1', { incarnation: 2000 }),
      c: dispatching(at(31), 'w1', { lostDuring: 1000 }),
    },
  },
  {
    path: 'worker lost under a waiting TakeOver: a new attempt',
    given: state(['a'], { a: resolving(A1, 'w1', { asking: false }) }),
    event: { type: 'workerLost', address: 'w1' },
    env: env({ live: ['w2'] }),
    effects: [
      markState([11], ACTIVE, 'NEED_FAULT_TOLERANCE', 'worker w1 lost'),
      { kind: 'clearTimer', key: 'resolve:a' },
      create(['a', 2, 0, 1]),
    ],
  },
  {
    path: 'READY_PAUSE: pausing (nothing new starts; running tasks finish)',
    given: state(['a', 'b'], { a: running(A1) }),
    event: { type: 'control', state: 'READY_PAUSE' },
    effects: [],
    mode: { kind: 'pausing' },
  },
  {
    path: 'READY_STOP while pausing: stopping wins, the run ends STOP',
    given: state(['a'], { a: running(A1) }, { mode: { kind: 'pausing' } }),
    event: { type: 'control', state: 'READY_STOP' },
    effects: [
      { kind: 'kill', targets: [{ rowId: 11, worker: 'w1' }], wait: true },
      markState([11], ACTIVE, 'KILL', 'stopped by request'),
      { kind: 'finish', state: 'STOP', message: undefined },
    ],
  },
  {
    path: 'the stored state is final: our finish landed (its answer was lost); nothing more',
    given: state(['a'], { a: ended(A1) }),
    event: { type: 'control', state: 'SUCCESS' },
    effects: [],
    mode: { kind: 'finished', state: 'SUCCESS' },
  },
  {
    path: 'a closed run writes nothing',
    given: state(['a'], { a: running(A1) }, { mode: { kind: 'closed', reason: 'dropped' } }),
    event: result(11, 'SUCCESS'),
    effects: [],
  },
];

const readBack: Row[] = [
  {
    path: 'read back: DISPATCH stored but not known as sent → sent again to that worker only',
    given: state(['a'], { a: submitted(A1) }),
    event: {
      type: 'reloaded',
      rows: [row(11, 'a', 'DISPATCH', { host: 'w1' })],
      instanceState: 'RUNNING_EXECUTION',
    },
    effects: [{ kind: 'dispatch', rowId: 11, attempt: 1, name: 'a', worker: 'w1' }],
    slots: { a: dispatching(A1, 'w1') },
  },
  {
    path: 'read back: a Dispatch in flight is asked again (its answer may be lost with the error)',
    given: state(['a'], { a: dispatching(A1) }),
    event: {
      type: 'reloaded',
      rows: [row(11, 'a', 'DISPATCH', { host: 'w1' })],
      instanceState: 'RUNNING_EXECUTION',
    },
    effects: [{ kind: 'dispatch', rowId: 11, attempt: 1, name: 'a', worker: 'w1' }],
  },
  {
    path: 'read back: an active row on a worker that is gone → lost',
    given: state(['a'], { a: running(A1) }),
    event: {
      type: 'reloaded',
      rows: [row(11, 'a', 'RUNNING_EXECUTION', { host: 'w1' })],
      instanceState: 'RUNNING_EXECUTION',
    },
    env: env({ live: ['w2'] }),
    effects: [markState([11], ACTIVE, 'NEED_FAULT_TOLERANCE', 'its worker is gone'), create(['a', 2, 0, 1])],
  },
  {
    path: 'read back after a missed write: the rows win, and the worker event is answered from them',
    given: state(['a', 'b'], { a: running(A1) }),
    event: {
      type: 'reloaded',
      rows: [row(11, 'a', 'SUCCESS', { host: 'w1' })],
      instanceState: 'RUNNING_EXECUTION',
      answering: result(11, 'SUCCESS') as Extract<RunEvent, { type: 'taskFinished' }>,
    },
    effects: [accepted('already recorded'), create(['b', 1])],
    slots: { a: ended(A1) },
  },
  {
    path: 'read back: a waiting retry keeps the delay the database counts',
    given: state(['a'], { a: delayed(A1) }),
    event: {
      type: 'reloaded',
      rows: [row(11, 'a', 'DELAY_EXECUTION', { host: 'w1', retryDueInMs: 300 })],
      instanceState: 'RUNNING_EXECUTION',
    },
    effects: [{ kind: 'setTimer', key: 'retry:a', ms: 300 }],
  },
  {
    path: 'read back: a stop requested meanwhile is applied',
    given: state(['a'], { a: submitted(A1) }),
    event: { type: 'reloaded', rows: [row(11, 'a', 'SUBMITTED_SUCCESS')], instanceState: 'READY_STOP' },
    effects: [
      markState([11], ['SUBMITTED_SUCCESS'], 'KILL', 'not started: the workflow is stopping'),
      { kind: 'finish', state: 'STOP', message: undefined },
    ],
  },
];

// ---------------------------------------------------------------- DEPENDENT

const DEP: Def = {
  name: 'dep',
  type: 'DEPENDENT',
  timeoutMs: 60_000,
  dependent: { workflowCode: 'wf_up', interval: 'day', offset: 0, checkIntervalMs: 10_000 },
};
/** dep -> b */
const dependentRun = (dep: SlotStatus, opts: { mode?: RunMode; def?: Partial<Def> } = {}) =>
  state([{ ...DEP, ...opts.def }, 'b'], { dep }, { mode: opts.mode });
const waitingDep = (elapsedMs?: number): SlotStatus =>
  elapsedMs === undefined ? { kind: 'onMaster', at: A1 } : { kind: 'onMaster', at: A1, elapsedMs };
const checkDep = { kind: 'checkDependency', rowId: 11, name: 'dep' };
const clearDepTimers = [
  { kind: 'clearTimer', key: 'depend:dep' },
  { kind: 'clearTimer', key: 'taskTimeout:dep' },
];
const checked = (outcome: 'met' | 'failed' | 'waiting', message = `outcome ${outcome}`): RunEvent => ({
  type: 'dependencyChecked',
  rowId: 11,
  outcome,
  message,
});

const dependent: Row[] = [
  {
    path: 'a DEPENDENT task goes RUNNING_EXECUTION on the master (no worker), its timeout set, checked at once',
    given: dependentRun(creatingSlot()),
    event: { type: 'created', rows: [row(11, 'dep', 'SUBMITTED_SUCCESS')] },
    effects: [
      markState([11], ['SUBMITTED_SUCCESS'], 'RUNNING_EXECUTION', 'runs on the master'),
      { kind: 'setTimer', key: 'taskTimeout:dep', ms: 60_000 },
      checkDep,
    ],
    slots: { dep: waitingDep() },
  },
  {
    path: 'without a timeoutMs it waits with no timeout',
    given: dependentRun(creatingSlot(), { def: { timeoutMs: 0 } }),
    event: { type: 'created', rows: [row(11, 'dep', 'SUBMITTED_SUCCESS')] },
    effects: [markState([11], ['SUBMITTED_SUCCESS'], 'RUNNING_EXECUTION', 'runs on the master'), checkDep],
  },
  {
    path: 'waiting: checked again in checkIntervalMs',
    given: dependentRun(waitingDep()),
    event: checked('waiting'),
    effects: [{ kind: 'setTimer', key: 'depend:dep', ms: 10_000 }],
    slots: { dep: waitingDep() },
  },
  {
    path: 'waiting -> the re-check timer fires -> checked again',
    given: dependentRun(waitingDep()),
    event: { type: 'timer', key: 'depend:dep' },
    effects: [checkDep],
  },
  {
    path: 'met: SUCCESS with the check’s message, its timers cleared, what follows starts',
    given: dependentRun(waitingDep()),
    event: checked('met', 'workflow wf_up succeeded in instance 5'),
    effects: [
      markState([11], ['RUNNING_EXECUTION'], 'SUCCESS', 'workflow wf_up succeeded in instance 5'),
      ...clearDepTimers,
      create(['b', 1]),
    ],
    slots: { dep: { kind: 'ended', at: A1, state: 'SUCCESS', host: null, outputs: {} } },
  },
  {
    path: 'a run of the awaited workflow ended (NOTIFY): checked now, not at the next interval',
    given: dependentRun(waitingDep()),
    event: { type: 'dependencyWake', code: 'wf_up' },
    effects: [checkDep],
  },
  {
    path: 'a run of another workflow ended: nothing',
    given: dependentRun(waitingDep()),
    event: { type: 'dependencyWake', code: 'wf_other' },
    effects: [],
  },
  {
    path: 'failed (the latest run of the window ended FAILURE or STOP): FAILURE, the run fails (END)',
    given: dependentRun(waitingDep()),
    event: checked('failed', 'its latest run, instance 5, ended FAILURE'),
    effects: [
      markState([11], ['RUNNING_EXECUTION'], 'FAILURE', 'its latest run, instance 5, ended FAILURE'),
      ...clearDepTimers,
      { kind: 'finish', state: 'FAILURE', message: 'task dep ended FAILURE' },
    ],
    slots: { dep: { kind: 'ended', at: A1, state: 'FAILURE', host: null, outputs: {} } },
    mode: { kind: 'failing', reason: 'task dep ended FAILURE' },
  },
  {
    path: 'timeout: FAILURE naming what it waited for',
    given: dependentRun(waitingDep()),
    event: { type: 'timer', key: 'taskTimeout:dep' },
    effects: [
      markState(
        [11],
        ['RUNNING_EXECUTION'],
        'FAILURE',
        'the dependency on workflow wf_up was not met within 60000 ms',
      ),
      ...clearDepTimers,
      { kind: 'finish', state: 'FAILURE', message: 'task dep ended FAILURE' },
    ],
  },
  {
    path: 'an answer for an attempt that no longer waits is dropped (a wake and a timer both asked)',
    given: dependentRun({ kind: 'ended', at: A1, state: 'SUCCESS', host: null, outputs: {} }, {}),
    event: checked('failed'),
    effects: [],
  },
  {
    path: 'pause while waiting: it ends PAUSE at once (it does not hold the pause), the run pauses',
    given: dependentRun(waitingDep()),
    event: { type: 'control', state: 'READY_PAUSE' },
    effects: [
      ...clearDepTimers,
      markState([11], ['RUNNING_EXECUTION'], 'PAUSE', 'not waited for: the workflow is pausing'),
      { kind: 'finish', state: 'PAUSE', message: undefined },
    ],
    slots: {
      dep: pending({ last: { at: A1, state: 'PAUSE', host: null } }),
    },
  },
  {
    path: 'a failing run does not wait for it either: KILL',
    given: state(
      [DEP, 'x'],
      { dep: waitingDep(), x: ended(B1, 'FAILURE') },
      {
        edges: [],
        mode: { kind: 'failing', reason: 'task x ended FAILURE' },
      },
    ),
    event: { type: 'advance' },
    effects: [
      ...clearDepTimers,
      markState([11], ['RUNNING_EXECUTION'], 'KILL', 'not waited for: the workflow failed'),
      { kind: 'finish', state: 'FAILURE', message: 'task x ended FAILURE' },
    ],
  },
  {
    path: 'CONTINUE: another task failed, the DEPENDENT task waits on',
    given: state(
      [DEP, 'x'],
      { dep: waitingDep(), x: ended(B1, 'FAILURE') },
      {
        edges: [],
        mode: { kind: 'running', failure: 'task x ended FAILURE' },
        policy: 'CONTINUE',
      },
    ),
    event: { type: 'advance' },
    effects: [],
  },
  {
    path: 'stop while waiting: KILL, the run ends STOP',
    given: dependentRun(waitingDep()),
    event: { type: 'control', state: 'READY_STOP' },
    effects: [
      markState([11], ACTIVE, 'KILL', 'stopped by request'),
      { kind: 'finish', state: 'STOP', message: undefined },
    ],
  },
  {
    path: 'adopted waiting (failover): checked at once, with the rest of its timeout (from its start_time)',
    given: dependentRun(waitingDep(45_000)),
    event: { type: 'start' },
    effects: [{ kind: 'setTimer', key: 'taskTimeout:dep', ms: 15_000 }, checkDep],
  },
  {
    path: 'adopted past its timeout: fails at once',
    given: dependentRun(waitingDep(60_000)),
    event: { type: 'start' },
    effects: [
      markState(
        [11],
        ['RUNNING_EXECUTION'],
        'FAILURE',
        'the dependency on workflow wf_up was not met within 60000 ms',
      ),
      ...clearDepTimers,
      { kind: 'finish', state: 'FAILURE', message: 'task dep ended FAILURE' },
    ],
  },
  {
    path: 'adopted while READY_PAUSE: not checked, paused at once',
    given: dependentRun(waitingDep(1000), { mode: { kind: 'pausing' } }),
    event: { type: 'start' },
    effects: [
      ...clearDepTimers,
      markState([11], ['RUNNING_EXECUTION'], 'PAUSE', 'not waited for: the workflow is pausing'),
      { kind: 'finish', state: 'PAUSE', message: undefined },
    ],
  },
  {
    path: 'read back RUNNING_EXECUTION (its start write’s answer was lost): waited on, timeout from the row',
    given: dependentRun(submitted(A1)),
    event: {
      type: 'reloaded',
      rows: [row(11, 'dep', 'RUNNING_EXECUTION', { runningForMs: 1000 })],
      instanceState: 'RUNNING_EXECUTION',
    },
    effects: [{ kind: 'setTimer', key: 'taskTimeout:dep', ms: 59_000 }, checkDep],
    slots: { dep: waitingDep(1000) },
  },
];

// ---------------------------------------------------------------- task groups

const grouped = (name: string, taskGroup = 'etl'): Def => ({ name, taskGroup });
const queued = (a: AttemptRef, group = 'etl'): SlotStatus => ({ kind: 'queued', at: a, group, tried: [] });
const requestSlot = (rowIds: number[], group = 'etl') => ({ kind: 'requestSlot', group, rowIds });
const groupTimer = (group = 'etl') => ({ kind: 'setTimer', key: `group:${group}`, ms: 5000 });
const C1 = at(31);

/** A failover's adoption (RECOVER_TOLERANCE_FAULT_PROCESS) of the given latest rows. */
function adopted(tasks: Array<string | Def>, latest: StoredRow[]): RunState {
  const base = state(tasks);
  return adoptRun({
    instanceId: 7,
    epoch: 3,
    commandType: 'RECOVER_TOLERANCE_FAULT_PROCESS',
    state: 'RUNNING_EXECUTION',
    graph: base.graph,
    latest,
    failurePolicy: 'END',
    maxFaultReruns: 3,
    timings: base.timings,
  });
}

const taskGroups: Row[] = [
  {
    path: 'a new attempt of a task group asks for a slot (queue row + grant pass), not for a worker',
    given: state([grouped('a')], {
      a: { kind: 'creating', attempt: 1, next: { retriesUsed: 0, faultReruns: 0 } },
    }),
    event: { type: 'created', rows: [row(11, 'a', 'SUBMITTED_SUCCESS')] },
    effects: [requestSlot([11]), groupTimer()],
    slots: { a: queued(A1) },
  },
  {
    path: 'a second attempt queued for the same group shares its fallback timer',
    given: state(
      [grouped('a'), grouped('b')],
      {
        a: { kind: 'creating', attempt: 1, next: { retriesUsed: 0, faultReruns: 0 } },
        b: queued(B1),
      },
      { edges: [] },
    ),
    event: { type: 'created', rows: [row(11, 'a', 'SUBMITTED_SUCCESS')] },
    effects: [requestSlot([11])],
    slots: { a: queued(A1), b: queued(B1) },
  },
  {
    path: 'a task without a task group goes to a worker at once, as before',
    given: state(['a', grouped('b')], {
      a: { kind: 'creating', attempt: 1, next: { retriesUsed: 0, faultReruns: 0 } },
    }),
    event: { type: 'created', rows: [row(11, 'a', 'SUBMITTED_SUCCESS')] },
    effects: [...dispatchTo(11, 'a', 'w1')],
  },
  {
    path: 'slotGranted: the queued attempt holds a slot and goes out to a worker',
    given: state([grouped('a')], { a: queued(A1) }),
    event: { type: 'slotGranted', rowIds: [11] },
    effects: [...dispatchTo(11, 'a', 'w1')],
    slots: { a: dispatching(A1, 'w1') },
  },
  {
    path: 'slotGranted with no live worker: it parks holding its slot (no second request)',
    given: state([grouped('a')], { a: queued(A1) }),
    event: { type: 'slotGranted', rowIds: [11] },
    env: env({ live: [] }),
    effects: [{ kind: 'setTimer', key: 'park:a', ms: 5000 }],
    slots: { a: submitted(A1, { parked: true, granted: true }) },
  },
  {
    path: 'slotGranted for an attempt that is not queued (any more) changes nothing',
    given: state([grouped('a')], { a: running(A1) }),
    event: { type: 'slotGranted', rowIds: [11, 99] },
    effects: [],
    slots: { a: running(A1) },
  },
  {
    path: 'a granted attempt refused by its worker keeps its slot and goes to the next worker',
    given: state([grouped('a')], { a: dispatching(A1, 'w1') }),
    event: { type: 'dispatchAnswered', rowId: 11, worker: 'w1', accepted: false, reason: 'full' },
    effects: [...dispatchTo(11, 'a', 'w2')],
  },
  {
    path: 'stop while queued: KILL, in the write that drops its queue row (no slot leaks)',
    given: state([grouped('a')], { a: queued(A1) }),
    event: { type: 'control', state: 'READY_STOP' },
    effects: [
      markState([11], ['SUBMITTED_SUCCESS'], 'KILL', 'not started: the workflow is stopping'),
      { kind: 'finish', state: 'STOP', message: undefined },
    ],
    slots: { a: ended(A1, 'KILL', null) },
  },
  {
    path: 'pause while queued: PAUSE (its queue row dropped); a resume asks for a slot again',
    given: state([grouped('a')], { a: queued(A1) }),
    event: { type: 'control', state: 'READY_PAUSE' },
    effects: [
      markState([11], ['SUBMITTED_SUCCESS'], 'PAUSE', 'not started: the workflow is pausing'),
      { kind: 'finish', state: 'PAUSE', message: undefined },
    ],
    slots: {
      a: pending({ next: { retriesUsed: 0, faultReruns: 0 }, last: { at: A1, state: 'PAUSE', host: null } }),
    },
  },
  {
    path: 'failing (END) while another task is queued: the queued one ends KILL, nothing waits for a slot',
    given: state(
      [grouped('a'), 'b'],
      { a: queued(A1), b: running(B1) },
      {
        edges: [],
        mode: { kind: 'failing', reason: 'task c ended FAILURE' },
      },
    ),
    event: { type: 'advance' },
    effects: [markState([11], ['SUBMITTED_SUCCESS'], 'KILL', 'not started: the workflow failed')],
    slots: { a: ended(A1, 'KILL', null), b: running(B1) },
  },
  {
    path: 'failover adoption: a SUBMITTED_SUCCESS attempt of a group asks again (idempotent: place and grant kept)',
    given: adopted(
      [grouped('a'), grouped('b')],
      [row(11, 'a', 'SUBMITTED_SUCCESS'), row(21, 'b', 'SUCCESS')],
    ),
    event: { type: 'start' },
    effects: [requestSlot([11]), groupTimer()],
    slots: { a: queued(A1) },
  },
  {
    path: 'failover adoption: an attempt of a group found on a worker keeps its slot and is asked about',
    given: adopted([grouped('a')], [row(11, 'a', 'RUNNING_EXECUTION', { host: 'w1' })]),
    event: { type: 'start' },
    effects: [{ kind: 'takeOver', rowId: 11, name: 'a', worker: 'w1' }],
  },
  {
    path: "the group's fallback timer (a lost NOTIFY): every queued attempt of that group asks again",
    given: state(
      [grouped('a'), grouped('b'), grouped('c', 'other')],
      { a: queued(A1), b: queued(B1), c: queued(C1, 'other') },
      { edges: [] },
    ),
    event: { type: 'timer', key: 'group:etl' },
    effects: [requestSlot([11, 21]), groupTimer()],
  },
  {
    path: "the group's fallback timer with nothing queued for it any more does nothing",
    given: state([grouped('a')], { a: running(A1) }),
    event: { type: 'timer', key: 'group:etl' },
    effects: [],
  },
  {
    path: 'the task group was deleted after the workflow was saved: the queued attempt fails',
    given: state([grouped('a')], { a: queued(A1) }),
    event: { type: 'payloadRefused', rowId: 11, message: 'task group "etl" does not exist' },
    effects: [
      markState([11], ['SUBMITTED_SUCCESS', 'DISPATCH'], 'FAILURE', 'task group "etl" does not exist'),
      { kind: 'finish', state: 'FAILURE', message: 'task a ended FAILURE' },
    ],
  },
  {
    path: 'read back: a queued attempt the rows agree with asks for its slot again',
    given: state([grouped('a')], { a: queued(A1) }),
    event: {
      type: 'reloaded',
      rows: [row(11, 'a', 'SUBMITTED_SUCCESS')],
      instanceState: 'RUNNING_EXECUTION',
    },
    effects: [requestSlot([11])],
    slots: { a: queued(A1) },
  },
  {
    path: 'a lost worker frees the slot (NEED_FAULT_TOLERANCE); the re-run queues again at the back',
    given: state([grouped('a')], { a: running(A1) }),
    event: { type: 'workerLost', address: 'w1' },
    effects: [markState([11], ACTIVE, 'NEED_FAULT_TOLERANCE', 'worker w1 lost'), create(['a', 2, 0, 1])],
  },
];

describe('run transition', () => {
  describe.each([
    ['adoption and start', adoption],
    ['worker events', workerEvents],
    ['advance by mode', progress],
    ['dispatch, parking, resolving', dispatch],
    ['registry and control', registryAndControl],
    ['reading the rows back', readBack],
    ['CONDITIONS and SWITCH', branching],
    ['DEPENDENT', dependent],
    ['task groups', taskGroups],
  ])('%s', (_group, rows) => {
    it.each(rows.map((r) => [r.path, r] as const))('%s', (_path, r) => {
      check(r);
    });
  });

  it('SWITCH: an expression that cannot be evaluated fails the task with the message (and the run, END)', () => {
    const given = switchRun('a');
    const broken = {
      ...given,
      graph: {
        ...given.graph,
        tasks: new Map(
          [...given.graph.tasks].map(([n, d]) => [
            n,
            n === 'sw' ? { ...d, switch: { cases: [{ when: '${nope} == 1', then: 'A' }] } } : d,
          ]),
        ),
      },
    };
    const { state: next, effects } = transition(broken, { type: 'created', rows: [swRow] }, env());
    const write = effects.find((e) => e.kind === 'markState');
    expect(write).toMatchObject({ rowIds: [11], from: ['SUBMITTED_SUCCESS'], state: 'FAILURE' });
    expect(write?.kind === 'markState' && write.message).toContain('nope');
    expect(next.mode.kind).toBe('failing');
    expect(effects.filter((e) => e.kind === 'createAttempts')).toEqual([]);
  });

  it('adoption: a DEPENDENT row RUNNING_EXECUTION on no worker waits on the master, with how long it ran', () => {
    const given = state([DEP]);
    const adopted = adoptRun({
      instanceId: 7,
      epoch: 3,
      commandType: 'RECOVER_TOLERANCE_FAULT_PROCESS',
      state: 'RUNNING_EXECUTION',
      graph: given.graph,
      latest: [row(11, 'dep', 'RUNNING_EXECUTION', { runningForMs: 45_000 })],
      failurePolicy: 'END',
      maxFaultReruns: 3,
      timings: given.timings,
    });
    expect(slotOf(adopted, 'dep')?.status).toEqual(waitingDep(45_000));
  });

  it('never changes the state it was given', () => {
    const given = state(['a', 'b'], { a: running(A1) });
    const before = JSON.stringify(given.slots);
    transition(given, result(11, 'SUCCESS'), env());
    expect(JSON.stringify(given.slots)).toBe(before);
  });
});
