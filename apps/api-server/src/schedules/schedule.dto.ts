import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/* OpenAPI documentation of the schedule routes. */

export class ScheduleBodyDto {
  @ApiProperty({ type: String }) workflowCode!: string;
  @ApiProperty({ type: String, example: '0 */5 * * * *', description: 'Cron expression (5 or 6 fields).' })
  cron!: string;
  @ApiPropertyOptional({
    type: String,
    example: 'Europe/Berlin',
    default: 'UTC',
    description: 'IANA time zone.',
  })
  timezone?: string;
}

export class ScheduleDto {
  @ApiProperty({ type: Number }) id!: number;
  @ApiProperty({ type: String }) workflowCode!: string;
  @ApiProperty({ type: String }) cron!: string;
  @ApiProperty({ type: String }) timezone!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) nextFireTime!: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
}

export class ScheduleListDto {
  @ApiProperty({ type: [ScheduleDto] }) items!: ScheduleDto[];
  @ApiProperty({ type: Number }) total!: number;
}
