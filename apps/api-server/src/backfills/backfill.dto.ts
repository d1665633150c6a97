import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { BACKFILL_STATES } from '@porpoise/dao';
import { BACKFILL_LIMITS } from './backfill-body';

/* OpenAPI documentation of the backfill routes. */

export class BackfillBodyDto {
  @ApiProperty({
    type: String,
    example: '2024-01-01',
    description:
      'First time of the range, inclusive: yyyy-MM-dd (midnight in `timezone`) or an ISO 8601 date-time ' +
      'with a UTC offset (2024-01-01T06:00:00+01:00). A date-time without an offset is refused (400).',
  })
  start!: string;
  @ApiProperty({
    type: String,
    example: '2024-01-31',
    description: 'Last time of the range, inclusive; same forms as `start` (a date means its midnight).',
  })
  end!: string;
  @ApiPropertyOptional({
    type: String,
    example: '0 0 * * *',
    description:
      "Cron expression (5 or 6 fields). Default: the workflow's schedule's cron (400 when it has none, or more " +
      'than one).',
  })
  cron?: string;
  @ApiPropertyOptional({
    type: String,
    example: 'Europe/Berlin',
    description:
      "IANA time zone of the cron and of date-only start/end. Default: the schedule's when the cron comes " +
      'from it, else UTC.',
  })
  timezone?: string;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: "Run params of every run, over the workflow's defaults.",
  })
  params?: Record<string, string>;
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: BACKFILL_LIMITS.parallelism,
    default: 1,
    description: 'How many of its runs may be active at once (a PAUSE run counts).',
  })
  parallelism?: number;
  @ApiPropertyOptional({
    enum: ['ASC', 'DESC'],
    default: 'ASC',
    description: 'The order in which runs are created: oldest date first (ASC) or newest first (DESC).',
  })
  order?: 'ASC' | 'DESC';
}

export class BackfillAcceptedDto {
  @ApiProperty({ type: 'integer', example: 7 }) backfillId!: number;
  @ApiProperty({
    type: 'integer',
    example: 31,
    description: `How many runs the backfill makes: the fire times in [start, end] (at most ${BACKFILL_LIMITS.runs}).`,
  })
  runs!: number;
}

export class BackfillDto {
  @ApiProperty({ type: 'integer' }) id!: number;
  @ApiProperty({ type: String }) workflowCode!: string;
  @ApiProperty({
    enum: BACKFILL_STATES,
    description:
      'RUNNING until every run was created and has ended; then SUCCESS, or FAILURE when any run ended FAILURE ' +
      'or STOP (a failed date does not stop the others). CANCELLED: cancelled, no more runs are created.',
  })
  state!: string;
  @ApiProperty({ type: String }) cron!: string;
  @ApiProperty({ type: String }) timezone!: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) params!: Record<string, string>;
  @ApiProperty({ type: 'integer' }) parallelism!: number;
  @ApiProperty({ enum: ['ASC', 'DESC'] }) order!: string;
  @ApiProperty({ type: String, format: 'date-time' }) start!: string;
  @ApiProperty({ type: String, format: 'date-time' }) end!: string;
  @ApiProperty({ type: 'integer', description: 'Runs in all (fire times in the range).' }) total!: number;
  @ApiProperty({ type: 'integer', description: 'Runs created so far.' }) created!: number;
  @ApiProperty({ type: 'integer', description: 'Created runs not ended yet (PAUSE included).' })
  running!: number;
  @ApiProperty({ type: 'integer' }) succeeded!: number;
  @ApiProperty({ type: 'integer', description: 'Runs that ended FAILURE or STOP.' }) failed!: number;
  @ApiProperty({
    type: 'integer',
    isArray: true,
    description: 'The created runs, in the order they were created.',
  })
  workflowInstanceIds!: number[];
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) endTime!: string | null;
}
