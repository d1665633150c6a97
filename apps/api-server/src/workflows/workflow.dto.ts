import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TASK_TYPES } from '@porpoise/common';

/*
 * OpenAPI documentation of the workflow routes. Validation is parseWorkflowBody /
 * parseRunBody (strict, with messages naming the problem); these classes only describe.
 */

export class TaskDto {
  @ApiProperty({ type: String, maxLength: 100, example: 'extract', description: 'Unique in the workflow.' })
  name!: string;
  @ApiProperty({ enum: TASK_TYPES, example: 'SHELL' }) type!: string;
  @ApiProperty({ type: String, example: 'echo hi', description: 'Run with /bin/sh -c on a worker.' })
  command!: string;
  @ApiPropertyOptional({ type: Number, minimum: 0, maximum: 100, default: 0 }) retries?: number;
  @ApiPropertyOptional({ type: Number, minimum: 0, default: 1000 }) retryIntervalMs?: number;
  @ApiPropertyOptional({ type: Number, minimum: 0, default: 0, description: '0 means no timeout.' })
  timeoutMs?: number;
  @ApiPropertyOptional({ type: String, pattern: '^[A-Za-z0-9._-]{1,64}$', default: 'default' })
  workerGroup?: string;
}

export class EdgeDto {
  @ApiProperty({ type: String, example: 'extract', description: 'Upstream task name.' }) from!: string;
  @ApiProperty({ type: String, example: 'load', description: 'Downstream task name.' }) to!: string;
}

export class WorkflowBodyDto {
  @ApiProperty({ type: String, maxLength: 200, example: 'etl' }) name!: string;
  @ApiPropertyOptional({ type: String, default: '' }) description?: string;
  @ApiProperty({ type: [TaskDto], minItems: 1 }) tasks!: TaskDto[];
  @ApiPropertyOptional({ type: [EdgeDto], default: [], description: 'Must form a DAG over the task names.' })
  edges?: EdgeDto[];
}

export class WorkflowSummaryDto {
  @ApiProperty({ type: String, example: 'wf_3k9q2m7x1c5v8b0n' }) code!: string;
  @ApiProperty({ type: Number, example: 1, description: 'Current version.' }) version!: number;
  @ApiProperty({ type: String }) name!: string;
  @ApiProperty({ type: String }) description!: string;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt!: string;
}

export class WorkflowDto extends WorkflowSummaryDto {
  @ApiProperty({ type: [TaskDto], description: 'With defaults filled in.' }) tasks!: TaskDto[];
  @ApiProperty({ type: [EdgeDto] }) edges!: EdgeDto[];
}

export class WorkflowListDto {
  @ApiProperty({ type: [WorkflowSummaryDto] }) items!: WorkflowSummaryDto[];
  @ApiProperty({ type: Number }) total!: number;
}

export class RunBodyDto {
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string', maxLength: 65536 },
    example: { day: '2024-01-01' },
    description: 'Names match ^[A-Za-z_][A-Za-z0-9_]*$; each becomes PORPOISE_PARAM_<NAME> in the task.',
  })
  params?: Record<string, string>;
}

export class RunAcceptedDto {
  @ApiProperty({ type: Number, example: 17 }) commandId!: number;
  @ApiProperty({ type: Number, example: 42 }) workflowInstanceId!: number;
}
