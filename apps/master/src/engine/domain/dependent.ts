/**
 * DEPENDENT tasks (DESIGN.md section 9), as steps of the transition. A DEPENDENT attempt runs on
 * the master (RUNNING_EXECUTION, no worker) and waits for another workflow's runs:
 * - it is checked when it starts, again every checkIntervalMs (timer `depend:<name>`), and at
 *   once when a run of the awaited workflow ends (a `dependencyWake`, from NOTIFY
 *   porpoise_instance_end); each check is one `checkDependency` effect whose answer comes back as
 *   `dependencyChecked`;
 * - met: SUCCESS; failed (the latest run of the window ended FAILURE or STOP): FAILURE; waiting:
 *   the next check is set;
 * - its timeoutMs counts from the row's start_time on the database's clock (an adopted attempt
 *   brings how long it has run): timer `taskTimeout:<name>`, then FAILURE;
 * - a pause or a failing run does not wait for it (it could wait for hours): it is ended PAUSE or
 *   KILL like an attempt that has not started (interruptedState 'unstarted'); a stop KILLs it like
 *   any running task.
 * Retries do not apply (as for the other master-side types): its outcome is the dependency's.
 */
import type { Draft } from './draft';
import type { RunEvent } from './run-events';
import type { AttemptRef, Slot } from './run-state';
import { budgetAfter, interruptedState } from './task-fate';
import { haltReason, noteFailure } from './task-steps';

/** What the caller does next (dispatch.ts's After; not imported: dispatch.ts imports this file). */
type After = 'quiet' | 'advance';

/** A DEPENDENT task waiting on this master. */
export function waitingDependent(slot: Slot | undefined): slot is Slot & {
  readonly status: { readonly kind: 'onMaster'; readonly at: AttemptRef };
} {
  return slot?.def.type === 'DEPENDENT' && slot.status.kind === 'onMaster';
}

/**
 * A DEPENDENT attempt starts waiting (just marked RUNNING_EXECUTION, or adopted as such):
 * the first check, and its timeout. `elapsedMs`: how long it has run already (adoption).
 */
export function startDependent(d: Draft, name: string, at: AttemptRef, elapsedMs = 0): After {
  const slot = d.slot(name);
  if (slot === undefined) return 'quiet';
  const timeoutMs = slot.def.timeoutMs ?? 0;
  if (timeoutMs > 0) {
    const left = timeoutMs - elapsedMs;
    if (left <= 0) return timedOut(d, name);
    d.setTimer(`taskTimeout:${name}`, left);
  }
  d.emit({ kind: 'checkDependency', rowId: at.id, name });
  return 'quiet';
}

/** A check answered: end the task, or check again in checkIntervalMs. */
export function onDependencyChecked(d: Draft, e: Extract<RunEvent, { type: 'dependencyChecked' }>): After {
  const name = d.taskOfRow(e.rowId);
  const slot = name === undefined ? undefined : d.slot(name);
  if (name === undefined || !waitingDependent(slot) || slot.status.at.id !== e.rowId) return 'quiet';
  switch (e.outcome) {
    case 'met':
      return endDependent(d, name, 'SUCCESS', e.message);
    case 'failed':
      return endDependent(d, name, 'FAILURE', e.message);
    case 'waiting':
      d.setTimer(`depend:${name}`, slot.def.dependent?.checkIntervalMs ?? 10_000);
      return 'quiet';
  }
}

/** A run of workflow `code` ended: every task waiting for that workflow is checked now. */
export function onDependencyWake(d: Draft, code: string): After {
  for (const slot of d.slots()) {
    if (waitingDependent(slot) && slot.def.dependent?.workflowCode === code) {
      d.emit({ kind: 'checkDependency', rowId: slot.status.at.id, name: slot.name });
    }
  }
  return 'quiet';
}

/** Timer `depend:<name>`: check again. */
export function onDependTimer(d: Draft, name: string): After {
  const slot = d.slot(name);
  if (!waitingDependent(slot)) return 'quiet';
  d.emit({ kind: 'checkDependency', rowId: slot.status.at.id, name });
  return 'quiet';
}

/** Timer `taskTimeout:<name>`: a DEPENDENT still waiting fails. */
export function onTaskTimeout(d: Draft, name: string): After {
  return waitingDependent(d.slot(name)) ? timedOut(d, name) : 'quiet';
}

function timedOut(d: Draft, name: string): After {
  const slot = d.slot(name);
  const spec = slot?.def.dependent;
  const what =
    spec === undefined
      ? 'the dependency'
      : spec.taskName === undefined
        ? `the dependency on workflow ${spec.workflowCode}`
        : `the dependency on task ${spec.taskName} of workflow ${spec.workflowCode}`;
  return endDependent(d, name, 'FAILURE', `${what} was not met within ${slot?.def.timeoutMs ?? 0} ms`);
}

function endDependent(d: Draft, name: string, state: 'SUCCESS' | 'FAILURE', message: string): After {
  const slot = d.slot(name);
  if (!waitingDependent(slot)) return 'quiet';
  const { at } = slot.status;
  d.emit({ kind: 'markState', rowIds: [at.id], from: ['RUNNING_EXECUTION'], state, message });
  d.clearTimer(`depend:${name}`);
  d.clearTimer(`taskTimeout:${name}`);
  d.set(name, { kind: 'ended', at, state, host: null, outputs: {} });
  d.log('log', `task ${name} attempt ${at.attempt} ${state} on the master (${message})`);
  if (state === 'FAILURE') noteFailure(d, `task ${name} ended FAILURE`, name);
  return 'advance';
}

/**
 * Pausing or failing: waiting DEPENDENT tasks do not hold the run; they end as attempts that have
 * not started (PAUSE: a resume waits again, as a new attempt with a new timeout; or KILL).
 */
export function cancelDependents(d: Draft): void {
  const state = interruptedState(d.mode, 'unstarted');
  if (state === undefined) return;
  const message = `not waited for: ${haltReason(d.mode)}`;
  const ids: number[] = [];
  for (const slot of d.slots()) {
    if (!waitingDependent(slot)) continue;
    const { at } = slot.status;
    ids.push(at.id);
    d.clearTimer(`depend:${slot.name}`);
    d.clearTimer(`taskTimeout:${slot.name}`);
    if (state === 'PAUSE') {
      d.set(slot.name, {
        kind: 'pending',
        next: budgetAfter(at, 'other'),
        last: { at, state: 'PAUSE', host: null },
      });
    } else d.set(slot.name, { kind: 'ended', at, state: 'KILL', host: null, outputs: {} });
  }
  if (ids.length > 0) d.emit({ kind: 'markState', rowIds: ids, from: ['RUNNING_EXECUTION'], state, message });
}
