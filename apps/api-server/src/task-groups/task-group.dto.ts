import { ApiProperty } from '@nestjs/swagger';

/* OpenAPI documentation of the task group routes. */

export class TaskGroupBodyDto {
  @ApiProperty({ type: String, example: 'warehouse-load', description: 'What tasks name in taskGroup.' })
  name!: string;
  @ApiProperty({
    type: Number,
    example: 2,
    minimum: 0,
    maximum: 100000,
    description: 'At most this many tasks of the group run at once across the cluster (0 holds them all).',
  })
  capacity!: number;
}

export class TaskGroupPatchDto {
  @ApiProperty({ type: Number, example: 4, minimum: 0, maximum: 100000 })
  capacity!: number;
}

export class TaskGroupDto {
  @ApiProperty({ type: String }) name!: string;
  @ApiProperty({ type: Number }) capacity!: number;
  @ApiProperty({
    type: Number,
    description: 'Slots held now: tasks of the group granted a slot and not ended.',
  })
  held!: number;
  @ApiProperty({
    type: Number,
    description: 'Tasks of the group waiting for a slot (first come first served).',
  })
  waiting!: number;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt!: string;
}

export class TaskGroupListDto {
  @ApiProperty({ type: [TaskGroupDto] }) items!: TaskGroupDto[];
}
