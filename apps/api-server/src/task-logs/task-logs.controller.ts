import { Controller, Get, Param, Query, Res, StreamableFile } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiProduces,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { ErrorDto } from '../common/error.dto';
import { parseId, queryReader } from '../common/input';
import { LOG_CAP_BYTES, TaskLogService } from './task-log.service';
import { Scope } from '../auth/scope.decorator';

@ApiTags('task instances')
@Controller('task-instances')
export class TaskLogsController {
  constructor(private readonly logs: TaskLogService) {}

  @Get(':id/log')
  @Scope('read')
  @ApiOperation({
    summary: "A task instance's output (stdout and stderr), read from the worker that ran it.",
    description: `At most ${LOG_CAP_BYTES} bytes; a longer log is cut and X-Porpoise-Log-Truncated: true is set.`,
  })
  @ApiProduces('text/plain')
  @ApiResponse({ status: 200, description: 'The log.', schema: { type: 'string' } })
  @ApiBadRequestResponse({ type: ErrorDto, description: 'The id is not a positive integer.' })
  @ApiNotFoundResponse({ type: ErrorDto, description: 'Unknown task instance, or no log yet.' })
  @ApiResponse({ status: 503, type: ErrorDto, description: 'The worker holding the log is unreachable.' })
  async read(
    @Param('id') id: string,
    @Query() query: unknown,
    @Res({ passthrough: true }) res: Response,
  ): Promise<StreamableFile> {
    queryReader(query, []);
    const log = await this.logs.read(parseId(id, 'task instance'));
    if (log.truncated) res.setHeader('X-Porpoise-Log-Truncated', 'true');
    return new StreamableFile(log.content, { type: 'text/plain; charset=utf-8' });
  }
}
