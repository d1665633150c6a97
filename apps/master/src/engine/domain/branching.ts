/**
 * CONDITIONS and SWITCH (DESIGN.md section 9): decided on the master, from the run's state
 * alone, so a failover decides the same way again (the decision is not stored: the upstream
 * rows and the params it is made from are). Pure.
 */
import {
  builtinParams,
  evaluateSwitchExpression,
  parseSwitchExpression,
  resolveParams,
  WorkflowLanguageError,
} from '@porpoise/common';
import { slotOf, upstreamOutputs, type AttemptRef, type RunState, type RunTaskDef } from './run-state';

/** The outcome of a branching task: its state, its row's message, and the targets not taken. */
export interface BranchDecision {
  readonly state: 'SUCCESS' | 'FAILURE';
  readonly message: string;
  readonly notTaken: readonly string[];
}

export const isBranching = (def: RunTaskDef): boolean => def.type === 'CONDITIONS' || def.type === 'SWITCH';

/**
 * A failure of this task is handled when every task right below it is a CONDITIONS task: it then
 * fails no run. A plain task below it could never start, so the failure counts as usual (END:
 * the run fails naming the task, rather than stalling with nothing left to start).
 */
export function handledFailure(state: RunState, name: string): boolean {
  const below = state.graph.downstream.get(name) ?? [];
  return below.length > 0 && below.every((n) => state.graph.tasks.get(n)?.type === 'CONDITIONS');
}

/**
 * What a CONDITIONS or SWITCH task decides, given its attempt (undefined for other types).
 * CONDITIONS: every upstream task succeeded (or was skipped) → its `failure` targets are not
 * taken, else its `success` targets. SWITCH: the first case whose expression holds over the
 * task's effective params picks its `then`; every other target (the default too, when not
 * taken) is not taken; an expression that cannot be evaluated fails the task.
 */
export function decideBranch(state: RunState, name: string, at: AttemptRef): BranchDecision | undefined {
  const def = state.graph.tasks.get(name);
  if (def?.type === 'CONDITIONS' && def.conditions !== undefined) {
    const ups = state.graph.upstream.get(name) ?? [];
    const allSucceeded = ups.every((u) => {
      const s = slotOf(state, u)?.status;
      return s?.kind === 'skipped' || (s?.kind === 'ended' && s.state === 'SUCCESS');
    });
    const { success, failure } = def.conditions;
    const taken = allSucceeded ? success : failure;
    return {
      state: 'SUCCESS',
      message: allSucceeded ? 'every upstream task succeeded' : 'an upstream task did not succeed',
      notTaken: targetsOf(def).filter((t) => !taken.includes(t)),
    };
  }
  if (def?.type === 'SWITCH' && def.switch !== undefined) {
    const p = state.params ?? { defaults: {}, run: {}, scheduleTimeMs: 0, timezone: 'UTC' };
    const builtins = {
      workflowInstanceId: state.instanceId,
      taskInstanceId: at.id,
      taskName: name,
      attempt: at.attempt,
      scheduleTime: new Date(p.scheduleTimeMs),
      timezone: p.timezone,
    };
    let picked: string | undefined;
    try {
      const params = {
        ...resolveParams(p.defaults, p.run, upstreamOutputs(state, name)),
        ...builtinParams(builtins),
      };
      picked = def.switch.cases.find((c) =>
        evaluateSwitchExpression(parseSwitchExpression(c.when), params, builtins),
      )?.then;
    } catch (err) {
      if (!(err instanceof WorkflowLanguageError)) throw err;
      return { state: 'FAILURE', message: err.message, notTaken: targetsOf(def) };
    }
    picked ??= def.switch.default;
    return {
      state: 'SUCCESS',
      message: picked === undefined ? 'no case holds and there is no default' : `took ${picked}`,
      notTaken: targetsOf(def).filter((t) => t !== picked),
    };
  }
  return undefined;
}

/** The targets a branching task that ended did not take (its downstream tasks see them SKIPPED). */
export function notTakenBy(state: RunState, name: string): readonly string[] {
  const s = slotOf(state, name)?.status;
  if (s?.kind !== 'ended' || s.state !== 'SUCCESS') return [];
  const def = state.graph.tasks.get(name);
  if (def === undefined || !isBranching(def)) return [];
  return decideBranch(state, name, s.at)?.notTaken ?? [];
}

function targetsOf(def: RunTaskDef): string[] {
  const targets = def.conditions
    ? [...def.conditions.success, ...def.conditions.failure]
    : def.switch
      ? [
          ...def.switch.cases.map((c) => c.then),
          ...(def.switch.default === undefined ? [] : [def.switch.default]),
        ]
      : [];
  return [...new Set(targets)];
}
