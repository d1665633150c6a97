import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiNotFoundResponse,
  ApiOperation,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { BadRequestError } from '../common/api-errors';
import { ErrorDto } from '../common/error.dto';
import { WORKFLOW_CODE_PATTERN, parseId, queryReader, quote, readPage } from '../common/input';
import { ScheduleBodyDto, ScheduleDto, ScheduleListDto, SchedulePatchDto } from './schedule.dto';
import { SchedulesService, type ScheduleView } from './schedules.service';
import { Scope } from '../auth/scope.decorator';

@ApiTags('schedules')
@ApiBadRequestResponse({
  type: ErrorDto,
  description: 'Invalid body, path or query; the message names the problem.',
})
@Controller('schedules')
export class SchedulesController {
  constructor(private readonly schedules: SchedulesService) {}

  @Post()
  @Scope('edit')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Schedule a workflow with a cron expression in a time zone (the masters fire it).',
  })
  @ApiBody({ type: ScheduleBodyDto })
  @ApiResponse({ status: 201, type: ScheduleDto })
  @ApiNotFoundResponse({ type: ErrorDto, description: 'Unknown workflow.' })
  create(@Body() body: unknown): Promise<ScheduleView> {
    return this.schedules.create(body);
  }

  @Get()
  @Scope('read')
  @ApiOperation({ summary: 'List schedules, newest first.' })
  @ApiQuery({ name: 'workflowCode', required: false, type: String })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1..1000, default 50' })
  @ApiQuery({ name: 'offset', required: false, type: Number, description: 'default 0' })
  @ApiResponse({ status: 200, type: ScheduleListDto })
  list(@Query() query: unknown): Promise<{ items: ScheduleView[]; total: number }> {
    const read = queryReader(query, ['workflowCode', 'limit', 'offset']);
    const workflowCode = read('workflowCode');
    if (workflowCode !== undefined && !WORKFLOW_CODE_PATTERN.test(workflowCode)) {
      throw new BadRequestError(
        `query parameter "workflowCode" ${quote(workflowCode)} is not a workflow code`,
      );
    }
    return this.schedules.list({ workflowCode, ...readPage(read) });
  }

  @Get(':id')
  @Scope('read')
  @ApiOperation({ summary: 'One schedule.' })
  @ApiResponse({ status: 200, type: ScheduleDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  get(@Param('id') id: string): Promise<ScheduleView> {
    return this.schedules.get(parseId(id, 'schedule'));
  }

  @Patch(':id')
  @Scope('edit')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Change any of its fields ({ "enabled": false } pauses it); its revision goes up. A change of cron, ' +
      'timezone, startTime or enabling it computes the next fire time afresh (times passed while paused are not misfires).',
  })
  @ApiBody({ type: SchedulePatchDto })
  @ApiResponse({ status: 200, type: ScheduleDto })
  @ApiNotFoundResponse({
    type: ErrorDto,
    description: 'Unknown schedule, or unknown workflow in workflowCode.',
  })
  update(@Param('id') id: string, @Body() body: unknown): Promise<ScheduleView> {
    return this.schedules.update(parseId(id, 'schedule'), body);
  }

  @Delete(':id')
  @Scope('edit')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a schedule.' })
  @ApiResponse({ status: 204, description: 'Deleted.' })
  @ApiNotFoundResponse({ type: ErrorDto })
  async delete(@Param('id') id: string): Promise<void> {
    await this.schedules.delete(parseId(id, 'schedule'));
  }
}
