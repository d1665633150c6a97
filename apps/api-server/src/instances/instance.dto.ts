import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { COMMAND_TYPES, TASK_STATES, WORKFLOW_STATES } from '@porpoise/common';
import { WAITING_FOR } from './diagnosis';

/* OpenAPI documentation of the instance routes. */

export class WorkflowInstanceDto {
  @ApiProperty({ type: Number, example: 42 }) id!: number;
  @ApiProperty({ type: String }) workflowCode!: string;
  @ApiProperty({ type: Number }) workflowVersion!: number;
  @ApiProperty({ enum: WORKFLOW_STATES }) state!: string;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Owning master "address:port"; null while none.',
  })
  host!: string | null;
  @ApiProperty({ enum: COMMAND_TYPES }) commandType!: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) params!: Record<string, string>;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) scheduleTime!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) startTime!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) endTime!: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt!: string;
  @ApiProperty({
    type: Number,
    nullable: true,
    description: 'The instance whose SUB_WORKFLOW task started this one; null for a top-level run.',
  })
  parentInstanceId!: number | null;
  @ApiProperty({
    type: Number,
    nullable: true,
    description: "That SUB_WORKFLOW task's attempt (a task instance id); null for a top-level run.",
  })
  parentTaskInstanceId!: number | null;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Why the instance ended as it did (a workflow timeout, for example); null when none.',
  })
  message!: string | null;
}

export class TaskInstanceDto {
  @ApiProperty({ type: Number }) id!: number;
  @ApiProperty({ type: String }) name!: string;
  @ApiProperty({ enum: TASK_STATES }) state!: string;
  @ApiProperty({ type: String, nullable: true, description: 'Worker "address:port"; null until dispatched.' })
  host!: string | null;
  @ApiProperty({ type: Number, description: '1 for the first run.' }) attempt!: number;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) startTime!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) endTime!: string | null;
  @ApiProperty({ type: Number, nullable: true }) exitCode!: number | null;
  @ApiProperty({ type: String, nullable: true }) message!: string | null;
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string' },
    description:
      'What the attempt set (${setValue(name=value)} lines, an HTTP status, a SQL row); {} when nothing.',
  })
  outputs!: Record<string, string>;
  @ApiProperty({
    type: Number,
    nullable: true,
    description:
      "A SUB_WORKFLOW attempt's child workflow instance; null for other tasks or before it exists.",
  })
  subWorkflowInstanceId!: number | null;
}

export class WorkflowInstanceDetailDto extends WorkflowInstanceDto {
  @ApiProperty({ type: [TaskInstanceDto], description: 'Every attempt of every task, in id order.' })
  tasks!: TaskInstanceDto[];
}

export class WorkflowInstanceListDto {
  @ApiProperty({ type: [WorkflowInstanceDto] }) items!: WorkflowInstanceDto[];
  @ApiProperty({ type: Number }) total!: number;
}

export class ControlAcceptedDto {
  @ApiProperty({ type: Number }) workflowInstanceId!: number;
  @ApiProperty({ enum: WORKFLOW_STATES, description: 'The state the request moved the instance to.' })
  state!: string;
  @ApiPropertyOptional({
    type: Number,
    description:
      'The command queued for the masters (resume, rerun, resume-failed). When the run waits at its ' +
      "workflow's concurrency limit (state SERIAL_WAIT), the id its command gets when admitted.",
  })
  commandId?: number;
}

class DiagnosisCommandDto {
  @ApiProperty({ type: Number }) id!: number;
  @ApiProperty({ enum: COMMAND_TYPES }) type!: string;
}

export class TaskDiagnosisDto {
  @ApiProperty({ type: String }) name!: string;
  @ApiProperty({
    enum: TASK_STATES,
    nullable: true,
    description: 'The state of its latest attempt; null when it has none yet (it never became ready).',
  })
  state!: string | null;
  @ApiProperty({
    enum: WAITING_FOR,
    nullable: true,
    description:
      'What holds the task: upstream (tasks in `upstream` have not succeeded), worker-group (no live, ' +
      'serving worker in `workerGroup`), worker-capacity (every live worker of `workerGroup` is full), ' +
      'task-group (its attempt waits for a slot of `taskGroup`: capacity reached, first come first served), ' +
      'retry-delay (a failed attempt waits for `retryAt`), master (the run waits for a master: its ' +
      'command is not taken yet, or its master left the registry), paused (the run is paused or pausing), ' +
      "serial-wait (the run waits at its workflow's concurrency limit, state SERIAL_WAIT). null: nothing " +
      'holds it (it runs, or ' +
      'is being started or dispatched right now).',
  })
  waitingFor!: string | null;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description:
      'Since when it has waited (or run): upstream: the run started; worker-group / worker-capacity: ' +
      'its attempt was created (it became ready) or its worker was lost; task-group: it asked for a ' +
      'slot; retry-delay: the failed ' +
      'attempt ended; master: the command was written; paused: the run paused (or was asked to); ' +
      'running: it started. null when no row says.',
  })
  since!: string | null;
  @ApiProperty({ type: String, example: 'waits for extract to succeed' }) detail!: string;
  @ApiPropertyOptional({ type: [String], description: 'upstream: the upstream tasks not succeeded yet.' })
  upstream?: string[];
  @ApiPropertyOptional({ type: String, description: 'worker-group, worker-capacity: the task’s group.' })
  workerGroup?: string;
  @ApiPropertyOptional({ type: String, description: 'task-group: the task group whose slot it waits for.' })
  taskGroup?: string;
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    description: 'retry-delay: when the retry is due.',
  })
  retryAt?: string;
  @ApiPropertyOptional({ type: DiagnosisCommandDto, description: 'master: the command waiting to be taken.' })
  command?: DiagnosisCommandDto;
  @ApiPropertyOptional({ type: String, description: 'Running: the worker "address:port" it runs on.' })
  host?: string;
}

export class InstanceDiagnosisDto {
  @ApiProperty({ type: Number }) workflowInstanceId!: number;
  @ApiProperty({ enum: WORKFLOW_STATES }) state!: string;
  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Owning master "address:port"; null while none.',
  })
  host!: string | null;
  @ApiProperty({
    type: String,
    format: 'date-time',
    description: 'The database’s clock when the rows were read.',
  })
  at!: string;
  @ApiProperty({
    type: [TaskDiagnosisDto],
    description:
      'Every unfinished task (with or without an attempt yet), in the DAG’s order; empty once the run ended ' +
      '(SUCCESS, FAILURE, STOP).',
  })
  tasks!: TaskDiagnosisDto[];
  @ApiPropertyOptional({
    type: String,
    description: 'Why the DAG is unknown (its definition version cannot be read); tasks then come from rows.',
  })
  problem?: string;
}
