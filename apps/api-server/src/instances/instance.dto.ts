import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { COMMAND_TYPES, TASK_STATES, WORKFLOW_STATES } from '@porpoise/common';

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
    description: 'The command queued for the masters (resume, rerun, resume-failed).',
  })
  commandId?: number;
}
