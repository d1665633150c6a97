import { Injectable } from '@nestjs/common';
import type { TaskSpec, WorkerTaskType } from '@porpoise/rpc';
import { EmptyTaskType } from './empty.task-type';
import { HttpTaskType } from './http.task-type';
import { ShellTaskType } from './shell.task-type';
import { SqlTaskType } from './sql.task-type';
import type { PreparedTask, TaskRunContext, TaskType } from './task-type';

/**
 * The task types this worker runs, by name. A new type is one file in this folder (a TaskType
 * provider), its name in libs/common's WORKER_TASK_TYPES, and one entry here and in WorkerModule.
 */
@Injectable()
export class TaskTypeRegistry {
  private readonly types: Readonly<Record<WorkerTaskType, TaskType>>;

  constructor(shell: ShellTaskType, empty: EmptyTaskType, http: HttpTaskType, sql: SqlTaskType) {
    this.types = { SHELL: shell, EMPTY: empty, HTTP: http, SQL: sql };
  }

  /**
   * Binds a validated spec to its type and parsed payload. Throws RpcInvalidArgument (answered
   * INVALID_ARGUMENT) for a payload the type refuses: nothing starts.
   */
  prepare(spec: TaskSpec): PreparedTask {
    const type = this.types[spec.taskType];
    const payload = type.parsePayload(spec);
    return {
      spec,
      startsProcess: type.startsProcess,
      instant: type.instant ?? false,
      run: (ctx: TaskRunContext) => type.run(ctx, payload),
    };
  }
}
