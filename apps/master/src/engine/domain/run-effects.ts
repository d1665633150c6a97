/**
 * What a transition asks the runner shell to do. The shell runs a step's effects in order:
 * - writes are fenced on (host, epoch) and guarded on the rows' states; a write that finds the
 *   fence gone closes the runner; a write that changed fewer rows than it names is a miss: the
 *   rest of the step is dropped (it was computed from a view the database disagrees with) and
 *   the rows are read again (a `reloaded` event: the shell does it, no effect asks for it). So a call that depends on a write is simply
 *   emitted after it: DISPATCH is on the row before the Dispatch call leaves;
 * - createAttempts / retry answer with a `created` event, handled before the rest of the step;
 * - calls to workers are not awaited (their answers come back as events), except a stop's Kill;
 * - timers fire as `timer` events; a `reply` answers the worker event being handled.
 */
import type { TaskState, WorkflowState } from '@porpoise/common';
import type { EventAck } from '@porpoise/rpc';
import type { TimerKey } from './run-events';
import type { Outputs } from './run-state';

export interface NewAttemptItem {
  readonly name: string;
  readonly attempt: number;
  readonly retriesUsed: number;
  readonly faultReruns: number;
  readonly skipped: boolean;
}

/** Fenced writes; each names the rows it must change (a miss otherwise). */
export type WriteEffect =
  | { readonly kind: 'markDispatch'; readonly rowId: number; readonly worker: string }
  | { readonly kind: 'markUndispatched'; readonly rowId: number; readonly worker: string }
  | {
      readonly kind: 'markStarted';
      readonly rowId: number;
      readonly worker: string;
      readonly startMs: number;
    }
  | {
      readonly kind: 'markFinished';
      readonly rowId: number;
      readonly worker: string;
      readonly state: TaskState;
      readonly exitCode: number;
      readonly startMs: number;
      readonly endMs: number;
      readonly message: string;
      readonly outputs: Outputs;
      /** DELAY_EXECUTION: the retry is due this long after the write (database clock). */
      readonly retryDelayMs?: number;
    }
  | {
      readonly kind: 'markState';
      readonly rowIds: readonly number[];
      readonly from: readonly TaskState[];
      readonly state: TaskState;
      readonly message: string;
    };

export type Effect =
  | WriteEffect
  /** New attempts; answered by `created` (missing rows are a miss). */
  | { readonly kind: 'createAttempts'; readonly items: readonly NewAttemptItem[] }
  /** DELAY_EXECUTION → FAILURE and attempt + 1 (one more retry used, counted from the row). */
  | { readonly kind: 'retry'; readonly rowId: number; readonly name: string; readonly attempt: number }
  /** The instance's final state (and why); answered by `finished`. */
  | { readonly kind: 'finish'; readonly state: WorkflowState; readonly message?: string }
  /** Dispatch call; answered by dispatchAnswered / dispatchFailed. */
  | {
      readonly kind: 'dispatch';
      readonly rowId: number;
      readonly attempt: number;
      readonly name: string;
      readonly worker: string;
    }
  /** TakeOver call (this master, this epoch); answered by takeOverAnswered / takeOverFailed. */
  | { readonly kind: 'takeOver'; readonly rowId: number; readonly name: string; readonly worker: string }
  /** Kill calls; `wait`: the step goes on once they answered (a stop), else fire and forget. */
  | {
      readonly kind: 'kill';
      readonly targets: ReadonlyArray<{ readonly rowId: number; readonly worker: string }>;
      readonly wait: boolean;
    }
  /** The worker accepted a task: count it until its next heartbeat (worker selection). */
  | { readonly kind: 'noteAssigned'; readonly worker: string }
  /** Start a master-side task (SUB_WORKFLOW, CONDITIONS, SWITCH); answered by masterTaskEnded. */
  | {
      readonly kind: 'runOnMaster';
      readonly rowId: number;
      readonly name: string;
      /** Its row and its child are PAUSE: resume both first (onMaster `paused`). */
      readonly resume?: boolean;
    }
  /** Check a DEPENDENT attempt's dependency (one read); answered by dependencyChecked. */
  | { readonly kind: 'checkDependency'; readonly rowId: number; readonly name: string }
  | { readonly kind: 'setTimer'; readonly key: TimerKey; readonly ms: number }
  | { readonly kind: 'clearTimer'; readonly key: TimerKey }
  /**
   * Ask for slots of task group `group` for these SUBMITTED_SUCCESS attempts (queued): write
   * their queue rows (fenced, idempotent: a row keeps its place and grant), run a grant pass for
   * the group, then read which of them hold a slot; answered by slotGranted (or payloadRefused
   * when the group no longer exists).
   */
  | { readonly kind: 'requestSlot'; readonly group: string; readonly rowIds: readonly number[] }
  /** Queue an `advance` event behind the current one (after the worker got its answer). */
  | { readonly kind: 'advanceLater' }
  | { readonly kind: 'reply'; readonly ack: EventAck }
  | { readonly kind: 'log'; readonly level: 'log' | 'warn' | 'error'; readonly message: string };

const WRITE_KINDS: ReadonlySet<Effect['kind']> = new Set([
  'markDispatch',
  'markUndispatched',
  'markStarted',
  'markFinished',
  'markState',
]);

export function isWrite(effect: Effect): effect is WriteEffect {
  return WRITE_KINDS.has(effect.kind);
}

/** The rows a write must change. */
export function rowsOf(write: WriteEffect): readonly number[] {
  return write.kind === 'markState' ? write.rowIds : [write.rowId];
}

/** A write that changed fewer rows than it names: the view it was computed from is behind. */
export function missed(write: WriteEffect, changed: readonly number[]): boolean {
  return rowsOf(write).some((id) => !changed.includes(id));
}
