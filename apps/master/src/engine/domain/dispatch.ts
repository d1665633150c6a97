/**
 * Getting an attempt onto a worker, as steps of the transition: worker choice, parking when no
 * worker takes it, and settling a Dispatch that may or may not have arrived. The safety rules:
 * - DISPATCH naming the worker is written before the Dispatch call (a successor then asks that
 *   worker instead of running the task a second time);
 * - an attempt that may run on a worker is only ever sent to, or asked about on, that worker: an
 *   ambiguous Dispatch is settled with TakeOver there, never by sending it elsewhere;
 * - a worker process is an incarnation: the loss of an old process on an address does not touch
 *   what a new process on that address took.
 * The caller decides whether new work may start at all (mode, registry session).
 */
import { decideBranch, isBranching } from './branching';
import { startDependent } from './dependent';
import type { Draft } from './draft';
import type { RunEvent } from './run-events';
import { currentRow, differs, type AttemptRef } from './run-state';
import { applyResult, loseAttempts, noteFailure } from './task-steps';
import { runsOn } from './task-fate';

/** What the caller does after a dispatch step: nothing more, or re-evaluate the whole run. */
export type After = 'quiet' | 'advance';

/** Sends a submitted attempt to a worker of its group (or starts it on this master), or parks it. */
export function sendOut(d: Draft, name: string): void {
  const slot = d.slot(name);
  const s = slot?.status;
  if (slot === undefined || s?.kind !== 'submitted') return;
  if (isBranching(slot.def)) {
    decide(d, name, s.at);
    return;
  }
  if (runsOn(slot.def) === 'master') {
    // Master-side types never occupy a worker: RUNNING_EXECUTION here (its start_time on the
    // database's clock), then the task runs.
    d.emit({
      kind: 'markState',
      rowIds: [s.at.id],
      from: ['SUBMITTED_SUCCESS'],
      state: 'RUNNING_EXECUTION',
      message: 'runs on the master',
    });
    d.set(name, { kind: 'onMaster', at: s.at });
    if (slot.def.type === 'DEPENDENT') startDependent(d, name, s.at);
    else d.emit({ kind: 'runOnMaster', rowId: s.at.id, name });
    return;
  }
  if (slot.def.taskGroup !== undefined && s.granted !== true) {
    enqueue(d, name, slot.def.taskGroup);
    return;
  }
  const group = slot.def.workerGroup;
  const tried = new Set(s.tried);
  // A worker that ended the previous attempt itself is the last choice, not excluded.
  const worker =
    (s.avoid !== undefined ? d.env.pick(group, new Set([...tried, s.avoid])) : undefined) ??
    d.env.pick(group, tried);
  if (worker === undefined) {
    park(d, name);
    return;
  }
  d.emit(
    { kind: 'markDispatch', rowId: s.at.id, worker },
    { kind: 'dispatch', rowId: s.at.id, attempt: s.at.attempt, name, worker },
  );
  d.set(name, {
    kind: 'dispatching',
    at: s.at,
    worker,
    tried: [...s.tried, worker],
    avoid: s.avoid,
    started: false,
  });
}

/**
 * A submitted attempt of a task group waits for a slot (DESIGN.md section 10): its queue row is
 * written and a grant pass runs (requestSlot); slotGranted sends it out. One fallback timer per
 * group covers a lost NOTIFY.
 */
function enqueue(d: Draft, name: string, group: string): void {
  const s = d.status(name);
  if (s?.kind !== 'submitted') return;
  const first = !d.slots().some((o) => o.status.kind === 'queued' && o.status.group === group);
  if (s.parked) d.clearTimer(`park:${name}`);
  d.emit({ kind: 'requestSlot', group, rowIds: [s.at.id] });
  d.set(name, { kind: 'queued', at: s.at, group, tried: s.tried, avoid: s.avoid });
  if (first) d.setTimer(`group:${group}`, d.base.timings.parkedRetryMs);
}

/** These queued attempts hold a slot now: they go out like any submitted attempt (advance). */
export function onSlotGranted(d: Draft, rowIds: readonly number[]): After {
  let after: After = 'quiet';
  for (const rowId of rowIds) {
    const name = d.taskOfRow(rowId);
    const s = name === undefined ? undefined : d.status(name);
    if (name === undefined || s?.kind !== 'queued' || s.at.id !== rowId) continue;
    d.set(name, {
      kind: 'submitted',
      at: s.at,
      tried: s.tried,
      avoid: s.avoid,
      parked: false,
      granted: true,
    });
    after = 'advance';
  }
  return after;
}

/** The fallback timer of a group: its queued attempts ask again (idempotent), and wait on. */
export function onGroupTimer(d: Draft, group: string): After {
  const rowIds: number[] = [];
  for (const slot of d.slots()) {
    const s = slot.status;
    if (s.kind === 'queued' && s.group === group) rowIds.push(s.at.id);
  }
  if (rowIds.length === 0) return 'quiet';
  d.emit({ kind: 'requestSlot', group, rowIds });
  d.setTimer(`group:${group}`, d.base.timings.parkedRetryMs);
  return 'quiet';
}

/** Sends an attempt stored as DISPATCH again to the worker it names (idempotent per id). */
export function resend(d: Draft, name: string): void {
  const s = d.status(name);
  if (s?.kind !== 'unsent') return;
  d.emit({ kind: 'dispatch', rowId: s.at.id, attempt: s.at.attempt, name, worker: s.worker });
  d.set(name, { kind: 'dispatching', at: s.at, worker: s.worker, tried: [s.worker], started: false });
}

/** No live worker of its group took it: wait for a worker event (or the fallback timer). */
function park(d: Draft, name: string): void {
  const s = d.status(name);
  if (s?.kind !== 'submitted') return;
  if (s.refusedBy !== undefined) d.emit({ kind: 'markUndispatched', rowId: s.at.id, worker: s.refusedBy });
  if (!s.parked) d.setTimer(`park:${name}`, d.base.timings.parkedRetryMs);
  d.set(name, { ...s, parked: true, refusedBy: undefined });
}

/** Parked attempts of group (every group when undefined) may be tried on every worker again. */
export function unpark(d: Draft, group: string | undefined): void {
  for (const slot of d.slots()) {
    const s = slot.status;
    if (s.kind !== 'submitted' || !s.parked) continue;
    if (group !== undefined && slot.def.workerGroup !== group) continue;
    d.clearTimer(`park:${slot.name}`);
    d.set(slot.name, { ...s, parked: false, tried: [] });
  }
}

/**
 * Settles an attempt that may run on worker: TakeOver there (this master, this epoch), unless
 * the worker is gone (then it is lost). A worker answering UNKNOWN has recorded the task
 * instance as superseded up to our epoch, so a late Dispatch can no longer start it there.
 */
export function beginResolve(
  d: Draft,
  name: string,
  at: AttemptRef,
  worker: string,
  cause: 'dispatch' | 'adoption',
  started: boolean,
): void {
  if (!d.env.isLive(worker)) {
    loseAttempts(d, [{ name, at, worker }], lostWhy(cause, worker));
    return;
  }
  d.emit({ kind: 'takeOver', rowId: at.id, name, worker });
  d.set(name, {
    kind: 'resolving',
    at,
    worker,
    started,
    cause,
    asking: true,
    backoffMs: d.base.timings.resolveBackoffMinMs,
  });
}

function lostWhy(cause: 'dispatch' | 'adoption', worker: string): string {
  return cause === 'adoption' ? `not found on ${worker} after failover` : `worker ${worker} lost`;
}

type Answer<T extends RunEvent['type']> = Extract<RunEvent, { type: T }>;

export function onDispatchAnswered(d: Draft, e: Answer<'dispatchAnswered'>): After {
  const name = d.taskOfRow(e.rowId);
  const s = name === undefined ? undefined : d.status(name);
  if (name === undefined || s?.kind !== 'dispatching' || s.at.id !== e.rowId || s.worker !== e.worker) {
    if (e.accepted) {
      killIfGivenUp(d, name, e.rowId, e.worker);
      learnIncarnation(d, name, e.rowId, e.worker, e.incarnation || undefined, e.registration || undefined);
    }
    return 'quiet';
  }
  if (e.accepted) {
    const incarnation = e.incarnation || undefined;
    const registration = e.registration || undefined;
    const lost = s.lostDuring;
    if (
      lost !== undefined &&
      (lost === 'unknown' || incarnation === undefined || incarnation === lost) &&
      !differs(s.lostRegistration, registration)
    ) {
      // The process (and registration) that took it was reported gone while the call was in flight.
      loseAttempts(d, [{ name, at: s.at, worker: e.worker }], `worker ${e.worker} lost`);
      return 'advance';
    }
    d.emit({ kind: 'noteAssigned', worker: e.worker });
    d.set(name, {
      kind: 'onWorker',
      at: s.at,
      worker: e.worker,
      started: s.started,
      incarnation,
      registration,
    });
    return 'quiet';
  }
  if (s.started) {
    // Its TaskStarted came first: it runs there whatever the answer says.
    d.set(name, { kind: 'onWorker', at: s.at, worker: e.worker, started: true });
    return 'quiet';
  }
  d.log('warn', `worker ${e.worker} did not take task ${name} (${e.rowId}): ${e.reason}`);
  refused(d, name, e.worker);
  return 'advance';
}

export function onDispatchFailed(d: Draft, e: Answer<'dispatchFailed'>): After {
  const name = d.taskOfRow(e.rowId);
  const s = name === undefined ? undefined : d.status(name);
  if (name === undefined || s?.kind !== 'dispatching' || s.at.id !== e.rowId || s.worker !== e.worker) {
    if (e.ambiguous) killIfGivenUp(d, name, e.rowId, e.worker);
    return 'quiet';
  }
  if (e.rejected === true && !s.started) {
    // The worker checked the spec and refused it: it never ran, and no worker would take it.
    failUnsent(d, name, e.rowId, `worker ${e.worker} rejected the task: ${e.reason}`);
    return 'advance';
  }
  if (!e.ambiguous) {
    d.log('warn', `Dispatch of task ${name} (${e.rowId}) to ${e.worker} never left: ${e.reason}`);
    refused(d, name, e.worker);
    return 'advance';
  }
  if (s.started) {
    d.set(name, { kind: 'onWorker', at: s.at, worker: e.worker, started: true });
    return 'quiet';
  }
  // It may run there: never send this attempt anywhere else. The row stays DISPATCH on that
  // worker (a successor would ask it too) and the worker is asked.
  d.log(
    'warn',
    `Dispatch of task ${name} (${e.rowId}) to ${e.worker} failed, it may have started there (${e.reason}); asking the worker (TakeOver)`,
  );
  beginResolve(d, name, s.at, e.worker, 'dispatch', false);
  return 'advance';
}

/**
 * The attempt's spec could not be built (payloadRefused): it ends FAILURE with the message and
 * nothing runs. The runner found it before marking DISPATCH, so the row is SUBMITTED_SUCCESS (or
 * DISPATCH from an earlier send, when a Dispatch is sent again after a read-back).
 */
export function onPayloadRefused(d: Draft, e: Extract<RunEvent, { type: 'payloadRefused' }>): After {
  const name = d.taskOfRow(e.rowId);
  const s = name === undefined ? undefined : d.status(name);
  if (name === undefined || s === undefined) return 'quiet';
  if (s.kind !== 'submitted' && s.kind !== 'queued' && s.kind !== 'dispatching' && s.kind !== 'unsent') {
    return 'quiet';
  }
  if (s.at.id !== e.rowId || (s.kind === 'dispatching' && s.started)) return 'quiet';
  failUnsent(d, name, e.rowId, e.message);
  return 'advance';
}

/** An attempt that never ran on any worker fails for good (no retry: it would fail the same way). */
function failUnsent(d: Draft, name: string, rowId: number, message: string): void {
  const s = d.status(name);
  if (
    s === undefined ||
    (s.kind !== 'submitted' && s.kind !== 'queued' && s.kind !== 'dispatching' && s.kind !== 'unsent')
  ) {
    return;
  }
  d.emit({
    kind: 'markState',
    rowIds: [rowId],
    from: ['SUBMITTED_SUCCESS', 'DISPATCH'],
    state: 'FAILURE',
    message,
  });
  d.set(name, { kind: 'ended', at: s.at, state: 'FAILURE', host: null, outputs: {} });
  d.log('warn', `task ${name} attempt ${s.at.attempt} FAILURE: ${message}`);
  noteFailure(d, `task ${name} ended FAILURE`, name);
}

/**
 * A CONDITIONS or SWITCH task: decided at once on the master, in one write (its row goes from
 * SUBMITTED_SUCCESS to its final state); the targets it did not take are SKIPPED by the next
 * advance (readiness asks notTakenBy), together with the other new rows.
 */
function decide(d: Draft, name: string, at: AttemptRef): void {
  const decision = decideBranch(d.now(), name, at);
  if (decision === undefined) return;
  d.emit({
    kind: 'markState',
    rowIds: [at.id],
    from: ['SUBMITTED_SUCCESS'],
    state: decision.state,
    message: decision.message,
  });
  d.set(name, { kind: 'ended', at, state: decision.state, host: null, outputs: {} });
  d.log('log', `task ${name} attempt ${at.attempt} ${decision.state} on the master (${decision.message})`);
  if (decision.state === 'FAILURE') noteFailure(d, `task ${name} ended FAILURE: ${decision.message}`, name);
}

/** The worker provably did not take it: the next worker is tried (advance), same attempt. */
function refused(d: Draft, name: string, worker: string): void {
  const s = d.status(name);
  if (s?.kind !== 'dispatching') return;
  d.set(name, {
    kind: 'submitted',
    at: s.at,
    tried: s.tried,
    avoid: s.avoid,
    parked: false,
    refusedBy: worker,
    // It went out with a slot of its task group, and keeps it for the next worker.
    ...(d.slot(name)?.def.taskGroup !== undefined ? { granted: true } : {}),
  });
}

/** A Dispatch that (may have) landed after its attempt was given up must not keep running. */
function killIfGivenUp(d: Draft, name: string | undefined, rowId: number, worker: string): void {
  const s = name === undefined ? undefined : d.status(name);
  const row = s === undefined ? undefined : currentRow(s);
  if (row?.at.id === rowId && (row.state === 'KILL' || row.state === 'PAUSE')) {
    d.emit({ kind: 'kill', targets: [{ rowId, worker }], wait: false });
  }
}

/** A late answer still tells which worker process has the attempt. */
function learnIncarnation(
  d: Draft,
  name: string | undefined,
  rowId: number,
  worker: string,
  incarnation: number | undefined,
  registration: number | undefined,
): void {
  const s = name === undefined ? undefined : d.status(name);
  if (name === undefined || incarnation === undefined) return;
  if (s?.kind === 'onWorker' && s.at.id === rowId && s.worker === worker && s.incarnation === undefined) {
    d.set(name, { ...s, incarnation, registration });
  }
}

export function onTakeOverAnswered(d: Draft, e: Answer<'takeOverAnswered'>): After {
  const name = d.taskOfRow(e.rowId);
  const s = name === undefined ? undefined : d.status(name);
  const { answer } = e;
  if (name === undefined || s?.kind !== 'resolving' || s.at.id !== e.rowId || s.worker !== e.worker) {
    if (answer.status === 'RUNNING') {
      learnIncarnation(
        d,
        name,
        e.rowId,
        e.worker,
        answer.workerStartTimeMs || undefined,
        answer.workerRegistration || undefined,
      );
    }
    return 'quiet';
  }
  if (answer.status === 'RUNNING') {
    if (!s.started) {
      d.emit({ kind: 'markStarted', rowId: s.at.id, worker: e.worker, startMs: answer.startTimeMs });
    }
    if (s.cause === 'dispatch') d.emit({ kind: 'noteAssigned', worker: e.worker });
    d.set(name, {
      kind: 'onWorker',
      at: s.at,
      worker: e.worker,
      started: true,
      incarnation: answer.workerStartTimeMs || undefined,
      registration: answer.workerRegistration || undefined,
    });
    d.log('log', `re-attached task ${name} (${e.rowId}) running on ${e.worker}`);
    return 'advance';
  }
  if (answer.status === 'FINISHED' && answer.result?.taskInstanceId === e.rowId) {
    applyResult(d, name, s.at, e.worker, answer.result);
    return 'advance';
  }
  // UNKNOWN: it is not there (and now can never start there): a new attempt.
  const why =
    s.cause === 'dispatch'
      ? `Dispatch to ${e.worker} failed; the worker never started it`
      : `not found on ${e.worker} after failover`;
  // After a failover, an attempt that never started was most likely never delivered.
  const counts = s.cause === 'dispatch' || s.started;
  loseAttempts(d, [{ name, at: s.at, worker: e.worker, counts }], why);
  return 'advance';
}

export function onTakeOverFailed(d: Draft, e: Answer<'takeOverFailed'>): After {
  const name = d.taskOfRow(e.rowId);
  const s = name === undefined ? undefined : d.status(name);
  if (name === undefined || s?.kind !== 'resolving' || s.at.id !== e.rowId || s.worker !== e.worker) {
    return 'quiet';
  }
  // A live worker that does not answer may still run the task: keep asking until it answers or
  // its registry key is gone, with a capped backoff (no tight loop).
  d.log('warn', `TakeOver of task ${name} (${e.rowId}) on ${e.worker} failed: ${e.reason}`);
  d.setTimer(`resolve:${name}`, s.backoffMs);
  d.set(name, {
    ...s,
    asking: false,
    backoffMs: Math.min(s.backoffMs * 2, d.base.timings.resolveBackoffMaxMs),
  });
  return 'quiet';
}

/** The backoff after a failed TakeOver is over: ask again, unless the worker is gone. */
export function onResolveTimer(d: Draft, name: string): After {
  const s = d.status(name);
  if (s?.kind !== 'resolving' || s.asking) return 'quiet';
  if (!d.env.isLive(s.worker)) {
    // Its registry key is gone: worker-loss handling, here too in case the removal was seen
    // before this runner was told.
    loseAttempts(d, [{ name, at: s.at, worker: s.worker }], lostWhy(s.cause, s.worker));
    return 'advance';
  }
  d.emit({ kind: 'takeOver', rowId: s.at.id, name, worker: s.worker });
  d.set(name, { ...s, asking: true });
  return 'quiet';
}
