/**
 * The state of one workflow run as its owning master drives it: the run's mode (one tagged
 * union) and one slot per task of the DAG, each in exactly one status (a discriminated union).
 * Plain immutable data: transition.ts maps (state, event) to (state, effects); nothing here does
 * I/O or reads a clock.
 */
import type {
  ConditionsSpec,
  DependentSpec,
  Priority,
  SwitchSpec,
  TaskState,
  WorkflowState,
} from '@porpoise/common';

/** What the engine needs of a task definition (any task type has these). */
export interface RunTaskDef {
  readonly name: string;
  readonly type: string;
  /** How many times a task that failed by itself runs again (at most retries + 1 runs). */
  readonly retries: number;
  readonly retryIntervalMs: number;
  readonly workerGroup: string;
  /** Among tasks ready at once, higher priority starts first; absent is MEDIUM. */
  readonly priority?: Priority;
  /**
   * The task group whose slot each attempt holds while it runs (DESIGN.md section 10); worker
   * types only. A submitted attempt first waits for a slot (status `queued`).
   */
  readonly taskGroup?: string;
  /** CONDITIONS / SWITCH: the branches (the task's own field). */
  readonly conditions?: ConditionsSpec;
  readonly switch?: SwitchSpec;
  /** DEPENDENT: what it waits for (the task's own field). */
  readonly dependent?: DependentSpec;
  /** The task's timeoutMs (0 or absent: none); the engine applies it to DEPENDENT tasks. */
  readonly timeoutMs?: number;
}

/** What a task's params are resolved from (besides the outputs of its upstream tasks). */
export interface RunParams {
  /** The workflow's declared params (settings.params). */
  readonly defaults: Readonly<Record<string, string>>;
  readonly run: Readonly<Record<string, string>>;
  /** The run's schedule time (a manual run: its start time), epoch ms. */
  readonly scheduleTimeMs: number;
  /** The IANA time zone the date built-ins are computed in. */
  readonly timezone: string;
}

/** The DAG: tasks, edges both ways, and a topological order (the order ready tasks start in). */
export interface RunGraph {
  readonly tasks: ReadonlyMap<string, RunTaskDef>;
  readonly upstream: ReadonlyMap<string, readonly string[]>;
  readonly downstream: ReadonlyMap<string, readonly string[]>;
  readonly order: readonly string[];
}

/**
 * END (DESIGN.md section 9, the default): after a task failed for good nothing new starts and the
 * instance ends FAILURE once running tasks ended. CONTINUE: every task not downstream of a
 * failure still runs; the instance ends FAILURE.
 */
export type FailurePolicy = 'END' | 'CONTINUE';

/** What the run does as a whole. */
export type RunMode =
  /** Starting ready tasks. `failure` (CONTINUE only): a task failed; the run ends FAILURE. */
  | { readonly kind: 'running'; readonly failure?: string }
  /** A task failed for good (END): nothing new starts; the run ends FAILURE once nothing runs. */
  | { readonly kind: 'failing'; readonly reason: string }
  /** READY_PAUSE: nothing new starts; running tasks finish; then PAUSE (resume continues it). */
  | { readonly kind: 'pausing' }
  /** READY_STOP (ends STOP) or a workflow timeout (ends FAILURE): running tasks are killed. */
  | { readonly kind: 'stopping'; readonly endAs: 'STOP' | 'FAILURE'; readonly reason: string }
  /** The instance row holds its final state: nothing more is written. */
  | { readonly kind: 'finished'; readonly state: WorkflowState }
  /** No longer driven here (ownership lost, dropped): nothing more is written. */
  | { readonly kind: 'closed'; readonly reason: string };

/** The identity of an attempt (a task_instance row) and the budgets it started with. */
export interface AttemptRef {
  readonly id: number;
  readonly attempt: number;
  /** Retries used before this attempt (its own failures). */
  readonly retriesUsed: number;
  /** Earlier attempts whose worker lost them (NEED_FAULT_TOLERANCE). */
  readonly faultReruns: number;
}

/** The budgets a new attempt starts with. */
export interface Budget {
  readonly retriesUsed: number;
  readonly faultReruns: number;
}

/** An attempt that ended without ending the task (PAUSE, NEED_FAULT_TOLERANCE, a paused retry). */
export interface LeftAttempt {
  readonly at: AttemptRef;
  readonly state: TaskState;
  readonly host: string | null;
}

export type Outputs = Readonly<Record<string, string>>;

/**
 * Where a task stands. `at` is the current attempt; `worker` the worker its row names. Every
 * status that may run on a worker names that worker, and only that worker is ever asked about it.
 */
export type SlotStatus =
  /**
   * No attempt runs (none yet, or the last one ended PAUSE / NEED_FAULT_TOLERANCE / FAILURE with
   * a retry kept for a resume): the next one is created with `next` once the task is ready.
   * `avoid`: a worker that ended the previous attempt itself (preferably not chosen again).
   */
  | {
      readonly kind: 'pending';
      readonly next: Budget;
      readonly avoid?: string;
      readonly last?: LeftAttempt;
    }
  /** Its new attempt row is being written (createAttempts / retry); the id comes back. */
  | { readonly kind: 'creating'; readonly attempt: number; readonly next: Budget; readonly avoid?: string }
  /**
   * SUBMITTED_SUCCESS: not on any worker. `parked`: no live worker of its group took it; it
   * waits for one. `refusedBy`: the row still names the worker that refused it (DISPATCH, which
   * the next markDispatch or markUndispatched moves on). `tried`: workers that refused this round.
   */
  | {
      readonly kind: 'submitted';
      readonly at: AttemptRef;
      readonly tried: readonly string[];
      readonly avoid?: string;
      readonly parked: boolean;
      readonly refusedBy?: string;
      /** Its task group gave this attempt a slot (only set for a task with a taskGroup). */
      readonly granted?: boolean;
    }
  /**
   * SUBMITTED_SUCCESS and waiting for a slot of its task group `group` (its queue row is written,
   * first come first served): a slotGranted event sends it out. `tried` / `avoid` as submitted.
   */
  | {
      readonly kind: 'queued';
      readonly at: AttemptRef;
      readonly group: string;
      readonly tried: readonly string[];
      readonly avoid?: string;
    }
  /**
   * DISPATCH stored on `worker` but maybe never sent (read back after a lost answer or an error):
   * sent again to that worker (Dispatch is idempotent per task instance id), never to another.
   */
  | { readonly kind: 'unsent'; readonly at: AttemptRef; readonly worker: string }
  /**
   * DISPATCH written on `worker` and the Dispatch call in flight. `started`: its TaskStarted came
   * first. `lostDuring`: the worker was reported gone meanwhile (the incarnation named, or
   * 'unknown'): the answer tells whether that process took it.
   */
  | {
      readonly kind: 'dispatching';
      readonly at: AttemptRef;
      readonly worker: string;
      readonly tried: readonly string[];
      readonly avoid?: string;
      readonly started: boolean;
      readonly lostDuring?: number | 'unknown';
      /** The registration reported gone with lostDuring, when named. */
      readonly lostRegistration?: number;
    }
  /**
   * On `worker`: accepted (DISPATCH) or started (RUNNING_EXECUTION). `incarnation`: the worker
   * process (its heartbeat startTime) that took it, when known: a restarted worker on the same
   * address is another process, and the loss of the old one does not touch this task.
   */
  | {
      readonly kind: 'onWorker';
      readonly at: AttemptRef;
      readonly worker: string;
      readonly started: boolean;
      readonly incarnation?: number;
      /**
       * The registration of that process that took it, when known: the loss of an earlier
       * registration (a session that expired, then a new one) does not touch this task.
       */
      readonly registration?: number;
    }
  /**
   * It may run on `worker` and only TakeOver there settles it: a Dispatch that failed after it may
   * have been sent (cause 'dispatch'), or an attempt found active at adoption ('adoption').
   * `asking`: a TakeOver call is in flight; else the next one waits `backoffMs`.
   */
  | {
      readonly kind: 'resolving';
      readonly at: AttemptRef;
      readonly worker: string;
      readonly started: boolean;
      readonly cause: 'dispatch' | 'adoption';
      readonly asking: boolean;
      readonly backoffMs: number;
    }
  /**
   * DELAY_EXECUTION: failed with a retry left; `due` once its delay is over. `dueInMs`: the delay
   * left when the row was read back (adoption), counted by the database's clock.
   */
  | {
      readonly kind: 'delayed';
      readonly at: AttemptRef;
      readonly host: string | null;
      readonly due: boolean;
      readonly dueInMs?: number;
    }
  /**
   * A master-side task (SUB_WORKFLOW, DEPENDENT) in progress on this master: it never occupies a
   * worker. Its outcome comes back as a masterTaskEnded / childEnded / dependencyChecked event.
   */
  | {
      readonly kind: 'onMaster';
      readonly at: AttemptRef;
      /**
       * A DEPENDENT attempt adopted RUNNING_EXECUTION: how long it had run (its row's start_time
       * to the database's now() at the read), so its timeout is not restarted by a failover.
       */
      readonly elapsedMs?: number;
      /**
       * A SUB_WORKFLOW attempt paused with its run, adopted by a resume (or a failover after it):
       * its row was still PAUSE and so was its child; the start resumes both in one write before
       * the child is looked at again (runOnMaster `resume`).
       */
      readonly paused?: boolean;
    }
  /** SKIPPED: on a branch not taken, or only reachable through one (final). */
  | { readonly kind: 'skipped'; readonly at: AttemptRef }
  /** Ended for this run: SUCCESS (with its outputs), FAILURE or KILL. */
  | {
      readonly kind: 'ended';
      readonly at: AttemptRef;
      readonly state: 'SUCCESS' | 'FAILURE' | 'KILL';
      readonly host: string | null;
      readonly outputs: Outputs;
    };

export type SlotKind = SlotStatus['kind'];

export interface Slot {
  readonly name: string;
  readonly def: RunTaskDef;
  /** Highest attempt number known for the task, so a new attempt's number is unique. */
  readonly lastAttempt: number;
  readonly status: SlotStatus;
}

/** Durations the transition sets timers with (from MasterOptions). */
export interface RunTimings {
  /** A parked task retries on its own after this long (worker events are the usual wake-up). */
  readonly parkedRetryMs: number;
  /** Backoff of the TakeOver calls that settle an ambiguous Dispatch (doubling, capped). */
  readonly resolveBackoffMinMs: number;
  readonly resolveBackoffMaxMs: number;
}

export interface RunState {
  readonly instanceId: number;
  readonly epoch: number;
  readonly graph: RunGraph;
  readonly failurePolicy: FailurePolicy;
  /** A task whose worker is lost under it more than this many times fails (MAX_FAULT_RERUNS). */
  readonly maxFaultReruns: number;
  /** Params for SWITCH expressions (absent: none declared, none given). */
  readonly params?: RunParams;
  readonly timings: RunTimings;
  readonly mode: RunMode;
  /** One slot per task, in the graph's order (an array: a step copies it cheaply). */
  readonly slots: readonly Slot[];
  /** Task name → its position in `slots` (fixed for the run). */
  readonly index: ReadonlyMap<string, number>;
  /** Every attempt id of this run seen so far → its task (to answer events about old attempts). */
  readonly rowIds: RowIndex;
}

/**
 * Which task each attempt id belongs to. Facts that never change and only grow, so every state
 * of a run shares one index instead of copying it on each new attempt.
 */
export class RowIndex {
  private readonly byId = new Map<number, string>();

  constructor(entries: Iterable<readonly [number, string]> = []) {
    for (const [id, name] of entries) this.byId.set(id, name);
  }

  get(rowId: number): string | undefined {
    return this.byId.get(rowId);
  }

  add(rowId: number, name: string): void {
    this.byId.set(rowId, name);
  }
}

export function slotOf(state: RunState, name: string): Slot | undefined {
  const i = state.index.get(name);
  return i === undefined ? undefined : state.slots[i];
}

/** The current attempt's row as the slot implies it: state and the worker it names. */
export interface CurrentRow {
  readonly at: AttemptRef;
  readonly state: TaskState;
  readonly host: string | null;
}

/** The row a status implies (undefined: no attempt in this run yet). */
export function currentRow(status: SlotStatus): CurrentRow | undefined {
  switch (status.kind) {
    case 'pending':
      return status.last;
    case 'creating':
      return undefined;
    case 'submitted':
      return {
        at: status.at,
        state: status.refusedBy === undefined ? 'SUBMITTED_SUCCESS' : 'DISPATCH',
        host: status.refusedBy ?? null,
      };
    case 'queued':
      return { at: status.at, state: 'SUBMITTED_SUCCESS', host: null };
    case 'unsent':
      return { at: status.at, state: 'DISPATCH', host: status.worker };
    case 'dispatching':
    case 'onWorker':
    case 'resolving':
      return { at: status.at, state: status.started ? 'RUNNING_EXECUTION' : 'DISPATCH', host: status.worker };
    case 'delayed':
      return { at: status.at, state: 'DELAY_EXECUTION', host: status.host };
    case 'onMaster':
      return { at: status.at, state: 'RUNNING_EXECUTION', host: null };
    case 'skipped':
      return { at: status.at, state: 'SKIPPED', host: null };
    case 'ended':
      return { at: status.at, state: status.state, host: status.host };
  }
}

/** Statuses whose attempt may run on a worker right now (its worker is asked, killed, or lost). */
export type OnWorkerStatus = Extract<
  SlotStatus,
  { kind: 'unsent' | 'dispatching' | 'onWorker' | 'resolving' }
>;

export function onWorker(status: SlotStatus): status is OnWorkerStatus {
  return (
    status.kind === 'unsent' ||
    status.kind === 'dispatching' ||
    status.kind === 'onWorker' ||
    status.kind === 'resolving'
  );
}

/** Anything the run must wait for before it can end (an attempt exists and is not over). */
export function isLive(status: SlotStatus): boolean {
  switch (status.kind) {
    case 'pending':
    case 'skipped':
    case 'ended':
      return false;
    case 'creating':
    case 'submitted':
    case 'queued':
    case 'unsent':
    case 'dispatching':
    case 'onWorker':
    case 'resolving':
    case 'delayed':
    case 'onMaster':
      return true;
  }
}

/** The run may still write (neither finished nor closed). */
export function isOpen(mode: RunMode): boolean {
  return mode.kind !== 'finished' && mode.kind !== 'closed';
}

export interface RunnerSnapshot {
  instanceId: number;
  epoch: number;
  mode: RunMode['kind'];
  /** The run will end FAILURE (a task failed for good). */
  failed: boolean;
  tasks: Array<{
    name: string;
    status: SlotKind;
    state?: TaskState;
    attempt?: number;
    host: string | null;
    parked: boolean;
  }>;
}

/** What the runner believes right now (diagnostics and tests; the rows are the truth). */
export function snapshotOf(state: RunState): RunnerSnapshot {
  const { mode } = state;
  return {
    instanceId: state.instanceId,
    epoch: state.epoch,
    mode: mode.kind,
    failed: mode.kind === 'failing' || (mode.kind === 'running' && mode.failure !== undefined),
    tasks: state.slots.map((s) => {
      const row = currentRow(s.status);
      return {
        name: s.name,
        status: s.status.kind,
        state: row?.state,
        attempt: row?.at.attempt,
        host: row?.host ?? null,
        parked: s.status.kind === 'submitted' && s.status.parked,
      };
    }),
  };
}

/**
 * The outputs a task sees: those of every task upstream of it (direct or not) that ended with
 * outputs, in the graph's topological order (a task nearer the bottom wins a name: resolveParams
 * lets a later map win).
 */
export function upstreamOutputs(state: RunState, name: string): Outputs[] {
  const seen = new Set<string>();
  const stack = [...(state.graph.upstream.get(name) ?? [])];
  while (stack.length > 0) {
    const n = stack.pop();
    if (n === undefined || seen.has(n)) continue;
    seen.add(n);
    stack.push(...(state.graph.upstream.get(n) ?? []));
  }
  const out: Outputs[] = [];
  for (const n of state.graph.order) {
    if (!seen.has(n)) continue;
    const s = slotOf(state, n)?.status;
    if (s?.kind === 'ended' && Object.keys(s.outputs).length > 0) out.push(s.outputs);
  }
  return out;
}

/** Two identities (worker incarnations, registrations) known on both sides and not equal. */
export function differs(a: number | undefined, b: number | undefined): boolean {
  return a !== undefined && b !== undefined && a !== b;
}
