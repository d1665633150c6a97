/**
 * The state a run starts from when this master takes an instance: one slot per task, from the
 * latest attempt of each task and the command that gave it to us. Budgets (retries used, fault
 * re-runs) come from the rows, so no failover resets them.
 */
import type { CommandType, WorkflowState } from '@porpoise/common';
import type { StoredRow } from './run-events';
import {
  RowIndex,
  type AttemptRef,
  type FailurePolicy,
  type RunGraph,
  type RunMode,
  type RunParams,
  type RunTaskDef,
  type RunState,
  type RunTimings,
  type Slot,
  type SlotStatus,
} from './run-state';
import { handledFailure } from './branching';
import { budgetAfter, endOfState, FRESH_BUDGET, withFailure } from './task-fate';

export interface AdoptionInput {
  readonly instanceId: number;
  readonly epoch: number;
  readonly commandType: CommandType;
  /** The instance's state as taken (READY_STOP / READY_PAUSE: a request the old owner left). */
  readonly state: WorkflowState;
  /** The DAG, or why the stored definition cannot run (the run then fails at once). */
  readonly graph: RunGraph | Error;
  /** Latest attempt of each task (empty for a fresh run). */
  readonly latest: readonly StoredRow[];
  readonly failurePolicy: FailurePolicy;
  readonly maxFaultReruns: number;
  /** Params for SWITCH expressions. */
  readonly params?: RunParams;
  readonly timings: RunTimings;
}

export function refOf(row: StoredRow): AttemptRef {
  return { id: row.id, attempt: row.attempt, retriesUsed: row.retriesUsed, faultReruns: row.faultReruns };
}

/**
 * What a stored row that is not on a worker means for its task, as a failover continues it:
 * finished tasks stay finished, unfinished ones go on where they stood (a waiting retry waits out
 * the rest of its delay). Rows on a worker (DISPATCH, RUNNING_EXECUTION) are the caller's.
 */
export function restoredStatus(row: StoredRow): SlotStatus {
  const at = refOf(row);
  switch (row.state) {
    case 'SUCCESS':
    case 'FAILURE':
    case 'KILL':
      return { kind: 'ended', at, state: row.state, host: row.host, outputs: row.outputs };
    case 'SKIPPED':
      return { kind: 'skipped', at };
    case 'DELAY_EXECUTION': {
      const dueInMs = row.retryDueInMs ?? 0;
      return { kind: 'delayed', at, host: row.host, due: dueInMs <= 0, dueInMs };
    }
    case 'PAUSE':
    case 'NEED_FAULT_TOLERANCE':
      return {
        kind: 'pending',
        next: budgetAfter(at, endOfState(row.state)),
        avoid: row.state === 'NEED_FAULT_TOLERANCE' ? (row.host ?? undefined) : undefined,
        last: { at, state: row.state, host: row.host },
      };
    case 'SUBMITTED_SUCCESS':
    case 'DISPATCH':
    case 'RUNNING_EXECUTION':
      return { kind: 'submitted', at, tried: [], parked: false };
  }
}

/** The slot of a task, given its latest row and the command. */
function adoptedStatus(
  type: CommandType,
  instanceState: WorkflowState,
  row: StoredRow | undefined,
  def: RunTaskDef,
): SlotStatus {
  if (row === undefined) return { kind: 'pending', next: FRESH_BUDGET };
  const at = refOf(row);
  const last = { at, state: row.state, host: row.host };
  if (row.state === 'RUNNING_EXECUTION' && row.host === null && def.type === 'SUB_WORKFLOW') {
    // Its child instance runs on (or has ended): the runner finds it again, never starts another.
    return { kind: 'onMaster', at };
  }
  if (row.state === 'RUNNING_EXECUTION' && row.host === null && def.type === 'DEPENDENT') {
    // It waits on, checked again at once, with what is left of its timeout (from its start_time).
    return { kind: 'onMaster', at, elapsedMs: row.runningForMs ?? 0 };
  }
  if (
    row.state === 'PAUSE' &&
    def.type === 'SUB_WORKFLOW' &&
    (type === 'RECOVER_SUSPENDED_PROCESS' || type === 'RECOVER_TOLERANCE_FAULT_PROCESS') &&
    instanceState !== 'READY_PAUSE' &&
    instanceState !== 'READY_STOP'
  ) {
    // Paused with its run: the resume goes on with the same child (resumed), not a new one.
    return { kind: 'onMaster', at, paused: true };
  }
  if (row.state === 'DISPATCH' || row.state === 'RUNNING_EXECUTION') {
    // Still on a worker as far as the rows know: whatever the command, ask that worker (TakeOver).
    if (row.host !== null) {
      return {
        kind: 'resolving',
        at,
        worker: row.host,
        started: row.state === 'RUNNING_EXECUTION',
        cause: 'adoption',
        asking: false,
        backoffMs: 0,
      };
    }
    return { kind: 'pending', next: budgetAfter(at, 'fault'), last };
  }
  switch (type) {
    case 'RECOVER_TOLERANCE_FAULT_PROCESS':
      // Failover: the run goes on where it stood.
      return restoredStatus(row);
    case 'RECOVER_SUSPENDED_PROCESS':
    case 'START_FAILURE_TASK_PROCESS':
      // Resume / re-run of failed tasks: what succeeded (or was skipped) stays, the rest runs
      // again. A resume continues the budgets; a re-run of failed tasks starts them afresh.
      if (row.state === 'SUCCESS' || row.state === 'SKIPPED') return restoredStatus(row);
      return {
        kind: 'pending',
        next: type === 'RECOVER_SUSPENDED_PROCESS' ? budgetAfter(at, endOfState(row.state)) : FRESH_BUDGET,
        last,
      };
    default:
      // START_PROCESS, SCHEDULER, REPEAT_RUNNING, COMPLEMENT_DATA: every task runs again.
      return { kind: 'pending', next: FRESH_BUDGET };
  }
}

const EMPTY_GRAPH: RunGraph = { tasks: new Map(), upstream: new Map(), downstream: new Map(), order: [] };

export function adoptRun(input: AdoptionInput): RunState {
  const base = {
    instanceId: input.instanceId,
    epoch: input.epoch,
    failurePolicy: input.failurePolicy,
    maxFaultReruns: input.maxFaultReruns,
    params: input.params,
    timings: input.timings,
  };
  if (input.graph instanceof Error) {
    return {
      ...base,
      graph: EMPTY_GRAPH,
      mode: { kind: 'failing', reason: `cannot run: ${input.graph.message}` },
      slots: [],
      index: new Map(),
      rowIds: new RowIndex(),
    };
  }
  const { graph } = input;
  const latest = new Map(input.latest.map((r) => [r.name, r]));
  const slots: Slot[] = [];
  const rowIds = new RowIndex();
  for (const name of graph.order) {
    const def = graph.tasks.get(name);
    if (def === undefined) continue;
    const row = latest.get(name);
    const status = adoptedStatus(input.commandType, input.state, row, def);
    slots.push({ name, def, lastAttempt: row?.attempt ?? 0, status });
    if (row !== undefined && status.kind !== 'pending') rowIds.add(row.id, name);
    else if (status.kind === 'pending' && status.last !== undefined) rowIds.add(status.last.at.id, name);
  }
  let mode: RunMode =
    input.state === 'READY_STOP'
      ? { kind: 'stopping', endAs: 'STOP', reason: 'stop requested' }
      : input.state === 'READY_PAUSE'
        ? { kind: 'pausing' }
        : { kind: 'running' };
  const view = { ...base, graph, mode, slots, index: new Map(slots.map((s, i) => [s.name, i])), rowIds };
  for (const slot of slots) {
    const s = slot.status;
    if (s.kind === 'ended' && s.state !== 'SUCCESS' && !handledFailure(view, slot.name)) {
      mode = withFailure(mode, input.failurePolicy, `task ${slot.name} ended ${s.state}`);
    }
  }
  const index = new Map(slots.map((s, i) => [s.name, i]));
  return { ...base, graph, mode, slots, index, rowIds };
}
