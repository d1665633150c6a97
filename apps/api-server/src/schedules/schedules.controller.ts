import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiNotFoundResponse,
  ApiOperation,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { ScheduleRecord } from '@porpoise/dao';
import { BadRequestError } from '../common/api-errors';
import { ErrorDto } from '../common/error.dto';
import { WORKFLOW_CODE_PATTERN, parseId, queryReader, quote, readPage } from '../common/input';
import { ScheduleBodyDto, ScheduleDto, ScheduleListDto } from './schedule.dto';
import { SchedulesService } from './schedules.service';

@ApiTags('schedules')
@ApiBadRequestResponse({
  type: ErrorDto,
  description: 'Invalid body, path or query; the message names the problem.',
})
@Controller('schedules')
export class SchedulesController {
  constructor(private readonly schedules: SchedulesService) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({
    summary: 'Schedule a workflow with a cron expression in a time zone (the masters fire it).',
  })
  @ApiBody({ type: ScheduleBodyDto })
  @ApiResponse({ status: 201, type: ScheduleDto })
  @ApiNotFoundResponse({ type: ErrorDto, description: 'Unknown workflow.' })
  create(@Body() body: unknown): Promise<ScheduleRecord> {
    return this.schedules.create(body);
  }

  @Get()
  @ApiOperation({ summary: 'List schedules, newest first.' })
  @ApiQuery({ name: 'workflowCode', required: false, type: String })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1..1000, default 50' })
  @ApiQuery({ name: 'offset', required: false, type: Number, description: 'default 0' })
  @ApiResponse({ status: 200, type: ScheduleListDto })
  list(@Query() query: unknown): Promise<{ items: ScheduleRecord[]; total: number }> {
    const read = queryReader(query, ['workflowCode', 'limit', 'offset']);
    const workflowCode = read('workflowCode');
    if (workflowCode !== undefined && !WORKFLOW_CODE_PATTERN.test(workflowCode)) {
      throw new BadRequestError(
        `query parameter "workflowCode" ${quote(workflowCode)} is not a workflow code`,
      );
    }
    return this.schedules.list({ workflowCode, ...readPage(read) });
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a schedule.' })
  @ApiResponse({ status: 204, description: 'Deleted.' })
  @ApiNotFoundResponse({ type: ErrorDto })
  async delete(@Param('id') id: string): Promise<void> {
    await this.schedules.delete(parseId(id, 'schedule'));
  }
}
