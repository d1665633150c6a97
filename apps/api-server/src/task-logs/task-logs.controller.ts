import { pipeline } from 'node:stream/promises';
import { Controller, Get, Logger, Param, Query, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { ErrorDto } from '../common/error.dto';
import { parseId, queryInteger, queryReader } from '../common/input';
import { TaskLogService } from './task-log.service';
import { Scope } from '../auth/scope.decorator';

@ApiTags('task instances')
@Controller('task-instances')
export class TaskLogsController {
  private readonly logger = new Logger('TaskLogs');

  constructor(private readonly logs: TaskLogService) {}

  @Get(':id/log')
  @Scope('read')
  @ApiOperation({
    summary: "A task instance's output (stdout and stderr), read from the worker that ran it.",
    description:
      'The whole log, streamed from the worker as the client reads it (no size limit here; the ' +
      'worker caps each log at TASK_LOG_MAX_BYTES and marks the cut). Content-Length is the ' +
      "log's size when the request began; a running task's later output needs another request " +
      '(with offset). A body shorter than Content-Length means the transfer broke.',
  })
  @ApiQuery({
    name: 'offset',
    required: false,
    description: 'Bytes of the log to skip (default 0), e.g. what a follower has already read.',
    schema: { type: 'integer', minimum: 0 },
  })
  @ApiProduces('text/plain')
  @ApiResponse({ status: 200, description: 'The log.', schema: { type: 'string' } })
  @ApiBadRequestResponse({ type: ErrorDto, description: 'The id or the offset is not valid.' })
  @ApiNotFoundResponse({ type: ErrorDto, description: 'Unknown task instance, or no log yet.' })
  @ApiResponse({ status: 503, type: ErrorDto, description: 'The worker holding the log is unreachable.' })
  async read(@Param('id') id: string, @Query() query: unknown, @Res() res: Response): Promise<void> {
    const read = queryReader(query, ['offset']);
    const taskInstanceId = parseId(id, 'task instance');
    const offset = queryInteger(read, 'offset', 0, Number.MAX_SAFE_INTEGER, 0);
    const log = await this.logs.open(taskInstanceId, offset);
    res.status(200);
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    if (log.size !== undefined) res.setHeader('Content-Length', String(log.size));
    try {
      // Backpressure: the next chunk is pulled from the worker only when the socket took this one.
      await pipeline(log.body, res);
    } catch (err) {
      // The client went away, or the worker's stream broke: the response is cut (and its socket
      // closed, so a body shorter than Content-Length cannot pass for the whole log).
      // A client that leaves once it has its bytes (curl, the console following a log) is no
      // news: only a broken worker stream is worth a warning.
      const gone = (err as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE';
      const message = `log of task instance ${taskInstanceId}: ${(err as Error).message}`;
      if (gone) this.logger.debug(message);
      else this.logger.warn(message);
      res.destroy();
    }
  }
}
