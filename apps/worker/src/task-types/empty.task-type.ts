import { Injectable } from '@nestjs/common';
import type { TaskSpec } from '@porpoise/rpc';
import { PayloadFields } from './payload';
import { succeeded, type TaskRunResult, type TaskType } from './task-type';

/**
 * EMPTY (DESIGN.md section 9): dispatched like any task, reported SUCCESS at once without starting
 * a process, so a workflow of EMPTY tasks measures the scheduler rather than `fork`.
 */
@Injectable()
export class EmptyTaskType implements TaskType<void> {
  readonly type = 'EMPTY' as const;
  readonly startsProcess = false;
  readonly instant = true;

  /** "" or "{}": an EMPTY task has no fields. */
  parsePayload(spec: TaskSpec): void {
    PayloadFields.of(spec, { emptyAllowed: true }).finish();
  }

  run(): Promise<TaskRunResult> {
    return Promise.resolve(succeeded());
  }
}
