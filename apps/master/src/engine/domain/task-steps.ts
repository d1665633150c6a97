/**
 * Changes to one task's attempt that several events share: recording a result, losing an attempt
 * with its worker, ending attempts the run will not carry on. Each one writes the row and moves
 * the slot in the same step (see run-effects.ts for how a write that misses is handled).
 */
import { ACTIVE_TASK_STATES, type TaskState } from '@porpoise/common';
import { handledFailure } from './branching';
import type { Draft } from './draft';
import type { WorkerResult } from './run-events';
import type { AttemptRef, RunMode } from './run-state';
import {
  budgetAfter,
  interruptedState,
  killedByWorker,
  lostFate,
  resultFate,
  withFailure,
  type LostFate,
} from './task-fate';

/**
 * A task failed for good: the mode follows the failure policy, unless a CONDITIONS task right
 * below it handles the failure (DESIGN.md section 9: it does not fail the run, under END too).
 */
export function noteFailure(d: Draft, reason: string, task?: string): void {
  if (task !== undefined && handledFailure(d.now(), task)) {
    d.log('log', `${reason}; handled by a CONDITIONS task`);
    return;
  }
  d.mode = withFailure(d.mode, d.base.failurePolicy, reason);
}

/** Why the run carries nothing new on, for the rows' messages. */
export function haltReason(mode: RunMode): string {
  switch (mode.kind) {
    case 'failing':
      return 'the workflow failed';
    case 'pausing':
      return 'the workflow is pausing';
    case 'stopping':
      return mode.endAs === 'STOP' ? 'the workflow is stopping' : `the workflow is stopping (${mode.reason})`;
    case 'running':
    case 'finished':
    case 'closed':
      return 'the workflow does not run';
  }
}

/**
 * Records a worker's result of the current attempt on worker (a TaskFinished, or a result a
 * TakeOver handed over). A KILL its worker did on its own is a lost attempt, not a result.
 */
export function applyResult(d: Draft, name: string, at: AttemptRef, worker: string, r: WorkerResult): void {
  const slot = d.slot(name);
  if (slot === undefined) return;
  clearResolveTimer(d, name);
  if (killedByWorker(r.state, r.message)) {
    const why = r.message || 'ended by its worker';
    const fate = lostFate(d.mode, at, d.base.maxFaultReruns, why);
    d.emit(finishedWrite(at, worker, r, fate.state, fate.message));
    settleLost(d, name, at, worker, fate);
    return;
  }
  const fate = resultFate(d.mode, slot.def, at, r.state);
  switch (fate.kind) {
    case 'retry': {
      const delay = slot.def.retryIntervalMs;
      d.emit({ ...finishedWrite(at, worker, r, 'DELAY_EXECUTION', r.message), retryDelayMs: delay });
      d.set(name, { kind: 'delayed', at, host: worker, due: false });
      d.setTimer(`retry:${name}`, delay);
      d.log(
        'log',
        `task ${name} attempt ${at.attempt} failed (exit ${r.exitCode}); retry ${at.retriesUsed + 1} of ${slot.def.retries} in ${delay} ms`,
      );
      return;
    }
    case 'retryOnResume':
      d.emit(finishedWrite(at, worker, r, 'FAILURE', r.message));
      d.set(name, {
        kind: 'pending',
        next: budgetAfter(at, 'ownFailure'),
        last: { at, state: 'FAILURE', host: worker },
      });
      d.log('log', `task ${name} attempt ${at.attempt} failed while pausing; a resume retries it`);
      return;
    case 'final':
      d.emit(finishedWrite(at, worker, r, fate.state, r.message));
      d.set(name, { kind: 'ended', at, state: fate.state, host: worker, outputs: r.outputs ?? {} });
      d.log('log', `task ${name} attempt ${at.attempt} ${fate.state} (exit ${r.exitCode})`);
      if (fate.fails) noteFailure(d, `task ${name} ended ${fate.state}`, name);
  }
}

function finishedWrite(at: AttemptRef, worker: string, r: WorkerResult, state: TaskState, message: string) {
  return {
    kind: 'markFinished' as const,
    rowId: at.id,
    worker,
    state,
    exitCode: r.exitCode,
    startMs: r.startTimeMs,
    endMs: r.endTimeMs,
    message,
    outputs: r.outputs ?? {},
  };
}

export interface LostAttempt {
  readonly name: string;
  readonly at: AttemptRef;
  readonly worker: string;
  /** False when nothing was lost under it (see lostFate); a fault re-run otherwise. */
  readonly counts?: boolean;
}

/**
 * Attempts whose worker is gone or never got them: each becomes what lostFate says (a new
 * attempt follows NEED_FAULT_TOLERANCE, preferably elsewhere, without using a retry). One write
 * per outcome.
 */
export function loseAttempts(d: Draft, lost: readonly LostAttempt[], why: string): void {
  // Decided against the mode at the loss: a failure one of them causes does not change the others.
  const fates = lost.map((l) => ({
    ...l,
    fate: lostFate(d.mode, l.at, d.base.maxFaultReruns, why, l.counts ?? true),
  }));
  const groups = new Map<string, { fate: LostFate; ids: number[]; names: string[] }>();
  for (const { fate, at, name } of fates) {
    const key = `${fate.state}\n${fate.message}`;
    const group = groups.get(key) ?? { fate, ids: [], names: [] };
    group.ids.push(at.id);
    group.names.push(name);
    groups.set(key, group);
  }
  for (const { fate, ids, names } of groups.values()) {
    d.emit({
      kind: 'markState',
      rowIds: ids,
      from: ACTIVE_TASK_STATES,
      state: fate.state,
      message: fate.message,
    });
    d.log(
      fate.state === 'NEED_FAULT_TOLERANCE' || fate.fails ? 'warn' : 'log',
      `${fate.message}: ${names.join(', ')} ${fate.state}` +
        (fate.state === 'NEED_FAULT_TOLERANCE' ? ' (run again as a new attempt)' : ''),
    );
  }
  for (const { name, at, worker, fate } of fates) settleLost(d, name, at, worker, fate);
}

/** A TakeOver waiting for its backoff is no longer wanted. */
function clearResolveTimer(d: Draft, name: string): void {
  const s = d.status(name);
  if (s?.kind === 'resolving' && !s.asking) d.clearTimer(`resolve:${name}`);
}

function settleLost(d: Draft, name: string, at: AttemptRef, worker: string, fate: LostFate): void {
  clearResolveTimer(d, name);
  switch (fate.state) {
    case 'NEED_FAULT_TOLERANCE':
      d.set(name, {
        kind: 'pending',
        next: budgetAfter(at, fate.counts ? 'fault' : 'other'),
        avoid: worker,
        last: { at, state: fate.state, host: worker },
      });
      return;
    case 'PAUSE':
      d.set(name, {
        kind: 'pending',
        next: budgetAfter(at, 'other'),
        last: { at, state: 'PAUSE', host: worker },
      });
      return;
    case 'FAILURE':
      d.set(name, { kind: 'ended', at, state: 'FAILURE', host: worker, outputs: {} });
      if (fate.fails) noteFailure(d, `task ${name}: ${fate.message}`, name);
      return;
    default:
      d.set(name, { kind: 'ended', at, state: 'KILL', host: worker, outputs: {} });
  }
}

/**
 * Ends the attempts that are on no worker (SUBMITTED_SUCCESS, waiting for a task group slot, or
 * refused) as the mode says
 * (interruptedState 'unstarted'): KILL, or PAUSE (a resume runs them).
 */
export function cancelUnstarted(d: Draft, names: readonly string[]): void {
  const state = interruptedState(d.mode, 'unstarted');
  if (state === undefined) return;
  const message = `not started: ${haltReason(d.mode)}`;
  const fresh: number[] = [];
  const refused: number[] = [];
  for (const name of names) {
    const s = d.status(name);
    if (s?.kind !== 'submitted' && s?.kind !== 'queued') continue;
    // A queued attempt (waiting for its task group) is SUBMITTED_SUCCESS: the write that ends it
    // also drops its queue row (the release trigger), so no slot is left behind.
    const refusedBy = s.kind === 'submitted' ? s.refusedBy : undefined;
    (refusedBy === undefined ? fresh : refused).push(s.at.id);
    if (s.kind === 'submitted' && s.parked) d.clearTimer(`park:${name}`);
    const host = refusedBy ?? null;
    if (state === 'PAUSE') {
      d.set(name, { kind: 'pending', next: budgetAfter(s.at, 'other'), last: { at: s.at, state, host } });
    } else d.set(name, { kind: 'ended', at: s.at, state: 'KILL', host, outputs: {} });
  }
  if (fresh.length > 0) {
    d.emit({ kind: 'markState', rowIds: fresh, from: ['SUBMITTED_SUCCESS'], state, message });
  }
  if (refused.length > 0) d.emit({ kind: 'markState', rowIds: refused, from: ['DISPATCH'], state, message });
}

/**
 * Ends the attempts waiting for a retry as the mode says (interruptedState 'waitingRetry'):
 * their failure stands (FAILURE; while pausing the resume retries it, counted), or KILL.
 */
export function cancelDelayed(d: Draft, names: readonly string[]): void {
  const state = interruptedState(d.mode, 'waitingRetry');
  if (state === undefined) return;
  const pausing = d.mode.kind === 'pausing';
  const message = pausing
    ? `not retried yet: ${haltReason(d.mode)} (a resume retries it)`
    : `not retried: ${haltReason(d.mode)}`;
  const ids: number[] = [];
  for (const name of names) {
    const s = d.status(name);
    if (s?.kind !== 'delayed') continue;
    ids.push(s.at.id);
    d.clearTimer(`retry:${name}`);
    if (pausing) {
      d.set(name, {
        kind: 'pending',
        next: budgetAfter(s.at, 'ownFailure'),
        last: { at: s.at, state: 'FAILURE', host: s.host },
      });
    } else {
      d.set(name, {
        kind: 'ended',
        at: s.at,
        state: state === 'KILL' ? 'KILL' : 'FAILURE',
        host: s.host,
        outputs: {},
      });
    }
  }
  if (ids.length > 0) d.emit({ kind: 'markState', rowIds: ids, from: ['DELAY_EXECUTION'], state, message });
}
