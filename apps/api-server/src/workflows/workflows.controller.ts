import { Body, Controller, Get, Headers, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiExtraModels,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOperation,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { WorkflowDefinitionRecord, WorkflowListItem } from '@porpoise/dao';
import { ErrorDto } from '../common/error.dto';
import { queryInteger, queryReader, readPage } from '../common/input';
import {
  RunAcceptedDto,
  RunBodyDto,
  TASK_DTOS,
  WorkflowBodyDto,
  WorkflowDto,
  WorkflowListDto,
} from './workflow.dto';
import { WorkflowsService } from './workflows.service';
import { Scope } from '../auth/scope.decorator';

@ApiTags('workflows')
// The per-type task schemas, referenced from the tasks' oneOf.
@ApiExtraModels(...Object.values(TASK_DTOS))
@ApiBadRequestResponse({
  type: ErrorDto,
  description: 'Invalid body, path or query; the message names the problem.',
})
@Controller('workflows')
export class WorkflowsController {
  constructor(private readonly workflows: WorkflowsService) {}

  @Post()
  @Scope('edit')
  @HttpCode(201)
  @ApiOperation({
    summary: 'Create a workflow (version 1). Nothing is stored when the body is invalid.',
    description:
      'A task is one of the per-type schemas (by `type`). A cycle, a duplicate task name, an edge to an ' +
      'unknown task, a branch target that is not a direct downstream task, an unknown data source or ' +
      'sub-workflow, an unknown field: 400 naming the problem.',
  })
  @ApiBody({ type: WorkflowBodyDto })
  @ApiResponse({ status: 201, type: WorkflowDto })
  create(@Body() body: unknown): Promise<WorkflowDefinitionRecord> {
    return this.workflows.create(body);
  }

  @Get()
  @Scope('read')
  @ApiOperation({ summary: 'List workflows, newest first.' })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1..1000, default 50' })
  @ApiQuery({ name: 'offset', required: false, type: Number, description: 'default 0' })
  @ApiResponse({ status: 200, type: WorkflowListDto })
  list(@Query() query: unknown): Promise<{ items: WorkflowListItem[]; total: number }> {
    const page = readPage(queryReader(query, ['limit', 'offset']));
    return this.workflows.list(page);
  }

  @Get(':code')
  @Scope('read')
  @ApiOperation({
    summary: 'A workflow with its settings, tasks and edges: the current version, or ?version=N.',
  })
  @ApiQuery({ name: 'version', required: false, type: Number })
  @ApiResponse({ status: 200, type: WorkflowDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  get(@Param('code') code: string, @Query() query: unknown): Promise<WorkflowDefinitionRecord> {
    const read = queryReader(query, ['version']);
    const version =
      read('version') === undefined ? undefined : queryInteger(read, 'version', 1, 2 ** 31 - 1, 1);
    return this.workflows.get(code, version);
  }

  @Put(':code')
  @Scope('edit')
  @ApiOperation({ summary: 'Store a new version of a workflow (same validation as create).' })
  @ApiBody({ type: WorkflowBodyDto })
  @ApiResponse({ status: 200, type: WorkflowDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  update(@Param('code') code: string, @Body() body: unknown): Promise<WorkflowDefinitionRecord> {
    return this.workflows.update(code, body);
  }

  @Post(':code/runs')
  @Scope('run')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Trigger a run. The instance exists (SUBMITTED_SUCCESS) when this answers.',
    description:
      'A repeated Idempotency-Key (per workflow) returns the first answer and starts nothing. ' +
      'A run of a workflow with a concurrency limit (policy SERIAL_WAIT or SERIAL_DISCARD, or maxRuns) ' +
      'is SERIAL_WAIT instead: its command, with this commandId, is written when the run gate admits it.',
  })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'At most 200 characters.' })
  @ApiBody({ type: RunBodyDto, required: false })
  @ApiResponse({ status: 202, type: RunAcceptedDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  async trigger(
    @Param('code') code: string,
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
  ): Promise<RunAcceptedDto> {
    const { commandId, workflowInstanceId } = await this.workflows.trigger(code, body, idempotencyKey);
    return { commandId, workflowInstanceId };
  }
}
