import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/* OpenAPI documentation of the schedule routes. */

const MISFIRE_POLICY = {
  enum: ['RUN_ONCE', 'SKIP', 'RUN_ALL'],
  description:
    'Fire times missed while no master ran (older than SCHEDULE_MISFIRE_THRESHOLD_MS when found): RUN_ONCE ' +
    '(default) runs the latest of them once and records the others MISFIRE_SKIPPED; SKIP records them all ' +
    'skipped; RUN_ALL runs each of them (at most 100 per fire statement, oldest first).',
};

export class ScheduleBodyDto {
  @ApiProperty({ type: String }) workflowCode!: string;
  @ApiProperty({ type: String, example: '0 */5 * * * *', description: 'Cron expression (5 or 6 fields).' })
  cron!: string;
  @ApiPropertyOptional({
    type: String,
    example: 'Europe/Berlin',
    default: 'UTC',
    description: 'IANA time zone the cron is read in (and the runs’ date built-ins computed in).',
  })
  timezone?: string;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'Params of every run it starts (over the workflow’s defaults).',
    example: { REGION: 'eu' },
  })
  params?: Record<string, string>;
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'No fire time before this instant (ISO 8601 with an offset).',
  })
  startTime?: string | null;
  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'No fire time after this instant (ISO 8601 with an offset).',
  })
  endTime?: string | null;
  @ApiPropertyOptional({
    type: Boolean,
    default: true,
    description: 'false pauses it; fire times passed while paused are not misfires.',
  })
  enabled?: boolean;
  @ApiPropertyOptional({ type: String, default: 'RUN_ONCE', ...MISFIRE_POLICY })
  misfirePolicy?: string;
}

/** PATCH: any of the POST fields; the others stay. */
export class SchedulePatchDto {
  @ApiPropertyOptional({ type: String }) workflowCode?: string;
  @ApiPropertyOptional({ type: String, example: '0 */5 * * * *' }) cron?: string;
  @ApiPropertyOptional({ type: String, example: 'Europe/Berlin' }) timezone?: string;
  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' } })
  params?: Record<string, string>;
  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true }) startTime?: string | null;
  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true }) endTime?: string | null;
  @ApiPropertyOptional({ type: Boolean, example: false }) enabled?: boolean;
  @ApiPropertyOptional({ type: String, ...MISFIRE_POLICY }) misfirePolicy?: string;
}

export class ScheduleDto {
  @ApiProperty({ type: Number }) id!: number;
  @ApiProperty({ type: String }) workflowCode!: string;
  @ApiProperty({ type: String }) cron!: string;
  @ApiProperty({ type: String }) timezone!: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) params!: Record<string, string>;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) startTime!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) endTime!: string | null;
  @ApiProperty({ type: Boolean }) enabled!: boolean;
  @ApiProperty({ type: String, ...MISFIRE_POLICY }) misfirePolicy!: string;
  @ApiProperty({ type: Number, description: 'Goes up by one with every change.' }) revision!: number;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'The next fire time not handled yet; null when disabled or past endTime.',
  })
  nextFireTime!: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt!: string;
}

export class ScheduleListDto {
  @ApiProperty({ type: [ScheduleDto] }) items!: ScheduleDto[];
  @ApiProperty({ type: Number }) total!: number;
}
