import { Injectable } from '@nestjs/common';
import { FINAL_WORKFLOW_STATES, type CommandType, type WorkflowState } from '@porpoise/common';
import {
  InstanceQueryRepository,
  type InstanceFilter,
  type TaskInstanceView,
  type WorkflowInstanceView,
  WorkflowRunRepository,
} from '@porpoise/dao';
import { ConflictError, NotFoundError } from '../common/api-errors';

export const CONTROL_ACTIONS = ['stop', 'pause', 'resume', 'rerun', 'resume-failed'] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

export interface ControlOutcome {
  readonly workflowInstanceId: number;
  /** The state the request moved the instance to. */
  readonly state: WorkflowState;
  readonly commandId?: number;
}

/**
 * stop/pause: a running instance is asked (READY_*), one no master took yet (SUBMITTED_SUCCESS, or
 * SERIAL_WAIT at its workflow's run gate) ends at once, and a paused one is stopped at once (DESIGN.md section 9); each reaches the sub-workflow children.
 */
const HALT = {
  stop: { ready: 'READY_STOP', final: 'STOP' },
  pause: { ready: 'READY_PAUSE', final: 'PAUSE' },
} as const;

/** resume/rerun/resume-failed: from which states, with which command (DolphinScheduler's names). */
const RESUBMIT: Record<
  'resume' | 'rerun' | 'resume-failed',
  { from: readonly WorkflowState[]; command: CommandType }
> = {
  resume: { from: ['PAUSE'], command: 'RECOVER_SUSPENDED_PROCESS' },
  rerun: { from: FINAL_WORKFLOW_STATES, command: 'REPEAT_RUNNING' },
  'resume-failed': { from: ['FAILURE'], command: 'START_FAILURE_TASK_PROCESS' },
};

/** How often a control request re-reads and retries when the state moved under it. */
const CONTROL_ATTEMPTS = 5;

@Injectable()
export class InstancesService {
  constructor(
    private readonly instances: InstanceQueryRepository,
    private readonly runs: WorkflowRunRepository,
  ) {}

  async get(id: number): Promise<WorkflowInstanceView & { tasks: TaskInstanceView[] }> {
    const found = await this.instances.findWithTasks(id);
    if (!found) throw new NotFoundError(`workflow instance ${id} not found`);
    return { ...found.instance, tasks: found.tasks };
  }

  list(filter: InstanceFilter): Promise<{ items: WorkflowInstanceView[]; total: number }> {
    return this.instances.list(filter);
  }

  /**
   * Applies a control action with writes conditional on the state it read; when a master or
   * another request moved the state in between, it reads again and decides again. A state
   * the action does not apply to is a 409 naming that state.
   */
  async control(id: number, action: ControlAction): Promise<ControlOutcome> {
    for (let attempt = 0; attempt < CONTROL_ATTEMPTS; attempt++) {
      if (action === 'stop' || action === 'pause') {
        const state = await this.currentState(id);
        const { ready, final } = HALT[action];
        if (state === 'RUNNING_EXECUTION') {
          if (await this.runs.requestHalt(id, ready)) return { workflowInstanceId: id, state: ready };
        } else if (state === 'SUBMITTED_SUCCESS' || state === 'SERIAL_WAIT') {
          if (await this.runs.endSubmitted(id, final)) return { workflowInstanceId: id, state: final };
        } else if (state === 'PAUSE' && action === 'stop') {
          if (await this.runs.stopPaused(id)) return { workflowInstanceId: id, state: 'STOP' };
        } else {
          const from: WorkflowState[] = ['RUNNING_EXECUTION', 'SUBMITTED_SUCCESS', 'SERIAL_WAIT'];
          throw conflict(id, action, state, action === 'stop' ? [...from, 'PAUSE'] : from);
        }
      } else {
        const rule = RESUBMIT[action];
        // Write first: the common case needs no extra read.
        const done = await this.runs.resubmit(id, rule.from, rule.command);
        if (done !== null) return { workflowInstanceId: id, state: done.state, commandId: done.commandId };
        const state = await this.currentState(id);
        if (!rule.from.includes(state)) throw conflict(id, action, state, rule.from);
      }
    }
    const state = await this.currentState(id);
    throw new ConflictError(
      `workflow instance ${id} kept changing state (now ${state}); ${action} not applied`,
    );
  }

  private async currentState(id: number): Promise<WorkflowState> {
    const state = await this.runs.state(id);
    if (state === null) throw new NotFoundError(`workflow instance ${id} not found`);
    return state;
  }
}

function conflict(
  id: number,
  action: string,
  state: WorkflowState,
  from: readonly WorkflowState[],
): ConflictError {
  return new ConflictError(
    `cannot ${action} workflow instance ${id}: its state is ${state} (${action} applies to ${from.join(', ')})`,
  );
}
