import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { BackfillRecord } from '@porpoise/dao';
import { ErrorDto } from '../common/error.dto';
import { parseId } from '../common/input';
import { BACKFILL_LIMITS } from './backfill-body';
import { BackfillAcceptedDto, BackfillBodyDto, BackfillDto } from './backfill.dto';
import { BackfillsService } from './backfills.service';
import { Scope } from '../auth/scope.decorator';

@ApiTags('backfills')
@ApiBadRequestResponse({
  type: ErrorDto,
  description: 'Invalid body, path or query; the message names the problem.',
})
@Controller()
export class BackfillsController {
  constructor(private readonly backfills: BackfillsService) {}

  @Post('workflows/:code/backfill')
  @Scope('run')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Backfill: one run (command COMPLEMENT_DATA) per fire time of a cron in [start, end].',
    description:
      `Each run's schedule time is its fire time (\${porpoise.scheduleTime}, \${porpoise.bizDate}). At most ` +
      `${BACKFILL_LIMITS.runs} fire times (400 naming the count). The dates are stored at once and the masters ` +
      'create the runs, at most `parallelism` active at once, in `order`; a failed run does not stop the others.',
  })
  @ApiBody({ type: BackfillBodyDto })
  @ApiResponse({ status: 202, type: BackfillAcceptedDto })
  @ApiNotFoundResponse({ type: ErrorDto, description: 'Unknown workflow.' })
  create(@Param('code') code: string, @Body() body: unknown): Promise<BackfillAcceptedDto> {
    return this.backfills.create(code, body);
  }

  @Get('backfills/:id')
  @Scope('read')
  @ApiOperation({ summary: 'A backfill: its state, counts and the runs created so far.' })
  @ApiResponse({ status: 200, type: BackfillDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  get(@Param('id') id: string): Promise<BackfillRecord> {
    return this.backfills.get(parseId(id, 'backfill'));
  }

  @Post('backfills/:id/cancel')
  @Scope('run')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Cancel a RUNNING backfill: no more of its runs are created (those created go on). 200 with it.',
  })
  @ApiResponse({ status: 200, type: BackfillDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  @ApiConflictResponse({ type: ErrorDto, description: 'The backfill has ended already.' })
  cancel(@Param('id') id: string): Promise<BackfillRecord> {
    return this.backfills.cancel(parseId(id, 'backfill'));
  }
}
