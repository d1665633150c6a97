/**
 * The rules that decide what happens to a task's attempt: what the run's mode makes of an
 * attempt it does not carry on, what a worker's result becomes (retry or not), what budgets the
 * next attempt starts with. Pure functions; transition.ts applies them.
 */
import { MASTER_TASK_TYPES, type TaskState } from '@porpoise/common';
import { TASK_RESULT_MESSAGES } from '@porpoise/rpc';
import type { AttemptRef, Budget, FailurePolicy, RunMode, RunTaskDef } from './run-state';

/** Why the run does not carry an attempt on. */
export type Interruption =
  /** Created but on no worker (SUBMITTED_SUCCESS, waiting for a task group slot, or refused). */
  | 'unstarted'
  /** DELAY_EXECUTION: failed, waiting for its retry. */
  | 'waitingRetry'
  /** Its worker is gone or ended it itself: a fault, not the task's own failure. */
  | 'lost';

/**
 * THE decision of what an attempt becomes when the run does not carry it on (undefined: it is
 * carried on). Every path that ends such an attempt asks this function, so they cannot disagree:
 *
 * | mode     | unstarted | waitingRetry | lost                 |
 * |----------|-----------|--------------|----------------------|
 * | running  | (runs)    | (retried)    | NEED_FAULT_TOLERANCE |
 * | pausing  | PAUSE     | FAILURE      | PAUSE                |
 * | failing  | KILL      | FAILURE      | KILL                 |
 * | stopping | KILL      | KILL         | KILL                 |
 *
 * - An attempt cut short because the run is ending is KILL, never FAILURE: FAILURE says the task
 *   failed by itself (and would fail a run by itself); a lost worker under a failing run is not
 *   the task's failure (it used to be FAILURE on one path and KILL on another).
 * - A waiting retry keeps its failure: FAILURE. While pausing its retry is kept for the resume
 *   (the next attempt counts it: budgetAfter 'ownFailure').
 * - PAUSE and NEED_FAULT_TOLERANCE are not final for the task: a resume, or the run itself, starts
 *   a new attempt. A lost attempt past MAX_FAULT_RERUNS fails instead (lostFate).
 */
export function interruptedState(mode: RunMode, why: Interruption): TaskState | undefined {
  switch (mode.kind) {
    case 'running':
      return why === 'lost' ? 'NEED_FAULT_TOLERANCE' : undefined;
    case 'pausing':
      return why === 'waitingRetry' ? 'FAILURE' : 'PAUSE';
    case 'failing':
      return why === 'waitingRetry' ? 'FAILURE' : 'KILL';
    case 'stopping':
      return 'KILL';
    case 'finished':
    case 'closed':
      return undefined;
  }
}

/** What a lost attempt becomes, and the message its row gets. */
export interface LostFate {
  readonly state: TaskState;
  readonly message: string;
  /** It fails the task for good (MAX_FAULT_RERUNS). */
  readonly fails: boolean;
  /** It counts as a fault re-run of the task (its worker was lost under it). */
  readonly counts: boolean;
}

/**
 * A lost attempt (its worker gone, or ended by its worker itself): NEED_FAULT_TOLERANCE while
 * running, unless its worker has now been lost under the task more than maxFaultReruns times:
 * then it fails (a poison task, e.g. one its worker cannot even accept, would otherwise re-run
 * forever with a new row each cycle).
 *
 * `counts` false: nothing was lost under it. A live worker that never heard of an attempt that
 * never started, asked after a failover: the previous owner's Dispatch did not reach it (or was
 * refused as the owner went away). Counting those would fail healthy tasks that a few hand-overs
 * caught in flight; an ambiguous Dispatch of this owner answered UNKNOWN does count (the poison
 * case).
 */
export function lostFate(
  mode: RunMode,
  at: AttemptRef,
  maxFaultReruns: number,
  why: string,
  counts = true,
): LostFate {
  const state = interruptedState(mode, 'lost') ?? 'KILL';
  const losses = at.faultReruns + 1;
  if (counts && state === 'NEED_FAULT_TOLERANCE' && losses > maxFaultReruns) {
    return {
      state: 'FAILURE',
      message: `${why}; its worker was lost under it ${losses} times, more than MAX_FAULT_RERUNS (${maxFaultReruns}): not run again`,
      fails: true,
      counts,
    };
  }
  return { state, message: why, fails: false, counts };
}

/** How an attempt ended, as far as the budgets of the next one go. */
export type AttemptEnd = 'ownFailure' | 'fault' | 'other';

/**
 * The budgets of the attempt after `at`: a failure of its own uses a retry, a lost worker counts
 * a fault re-run, anything else (a pause, a refused dispatch) neither.
 */
export function budgetAfter(at: AttemptRef, end: AttemptEnd): Budget {
  return {
    retriesUsed: at.retriesUsed + (end === 'ownFailure' ? 1 : 0),
    faultReruns: at.faultReruns + (end === 'fault' ? 1 : 0),
  };
}

/** How the row of an earlier attempt counts for the next one (adoption of a stored run). */
export function endOfState(state: TaskState): AttemptEnd {
  if (state === 'FAILURE' || state === 'DELAY_EXECUTION') return 'ownFailure';
  if (state === 'NEED_FAULT_TOLERANCE') return 'fault';
  return 'other';
}

export const FRESH_BUDGET: Budget = { retriesUsed: 0, faultReruns: 0 };

/** A KILL its worker did on its own (session lost, stopping, restarted...): a fault, not a failure. */
export function killedByWorker(state: TaskState, message: string): boolean {
  return state === 'KILL' && message !== TASK_RESULT_MESSAGES.killed;
}

/** What a worker's result (other than killedByWorker) is recorded as. */
export type ResultFate =
  /** DELAY_EXECUTION: failed with a retry left; the next attempt after retryIntervalMs. */
  | { readonly kind: 'retry' }
  /** FAILURE while pausing with a retry left: the resume runs it again (counting the retry). */
  | { readonly kind: 'retryOnResume' }
  /** Final for this run; `fails`: it fails the run. */
  | { readonly kind: 'final'; readonly state: 'SUCCESS' | 'FAILURE' | 'KILL'; readonly fails: boolean };

export function resultFate(
  mode: RunMode,
  def: RunTaskDef,
  at: AttemptRef,
  state: 'SUCCESS' | 'FAILURE' | 'KILL',
): ResultFate {
  const retryLeft = at.retriesUsed < def.retries;
  if (state === 'FAILURE' && retryLeft) {
    if (mode.kind === 'running') return { kind: 'retry' };
    if (mode.kind === 'pausing') return { kind: 'retryOnResume' };
  }
  // A stop ends the run STOP whatever its tasks did.
  return { kind: 'final', state, fails: state !== 'SUCCESS' && mode.kind !== 'stopping' };
}

/** Whether a stored row already holds what a worker's result would record (a repeated event). */
export function alreadyRecorded(stored: TaskState, reported: TaskState): boolean {
  return stored === reported || (reported === 'FAILURE' && stored === 'DELAY_EXECUTION');
}

/** The mode once a task failed for good (reason names it). */
export function withFailure(mode: RunMode, policy: FailurePolicy, reason: string): RunMode {
  switch (mode.kind) {
    case 'running':
      if (policy === 'CONTINUE') {
        return mode.failure === undefined ? { kind: 'running', failure: reason } : mode;
      }
      return { kind: 'failing', reason };
    case 'pausing':
      // The run ends FAILURE either way; nothing it has not started will start.
      return { kind: 'failing', reason };
    case 'failing':
    case 'stopping':
    case 'finished':
    case 'closed':
      return mode;
  }
}

/** Where a task runs: master-side types (SUB_WORKFLOW, CONDITIONS, SWITCH) never use a worker. */
export function runsOn(def: RunTaskDef): 'worker' | 'master' {
  return (MASTER_TASK_TYPES as readonly string[]).includes(def.type) ? 'master' : 'worker';
}
