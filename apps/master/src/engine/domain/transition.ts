/**
 * The run engine's transition function: (state, event, env) → (state, effects). Pure: no I/O,
 * no clock, no Nest; `env` is a read-only view of the registry at the moment of the event. The
 * runner shell (workflow-runner.ts) feeds events in and runs the effects (run-effects.ts).
 */
import type { WorkflowState } from '@porpoise/common';
import type { EventAck } from '@porpoise/rpc';
import { advance } from './advance';
import { Draft, type Step } from './draft';
import {
  beginResolve,
  sendOut,
  onDispatchAnswered,
  onDispatchFailed,
  onGroupTimer,
  onPayloadRefused,
  onSlotGranted,
  onResolveTimer,
  onTakeOverAnswered,
  onTakeOverFailed,
  unpark,
  type After,
} from './dispatch';
import { refOf, restoredStatus } from './adoption';
import {
  onDependTimer,
  onDependencyChecked,
  onDependencyWake,
  onTaskTimeout,
  startDependent,
} from './dependent';
import type { RunEnv, RunEvent, StoredRow, WorkerEvent } from './run-events';
import {
  currentRow,
  differs,
  isOpen,
  onWorker,
  type CurrentRow,
  type RunState,
  type SlotStatus,
} from './run-state';
import { handledFailure } from './branching';
import { alreadyRecorded, budgetAfter, withFailure } from './task-fate';
import { applyResult, loseAttempts, noteFailure, type LostAttempt } from './task-steps';

const ack = (status: EventAck['status'], reason = ''): EventAck => ({ status, reason });

export function transition(state: RunState, event: RunEvent, env: RunEnv): Step {
  const d = new Draft(state, env);
  if (!isOpen(d.mode)) {
    // Nothing is written any more; a worker event is answered by the shell (closedAck).
    return d.done();
  }
  const after = handle(d, event);
  if (after === 'advance') advance(d);
  return d.done();
}

function handle(d: Draft, event: RunEvent): After {
  switch (event.type) {
    case 'start':
      return start(d, event.timeoutInMs);
    case 'taskStarted':
      return taskStarted(d, event.ev);
    case 'taskFinished':
      return taskFinished(d, event);
    case 'dispatchAnswered':
      return onDispatchAnswered(d, event);
    case 'dispatchFailed':
      return onDispatchFailed(d, event);
    case 'payloadRefused':
      return onPayloadRefused(d, event);
    case 'takeOverAnswered':
      return onTakeOverAnswered(d, event);
    case 'takeOverFailed':
      return onTakeOverFailed(d, event);
    case 'workerLost':
      return workerLost(d, event.address, event.incarnation, event.registration);
    case 'workersAvailable':
      unpark(d, event.group);
      return 'advance';
    case 'sessionResumed':
      unpark(d, undefined);
      return 'advance';
    case 'control':
      control(d, event.state);
      return 'advance';
    case 'timer':
      return timer(d, event.key);
    case 'advance':
      return 'advance';
    case 'created':
      return created(d, event.rows);
    case 'reloaded':
      reloaded(d, event.rows, event.instanceState, event.answering);
      return 'advance';
    case 'masterTaskEnded':
      return masterTaskEnded(d, event);
    case 'childEnded':
      return childEnded(d, event);
    case 'dependencyChecked':
      return onDependencyChecked(d, event);
    case 'dependencyWake':
      return onDependencyWake(d, event.code);
    case 'slotGranted':
      return onSlotGranted(d, event.rowIds);
    case 'finished':
      d.mode = { kind: 'finished', state: event.state };
      d.log('log', `finished ${event.state}`);
      return 'quiet';
    case 'closed':
      d.mode = { kind: 'closed', reason: event.reason };
      return 'quiet';
  }
}

// ---------------------------------------------------------------- adoption

function start(d: Draft, timeoutInMs: number | undefined): After {
  const slots = d.slots();
  const carried = slots.filter((s) => s.status.kind !== 'pending').length;
  d.log('log', `adopted (epoch ${d.base.epoch}); ${slots.length} task(s), ${carried} carried over`);
  if (d.mode.kind === 'failing' && slots.length === 0) d.log('error', `${d.mode.reason}; the instance fails`);
  if (d.mode.kind !== 'stopping') {
    for (const slot of slots) {
      const s = slot.status;
      if (s.kind === 'resolving' && !s.asking) beginResolve(d, slot.name, s.at, s.worker, s.cause, s.started);
      else if (s.kind === 'delayed' && !s.due) d.setTimer(`retry:${slot.name}`, s.dueInMs ?? 0);
      // A DEPENDENT task carried over waits on, with what is left of its timeout (a pause or a
      // failing run ends it instead: advance).
      else if (s.kind === 'onMaster' && slot.def.type === 'DEPENDENT') {
        if (d.mode.kind === 'running') startDependent(d, slot.name, s.at, s.elapsedMs);
      }
      // A SUB_WORKFLOW task carried over: its child is found again (startChild answers it).
      else if (s.kind === 'onMaster') {
        d.emit({ kind: 'runOnMaster', rowId: s.at.id, name: slot.name, resume: s.paused === true });
      }
    }
  }
  if (timeoutInMs !== undefined) {
    if (timeoutInMs <= 0) timeOut(d);
    else d.setTimer('timeout', timeoutInMs);
  }
  return 'advance';
}

// ---------------------------------------------------------------- worker events

/** A worker event's attempt: its task, that task's status, and the row the status implies. */
type Located = { name: string; current: SlotStatus; row: CurrentRow };

/** Checks a worker event against the current attempt; an answer when it does not apply. */
function locate(
  d: Draft,
  ev: { taskInstanceId: number; attempt: number; workerAddress: string; epoch: number },
): Located | EventAck {
  // A newer epoch means someone took the instance after us: we are the stale one.
  if (ev.epoch > d.base.epoch) {
    return ack('NOT_OWNER', `epoch ${ev.epoch} is newer than ours (${d.base.epoch})`);
  }
  const name = d.taskOfRow(ev.taskInstanceId);
  const status = name === undefined ? undefined : d.status(name);
  const row = status === undefined ? undefined : currentRow(status);
  if (name === undefined || status === undefined || row === undefined) {
    return ack('OBSOLETE', `task instance ${ev.taskInstanceId} is not part of this run`);
  }
  if (row.at.id !== ev.taskInstanceId) {
    return ack('OBSOLETE', `task instance ${ev.taskInstanceId} was superseded by attempt ${row.at.attempt}`);
  }
  if (row.at.attempt !== ev.attempt) return ack('OBSOLETE', `attempt ${ev.attempt} is not the current one`);
  if (row.host !== ev.workerAddress) {
    return ack('OBSOLETE', `task instance ${row.at.id} is assigned to ${row.host ?? 'no worker'}`);
  }
  return { name, current: status, row };
}

const isAck = (x: Located | EventAck): x is EventAck => 'reason' in x;

function reply(d: Draft, a: EventAck): void {
  d.emit({ kind: 'reply', ack: a });
}

function taskStarted(d: Draft, ev: Extract<WorkerEvent, { type: 'taskStarted' }>['ev']): After {
  const found = locate(d, ev);
  if (isAck(found)) {
    reply(d, found);
    return 'quiet';
  }
  const { name, current: s, row } = found;
  switch (s.kind) {
    case 'dispatching':
    case 'onWorker':
    case 'resolving':
    case 'unsent': {
      if (s.kind !== 'unsent' && s.started) {
        reply(d, ack('ACCEPTED', 'already RUNNING_EXECUTION'));
        return 'quiet';
      }
      d.emit({ kind: 'markStarted', rowId: s.at.id, worker: s.worker, startMs: ev.startTimeMs });
      if (s.kind === 'dispatching' || (s.kind === 'resolving' && s.cause === 'adoption')) {
        // The Dispatch answer still tells the incarnation; after a failover the worker still
        // needs its TakeOver (the new owner's address and epoch).
        d.set(name, { ...s, started: true });
      } else {
        if (s.kind === 'resolving' && !s.asking) d.clearTimer(`resolve:${name}`);
        d.set(name, {
          kind: 'onWorker',
          at: s.at,
          worker: s.worker,
          started: true,
          incarnation: s.kind === 'onWorker' ? s.incarnation : undefined,
          registration: s.kind === 'onWorker' ? s.registration : undefined,
        });
      }
      reply(d, ack('ACCEPTED'));
      return 'quiet';
    }
    default:
      reply(d, startedAnswer(row));
      return 'quiet';
  }
}

/**
 * A TaskStarted for an attempt that is not (or no longer) on its worker: a recorded result makes
 * it a late duplicate (ACCEPTED); an attempt this run gave up (PAUSE, KILL, NEED_FAULT_TOLERANCE)
 * or never sent there must not run: OBSOLETE makes the worker kill it.
 */
function startedAnswer(row: CurrentRow): EventAck {
  switch (row.state) {
    case 'SUCCESS':
    case 'FAILURE':
    case 'DELAY_EXECUTION':
    case 'RUNNING_EXECUTION':
      return ack('ACCEPTED', `already ${row.state}`);
    default:
      return ack('OBSOLETE', `task instance ${row.at.id} is ${row.state}`);
  }
}

function taskFinished(d: Draft, event: Extract<WorkerEvent, { type: 'taskFinished' }>): After {
  const { ev } = event;
  const found = locate(d, ev);
  if (isAck(found)) {
    reply(d, found);
    return 'quiet';
  }
  const { name, current: s, row } = found;
  if (!onWorker(s)) {
    reply(
      d,
      alreadyRecorded(row.state, ev.state)
        ? ack('ACCEPTED', 'already recorded')
        : ack('OBSOLETE', `task instance ${row.at.id} is ${row.state}`),
    );
    return 'quiet';
  }
  applyResult(d, name, s.at, s.worker, ev);
  reply(d, ack('ACCEPTED'));
  // What follows (the next tasks) after the worker has its answer: its result is stored.
  d.emit({ kind: 'advanceLater' });
  return 'quiet';
}

/**
 * After a write for a worker event missed and the rows were read back: answer from what is
 * stored (the event is not applied a second time).
 */
function answerFromRows(d: Draft, event: WorkerEvent): EventAck {
  const found = locate(d, event.ev);
  if (isAck(found)) return found;
  const { row } = found;
  const recorded =
    event.type === 'taskStarted'
      ? row.state === 'RUNNING_EXECUTION'
      : alreadyRecorded(row.state, event.ev.state);
  return recorded ? ack('ACCEPTED', 'already recorded') : ack('OBSOLETE', `task instance is ${row.state}`);
}

// ---------------------------------------------------------------- registry, control, timers

/**
 * A worker process, or one registration of it, is gone: the attempts it had must run again (or
 * end, per the mode). An attempt another process, or a later registration of the same process,
 * took is not touched; one whose Dispatch is still in flight is decided by the answer (which
 * process and registration took it).
 */
function workerLost(
  d: Draft,
  address: string,
  incarnation: number | undefined,
  registration: number | undefined,
): After {
  const lost: LostAttempt[] = [];
  for (const slot of d.slots()) {
    const s = slot.status;
    if (!onWorker(s) || s.worker !== address) continue;
    if (
      s.kind === 'onWorker' &&
      (differs(s.incarnation, incarnation) || differs(s.registration, registration))
    ) {
      continue;
    }
    if (s.kind === 'dispatching') {
      d.set(slot.name, { ...s, lostDuring: incarnation ?? 'unknown', lostRegistration: registration });
      continue;
    }
    lost.push({ name: slot.name, at: s.at, worker: address });
  }
  if (lost.length === 0) return 'quiet';
  loseAttempts(d, lost, `worker ${address} lost`);
  return 'advance';
}

/** The instance's state as stored: READY_STOP / READY_PAUSE ask for a stop or pause. */
function control(d: Draft, state: WorkflowState): void {
  const mode = d.mode;
  switch (state) {
    case 'READY_STOP':
      if (mode.kind !== 'stopping') {
        d.mode = { kind: 'stopping', endAs: 'STOP', reason: 'stop requested' };
        d.log('log', 'stopping');
      }
      return;
    case 'READY_PAUSE':
      if (mode.kind === 'running') {
        // A run that already failed (CONTINUE) ends FAILURE rather than PAUSE.
        d.mode = mode.failure === undefined ? { kind: 'pausing' } : { kind: 'failing', reason: mode.failure };
        d.log('log', 'pausing');
      }
      return;
    case 'PAUSE':
    case 'STOP':
    case 'FAILURE':
    case 'SUCCESS':
      // Only the owner ends an instance: our finish landed and its answer was lost.
      d.mode = { kind: 'finished', state };
      return;
    case 'SUBMITTED_SUCCESS':
    case 'RUNNING_EXECUTION':
    case 'SERIAL_WAIT': // never an owned instance's state: only a run no master owns waits at the gate
      return;
  }
}

function timeOut(d: Draft): void {
  if (d.mode.kind === 'stopping') return;
  d.mode = { kind: 'stopping', endAs: 'FAILURE', reason: 'the workflow timed out' };
  d.log('warn', 'the workflow timed out; stopping it');
}

function timer(d: Draft, key: Extract<RunEvent, { type: 'timer' }>['key']): After {
  if (key === 'timeout') {
    timeOut(d);
    return 'advance';
  }
  const colon = key.indexOf(':');
  const kind = key.slice(0, colon);
  const name = key.slice(colon + 1);
  // A task group's name, not a task's.
  if (kind === 'group') return onGroupTimer(d, name);
  const slot = d.slot(name);
  if (slot === undefined) return 'quiet';
  const s = slot.status;
  switch (kind) {
    case 'retry':
      if (s.kind !== 'delayed') return 'quiet';
      d.set(name, { ...s, due: true });
      return 'advance';
    case 'park':
      unpark(d, slot.def.workerGroup);
      return 'advance';
    case 'depend':
      return onDependTimer(d, name);
    case 'taskTimeout':
      return onTaskTimeout(d, name);
    default:
      return onResolveTimer(d, name);
  }
}

// ---------------------------------------------------------------- write results

/**
 * The rows createAttempts / retry wrote: the attempts exist and go out at once. Only what
 * changes more than those tasks (a skip, an unexpected row) re-evaluates the whole run.
 */
function created(d: Draft, rows: readonly StoredRow[]): After {
  let after: After = 'quiet';
  const send: string[] = [];
  for (const row of rows) {
    const s = d.status(row.name);
    if (s?.kind !== 'creating' || s.attempt !== row.attempt) continue;
    d.knowRow(row.id, row.name);
    if (row.state === 'SUBMITTED_SUCCESS') {
      d.set(row.name, { kind: 'submitted', at: refOf(row), tried: [], avoid: s.avoid, parked: false });
      send.push(row.name);
    } else {
      rebuild(d, row.name, row);
      after = 'advance';
    }
  }
  if (after === 'advance') return after;
  if (d.mode.kind !== 'running') return 'advance';
  if (d.env.canStartWork) for (const name of send) sendOut(d, name);
  // A CONDITIONS / SWITCH task ended as it went out: what follows it may start now.
  return send.some((n) => d.status(n)?.kind === 'ended') ? 'advance' : 'quiet';
}

/**
 * The rows read back (after a write that missed, or an unexpected error): where memory and rows
 * agree, the slot is kept, and what may have been lost is asked again (Dispatch resent to the
 * worker its row names, TakeOver repeated); where they disagree, the rows win.
 */
function reloaded(
  d: Draft,
  rows: readonly StoredRow[],
  instanceState: WorkflowState,
  answering: WorkerEvent | undefined,
): void {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const lost: LostAttempt[] = [];
  for (const slot of d.slots()) {
    const row = byName.get(slot.name);
    if (row === undefined) {
      // A new attempt that was never written: it is still to be created.
      if (slot.status.kind === 'creating') {
        d.set(slot.name, { kind: 'pending', next: slot.status.next, avoid: slot.status.avoid });
      }
      continue;
    }
    d.knowRow(row.id, slot.name);
    const onHost = row.state === 'DISPATCH' || row.state === 'RUNNING_EXECUTION' ? row.host : null;
    if (onHost !== null && !d.env.isLive(onHost)) {
      // Its worker is gone (the removal may have come while the view was behind).
      d.set(slot.name, restoredStatus(row), row.attempt);
      lost.push({ name: slot.name, at: refOf(row), worker: onHost });
      continue;
    }
    const cur = currentRow(slot.status);
    if (cur?.at.id === row.id && cur.state === row.state && cur.host === row.host) reask(d, slot.name, row);
    else rebuild(d, slot.name, row);
  }
  if (lost.length > 0) loseAttempts(d, lost, 'its worker is gone');
  control(d, instanceState);
  for (const slot of d.slots()) {
    const s = slot.status;
    if (
      s.kind === 'ended' &&
      s.state !== 'SUCCESS' &&
      d.mode.kind !== 'stopping' &&
      !handledFailure(d.now(), slot.name)
    ) {
      d.mode = withFailure(d.mode, d.base.failurePolicy, `task ${slot.name} ended ${s.state}`);
    }
  }
  if (answering !== undefined) reply(d, answerFromRows(d, answering));
}

/** A slot the rows agree with: repeat what may have been lost with an error. */
function reask(d: Draft, name: string, row: StoredRow): void {
  const s = d.status(name);
  if (s === undefined) return;
  switch (s.kind) {
    case 'dispatching':
      d.emit({ kind: 'dispatch', rowId: s.at.id, attempt: s.at.attempt, name, worker: s.worker });
      return;
    case 'resolving':
      if (d.env.isLive(s.worker)) {
        d.emit({ kind: 'takeOver', rowId: s.at.id, name, worker: s.worker });
        d.set(name, { ...s, asking: true });
      }
      return;
    case 'delayed':
      rebuild(d, name, row);
      return;
    case 'queued':
      // Its queue row or grant pass may be what failed: ask again (idempotent).
      d.emit({ kind: 'requestSlot', group: s.group, rowIds: [s.at.id] });
      return;
    default:
  }
}

/** A slot from its stored row (the rows win). */
function rebuild(d: Draft, name: string, row: StoredRow): void {
  const prior = d.status(name);
  const at = refOf(row);
  if (row.state === 'RUNNING_EXECUTION' && row.host === null && d.slot(name)?.def.type === 'SUB_WORKFLOW') {
    // A SUB_WORKFLOW attempt whose child runs: find the child again (never a second one).
    if (prior?.kind !== 'onMaster' || prior.at.id !== row.id) {
      d.set(name, { kind: 'onMaster', at }, row.attempt);
      d.emit({ kind: 'runOnMaster', rowId: row.id, name });
    }
    return;
  }
  if (row.state === 'RUNNING_EXECUTION' && row.host === null && d.slot(name)?.def.type === 'DEPENDENT') {
    // A DEPENDENT attempt waiting on the master: it waits on, its timeout counted from its row.
    if (prior?.kind !== 'onMaster' || prior.at.id !== row.id) {
      const elapsedMs = row.runningForMs ?? 0;
      d.set(name, { kind: 'onMaster', at, elapsedMs }, row.attempt);
      if (d.mode.kind === 'running') startDependent(d, name, at, elapsedMs);
    }
    return;
  }
  if ((row.state === 'DISPATCH' || row.state === 'RUNNING_EXECUTION') && row.host !== null) {
    if (row.state === 'DISPATCH') {
      // It may never have been sent: send it again where it is stored, never elsewhere.
      d.set(name, { kind: 'unsent', at, worker: row.host }, row.attempt);
      return;
    }
    if (
      prior !== undefined &&
      onWorker(prior) &&
      prior.kind !== 'unsent' &&
      prior.at.id === row.id &&
      prior.worker === row.host
    ) {
      // The same attempt on the same worker, started after all.
      d.set(name, { ...prior, started: true }, row.attempt);
      reask(d, name, row);
    } else d.set(name, { kind: 'onWorker', at, worker: row.host, started: true }, row.attempt);
    return;
  }
  const status = restoredStatus(row);
  d.set(name, status, row.attempt);
  if (status.kind === 'delayed') {
    if (status.due) d.clearTimer(`retry:${name}`);
    else d.setTimer(`retry:${name}`, status.dueInMs ?? 0);
  }
}

/**
 * A SUB_WORKFLOW attempt's child reached a final state. SUCCESS and FAILURE carry over; a child
 * STOP fails the task (the parent's own stop has already ended it KILL); a child PAUSE pauses the
 * task while this run is pausing (its row PAUSE, like a worker task cut short by the pause; a
 * resume resumes that same child), and otherwise is waited out: someone paused the child alone,
 * and the task goes on when the child is resumed and ends.
 */
function childEnded(d: Draft, e: Extract<RunEvent, { type: 'childEnded' }>): After {
  const name = d.taskOfRow(e.rowId);
  const s = name === undefined ? undefined : d.status(name);
  if (name === undefined || s?.kind !== 'onMaster' || s.at.id !== e.rowId) return 'quiet';
  const child = `child workflow instance ${e.childInstanceId}`;
  switch (e.state) {
    case 'SUCCESS':
      return masterTaskEnded(d, {
        type: 'masterTaskEnded',
        rowId: e.rowId,
        state: 'SUCCESS',
        message: `${child} succeeded`,
        outputs: {},
      });
    case 'FAILURE':
    case 'STOP':
      return masterTaskEnded(d, {
        type: 'masterTaskEnded',
        rowId: e.rowId,
        state: 'FAILURE',
        message: `${child} ended ${e.state}${e.message ? `: ${e.message}` : ''}`,
        outputs: {},
      });
    case 'PAUSE':
      if (d.mode.kind !== 'pausing') return 'quiet';
      d.emit({
        kind: 'markState',
        rowIds: [e.rowId],
        from: ['RUNNING_EXECUTION'],
        state: 'PAUSE',
        message: `${child} paused`,
      });
      d.set(name, {
        kind: 'pending',
        next: budgetAfter(s.at, 'other'),
        last: { at: s.at, state: 'PAUSE', host: null },
      });
      d.log('log', `task ${name} attempt ${s.at.attempt} PAUSE with its ${child}`);
      return 'advance';
  }
}

/** A master-side task ended (SUB_WORKFLOW child finished, CONDITIONS / SWITCH decided). */
function masterTaskEnded(d: Draft, e: Extract<RunEvent, { type: 'masterTaskEnded' }>): After {
  const name = d.taskOfRow(e.rowId);
  const s = name === undefined ? undefined : d.status(name);
  if (name === undefined || s?.kind !== 'onMaster' || s.at.id !== e.rowId) return 'quiet';
  d.emit({
    kind: 'markState',
    rowIds: [e.rowId],
    from: ['RUNNING_EXECUTION'],
    state: e.state,
    message: e.message,
  });
  d.set(name, { kind: 'ended', at: s.at, state: e.state, host: null, outputs: e.outputs });
  d.log(
    'log',
    `task ${name} attempt ${s.at.attempt} ${e.state} on the master${e.message ? ` (${e.message})` : ''}`,
  );
  if (e.state === 'FAILURE') noteFailure(d, `task ${name} ended FAILURE`, name);
  return 'advance';
}
