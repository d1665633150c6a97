/**
 * What follows from the run's current state, by its mode: start what is ready, retry what is
 * due, wind down, stop, or finish. It looks at the state as it is (not at what just happened),
 * so running it again after any event (or after the rows were read back) is always right.
 */
import { ACTIVE_TASK_STATES, type WorkflowState } from '@porpoise/common';
import { handledFailure, notTakenBy } from './branching';
import { cancelDependents } from './dependent';
import type { Draft } from './draft';
import { resend, sendOut } from './dispatch';
import { inPriorityOrder, startable } from './readiness';
import type { NewAttemptItem } from './run-effects';
import { isLive, onWorker, type RunMode, type RunState, type Slot } from './run-state';
import { budgetAfter } from './task-fate';
import { cancelDelayed, cancelUnstarted } from './task-steps';

export function advance(d: Draft): void {
  const mode = d.mode;
  switch (mode.kind) {
    case 'finished':
    case 'closed':
      return;
    case 'stopping':
      stop(d, mode);
      return;
    case 'failing':
    case 'pausing':
      windDown(d, mode);
      return;
    case 'running':
      progress(d, mode);
  }
}

function finish(d: Draft, state: WorkflowState, message?: string): void {
  d.emit({ kind: 'finish', state, message });
}

const succeeded = (s: Slot) =>
  s.status.kind === 'skipped' || (s.status.kind === 'ended' && s.status.state === 'SUCCESS');

/** Succeeded, or failed with a CONDITIONS task handling it (it does not fail the run). */
const fine = (view: RunState) => (s: Slot) =>
  succeeded(s) || (s.status.kind === 'ended' && handledFailure(view, s.name));

/** running: finish when every task succeeded, else start what is ready and retry what is due. */
function progress(d: Draft, mode: Extract<RunMode, { kind: 'running' }>): void {
  const slots = d.slots();
  if (slots.every(fine(d.now()))) {
    finish(d, 'SUCCESS');
    return;
  }
  // Fencing: while the registry session is suspended, start nothing new (nor send anything).
  if (!d.env.canStartWork) return;
  // Waiting tasks go out highest priority first: when workers are short, they get the slots.
  for (const slot of inPriorityOrder(slots, (s) => s.def)) {
    const s = slot.status;
    if (s.kind === 'unsent') resend(d, slot.name);
    else if (s.kind === 'submitted' && !s.parked) sendOut(d, slot.name);
    else if (s.kind === 'delayed' && s.due) {
      const attempt = slot.lastAttempt + 1;
      d.emit({ kind: 'retry', rowId: s.at.id, name: slot.name, attempt });
      d.set(slot.name, { kind: 'creating', attempt, next: budgetAfter(s.at, 'ownFailure') }, attempt);
    }
  }
  const items: NewAttemptItem[] = [];
  const view = d.now();
  const { ready, skip } = startable(
    d.base.graph,
    (name) => d.status(name),
    (name) => notTakenBy(view, name),
  );
  for (const [names, skipped] of [
    [ready, false],
    [skip, true],
  ] as const) {
    for (const name of names) {
      const slot = d.slot(name);
      if (slot?.status.kind !== 'pending') continue;
      const { next, avoid } = slot.status;
      const attempt = slot.lastAttempt + 1;
      items.push({ name, attempt, retriesUsed: next.retriesUsed, faultReruns: next.faultReruns, skipped });
      d.set(name, { kind: 'creating', attempt, next, avoid }, attempt);
    }
  }
  // Last in the step: the new rows come back (created) and are sent out from there.
  if (items.length > 0) {
    d.emit({ kind: 'createAttempts', items });
    return;
  }
  if (d.slots().some((s) => isLive(s.status))) return;
  if (mode.failure !== undefined) {
    // CONTINUE: what the failure did not block has ended.
    finish(d, 'FAILURE', mode.failure);
    return;
  }
  // Cannot happen for a valid DAG; never leave an instance stuck silently.
  d.log('error', 'nothing runs and nothing can start; the instance fails');
  finish(d, 'FAILURE', 'nothing runs and nothing can start');
}

/** failing / pausing: start nothing new, end what waits, finish once nothing runs. */
function windDown(d: Draft, mode: Extract<RunMode, { kind: 'failing' | 'pausing' }>): void {
  // A waiting DEPENDENT task could hold the run for hours: it ends now (PAUSE or KILL).
  cancelDependents(d);
  const slots = d.slots();
  cancelUnstarted(
    d,
    slots.filter((s) => s.status.kind === 'submitted' || s.status.kind === 'queued').map((s) => s.name),
  );
  cancelDelayed(
    d,
    slots.filter((s) => s.status.kind === 'delayed').map((s) => s.name),
  );
  // Stored as DISPATCH but maybe never sent: it may run there, so it is sent where it is stored
  // (idempotent) rather than given up; it then finishes like any running task.
  if (d.env.canStartWork) for (const s of slots) if (s.status.kind === 'unsent') resend(d, s.name);
  const now = d.slots();
  if (now.some((s) => isLive(s.status))) return;
  if (mode.kind === 'failing') finish(d, 'FAILURE', mode.reason);
  else if (now.every(fine(d.now()))) finish(d, 'SUCCESS');
  else finish(d, 'PAUSE');
}

/** stopping: end what waits, Kill what runs (and wait for the answers), mark it KILL, finish. */
function stop(d: Draft, mode: Extract<RunMode, { kind: 'stopping' }>): void {
  const slots = d.slots();
  cancelUnstarted(
    d,
    slots.filter((s) => s.status.kind === 'submitted' || s.status.kind === 'queued').map((s) => s.name),
  );
  cancelDelayed(
    d,
    slots.filter((s) => s.status.kind === 'delayed').map((s) => s.name),
  );
  const running: number[] = [];
  const targets: Array<{ rowId: number; worker: string }> = [];
  for (const slot of slots) {
    const s = slot.status;
    if (onWorker(s)) {
      running.push(s.at.id);
      if (d.env.isLive(s.worker)) targets.push({ rowId: s.at.id, worker: s.worker });
      if (s.kind === 'resolving' && !s.asking) d.clearTimer(`resolve:${slot.name}`);
      d.set(slot.name, { kind: 'ended', at: s.at, state: 'KILL', host: s.worker, outputs: {} });
    } else if (s.kind === 'onMaster') {
      running.push(s.at.id);
      d.set(slot.name, { kind: 'ended', at: s.at, state: 'KILL', host: null, outputs: {} });
    }
  }
  if (targets.length > 0) d.emit({ kind: 'kill', targets, wait: true });
  const message = mode.endAs === 'STOP' ? 'stopped by request' : `stopped: ${mode.reason}`;
  if (running.length > 0) {
    d.emit({
      kind: 'markState',
      rowIds: running,
      from: ACTIVE_TASK_STATES,
      state: 'KILL',
      message,
    });
  }
  finish(d, mode.endAs, mode.endAs === 'STOP' ? undefined : mode.reason);
}
