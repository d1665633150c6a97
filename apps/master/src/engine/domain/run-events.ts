/**
 * Everything that can happen to a run, as data: worker events, answers of the calls the run
 * made, registry and session changes, control requests, timers, and the results of the
 * database writes whose outcome the run needs (new attempt ids, a re-read after a miss).
 */
import type { TaskFinishedEvent, TaskStartedEvent, TakeOverResponse } from '@porpoise/rpc';
import type { TaskState, WorkflowState } from '@porpoise/common';
import type { Outputs } from './run-state';

/** A row as the database returned it (createAttempts, retry, a re-read). */
export interface StoredRow {
  readonly id: number;
  readonly name: string;
  readonly state: TaskState;
  readonly host: string | null;
  readonly attempt: number;
  readonly retriesUsed: number;
  readonly faultReruns: number;
  /** DELAY_EXECUTION: ms until its retry is due (database clock, at the read); else null. */
  readonly retryDueInMs: number | null;
  readonly outputs: Outputs;
  /**
   * RUNNING_EXECUTION with a start_time: ms since it (database clock, at the read); else null.
   * What is left of a DEPENDENT task's timeout after a failover.
   */
  readonly runningForMs?: number | null;
}

/** A worker's result of an attempt (TaskFinished, or held and handed over by TakeOver). */
export type WorkerResult = TaskFinishedEvent;

/** What the registry says right now: the transition reads it, never changes it. */
export interface RunEnv {
  /** The registry session is CONNECTED (SUSPENDED: start nothing new, fencing). */
  readonly canStartWork: boolean;
  isLive(address: string): boolean;
  /** A live, serving worker of group not in exclude (the configured selection strategy). */
  pick(group: string, exclude: ReadonlySet<string>): string | undefined;
}

/** Timer names: one per task and purpose, so setting one again replaces it. */
export type TimerKey =
  | `retry:${string}`
  | `park:${string}`
  | `resolve:${string}`
  /** A waiting DEPENDENT task is checked again (its checkIntervalMs). */
  | `depend:${string}`
  /** A DEPENDENT task's own timeoutMs, counted from its start_time. */
  | `taskTimeout:${string}`
  /**
   * Queued attempts of a task group ask again (a NOTIFY of a release or grant may be lost): the
   * group's name after the colon.
   */
  | `group:${string}`
  /** The workflow's timeoutMs (DESIGN.md section 9): the run is stopped and ends FAILURE. */
  | 'timeout';

export type RunEvent =
  /** The adoption is in the state: ask workers about active attempts, set timers, start. */
  | { readonly type: 'start'; readonly timeoutInMs?: number }
  | { readonly type: 'taskStarted'; readonly ev: TaskStartedEvent }
  | { readonly type: 'taskFinished'; readonly ev: WorkerResult }
  /** `incarnation`: the answering worker process (0 / undefined when it did not say). */
  | {
      readonly type: 'dispatchAnswered';
      readonly rowId: number;
      readonly worker: string;
      readonly accepted: boolean;
      readonly reason: string;
      readonly incarnation?: number;
      /** The answering process's registration (undefined when it did not say). */
      readonly registration?: number;
    }
  /**
   * ambiguous: it may have reached the worker; otherwise it provably never left this master.
   * rejected: the worker refused the spec itself (INVALID_ARGUMENT): it never ran, and would be
   * refused anywhere, so the task fails with the reason.
   */
  | {
      readonly type: 'dispatchFailed';
      readonly rowId: number;
      readonly worker: string;
      readonly ambiguous: boolean;
      readonly reason: string;
      readonly rejected?: boolean;
    }
  /**
   * The attempt's spec cannot be built (unknown parameter, data source gone, too large): found
   * before anything was marked DISPATCH or sent; the attempt ends FAILURE with the message.
   */
  | { readonly type: 'payloadRefused'; readonly rowId: number; readonly message: string }
  | {
      readonly type: 'takeOverAnswered';
      readonly rowId: number;
      readonly worker: string;
      readonly answer: TakeOverResponse;
    }
  | {
      readonly type: 'takeOverFailed';
      readonly rowId: number;
      readonly worker: string;
      readonly reason: string;
    }
  /**
   * A worker process, or one registration of it, is gone: `incarnation` names the process and
   * `registration` which of its registrations (undefined: any).
   */
  | {
      readonly type: 'workerLost';
      readonly address: string;
      readonly incarnation?: number;
      readonly registration?: number;
    }
  | { readonly type: 'workersAvailable'; readonly group: string }
  /** The registry session is CONNECTED again after SUSPENDED. */
  | { readonly type: 'sessionResumed' }
  /** The instance's state as read under the fence (READY_STOP / READY_PAUSE ask for a change). */
  | { readonly type: 'control'; readonly state: WorkflowState }
  | { readonly type: 'timer'; readonly key: TimerKey }
  /** Follow-up of a taskFinished: start what became ready (after the worker has its answer). */
  | { readonly type: 'advance' }
  /** The rows createAttempts / retry wrote. */
  | { readonly type: 'created'; readonly rows: readonly StoredRow[] }
  /**
   * The rows and instance state read again (after a write that matched fewer rows than it should
   * have, or an unexpected error). `answering`: the worker event being handled when it happened.
   */
  | {
      readonly type: 'reloaded';
      readonly rows: readonly StoredRow[];
      readonly instanceState: WorkflowState;
      readonly answering?: WorkerEvent;
    }
  /** A master-side task (onMaster) ended. */
  | {
      readonly type: 'masterTaskEnded';
      readonly rowId: number;
      readonly state: 'SUCCESS' | 'FAILURE';
      readonly message: string;
      readonly outputs: Outputs;
    }
  /**
   * The child instance of a SUB_WORKFLOW attempt (onMaster) reached a final state: the attempt
   * ends with it, except a PAUSE while this run is not pausing (the child was paused by itself;
   * the task waits for it to be resumed).
   */
  | {
      readonly type: 'childEnded';
      readonly rowId: number;
      readonly childInstanceId: number;
      readonly state: 'SUCCESS' | 'FAILURE' | 'STOP' | 'PAUSE';
      readonly message: string | null;
    }
  /** The answer of a checkDependency (a DEPENDENT attempt's check). */
  | {
      readonly type: 'dependencyChecked';
      readonly rowId: number;
      readonly outcome: 'met' | 'failed' | 'waiting';
      readonly message: string;
    }
  /** A run of workflow `code` ended (NOTIFY porpoise_instance_end): DEPENDENT tasks on it check now. */
  | { readonly type: 'dependencyWake'; readonly code: string }
  /** These queued attempts hold a slot of their task group now (read after a grant pass or a NOTIFY). */
  | { readonly type: 'slotGranted'; readonly rowIds: readonly number[] }
  /** The finish write landed. */
  | { readonly type: 'finished'; readonly state: WorkflowState }
  /** Ownership lost or dropped: nothing more is written. */
  | { readonly type: 'closed'; readonly reason: string };

export type WorkerEvent = Extract<RunEvent, { type: 'taskStarted' | 'taskFinished' }>;
