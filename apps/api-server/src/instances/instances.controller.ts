import { applyDecorators, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { WORKFLOW_STATES, type WorkflowState } from '@porpoise/common';
import type { TaskInstanceView, WorkflowInstanceView } from '@porpoise/dao';
import { BadRequestError } from '../common/api-errors';
import { ErrorDto } from '../common/error.dto';
import { parseId, queryReader, quote, readPage, WORKFLOW_CODE_PATTERN } from '../common/input';
import { DiagnosisService, type InstanceDiagnosis } from './diagnosis.service';
import {
  ControlAcceptedDto,
  InstanceDiagnosisDto,
  WorkflowInstanceDetailDto,
  WorkflowInstanceListDto,
} from './instance.dto';
import { InstancesService, type ControlOutcome } from './instances.service';
import { Scope } from '../auth/scope.decorator';

@ApiTags('workflow instances')
@ApiBadRequestResponse({
  type: ErrorDto,
  description: 'Invalid path or query; the message names the problem.',
})
@Controller('workflow-instances')
export class InstancesController {
  constructor(
    private readonly instances: InstancesService,
    private readonly diagnosis: DiagnosisService,
  ) {}

  @Get()
  @Scope('read')
  @ApiOperation({ summary: 'List workflow instances, newest first.' })
  @ApiQuery({ name: 'workflowCode', required: false, type: String })
  @ApiQuery({ name: 'state', required: false, enum: WORKFLOW_STATES })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1..1000, default 50' })
  @ApiQuery({ name: 'offset', required: false, type: Number, description: 'default 0' })
  @ApiResponse({ status: 200, type: WorkflowInstanceListDto })
  list(@Query() query: unknown): Promise<{ items: WorkflowInstanceView[]; total: number }> {
    const read = queryReader(query, ['workflowCode', 'state', 'limit', 'offset']);
    const workflowCode = read('workflowCode');
    if (workflowCode !== undefined && !WORKFLOW_CODE_PATTERN.test(workflowCode)) {
      throw new BadRequestError(
        `query parameter "workflowCode" ${quote(workflowCode)} is not a workflow code`,
      );
    }
    const state = read('state');
    if (state !== undefined && !(WORKFLOW_STATES as readonly string[]).includes(state)) {
      throw new BadRequestError(
        `query parameter "state" ${quote(state)} is not a workflow state (one of ${WORKFLOW_STATES.join(', ')})`,
      );
    }
    return this.instances.list({
      workflowCode,
      state: state as WorkflowState | undefined,
      ...readPage(read),
    });
  }

  @Get(':id')
  @Scope('read')
  @ApiOperation({ summary: 'A workflow instance with its task instances (every attempt, in id order).' })
  @ApiResponse({ status: 200, type: WorkflowInstanceDetailDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  get(@Param('id') id: string): Promise<WorkflowInstanceView & { tasks: TaskInstanceView[] }> {
    return this.instances.get(parseId(id, 'workflow instance'));
  }

  @Get(':id/diagnosis')
  @Scope('read')
  @ApiOperation({
    summary: 'Why the unfinished tasks of an instance are not done: what holds each one, and since when.',
    description:
      'Every unfinished task, including those without an attempt yet (from the DAG of the run’s definition ' +
      'version): waitingFor upstream, worker-group, worker-capacity, retry-delay, master or paused, or null ' +
      'when nothing holds it (it runs). Read from the rows and, when the answer depends on it, from the ' +
      'registry (503 when the registry cannot be read).',
  })
  @ApiResponse({ status: 200, type: InstanceDiagnosisDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  @ApiResponse({ status: 503, type: ErrorDto, description: 'The registry cannot be read.' })
  diagnose(@Param('id') id: string): Promise<InstanceDiagnosis> {
    return this.diagnosis.diagnose(parseId(id, 'workflow instance'));
  }

  @Post(':id/stop')
  @Scope('run')
  @HttpCode(202)
  @ControlDocs(
    'Stop: RUNNING_EXECUTION → READY_STOP (the owning master stops it); SUBMITTED_SUCCESS or SERIAL_WAIT → ' +
      'STOP at once; ' +
      'PAUSE → STOP at once (its paused tasks KILL). Sub-workflow children are stopped with it.',
  )
  stop(@Param('id') id: string): Promise<ControlOutcome> {
    return this.instances.control(parseId(id, 'workflow instance'), 'stop');
  }

  @Post(':id/pause')
  @Scope('run')
  @HttpCode(202)
  @ControlDocs(
    'Pause: RUNNING_EXECUTION → READY_PAUSE (the owning master pauses it); SUBMITTED_SUCCESS or SERIAL_WAIT → ' +
      'PAUSE at once. ' +
      'Sub-workflow children are paused with it.',
  )
  pause(@Param('id') id: string): Promise<ControlOutcome> {
    return this.instances.control(parseId(id, 'workflow instance'), 'pause');
  }

  @Post(':id/resume')
  @Scope('run')
  @HttpCode(202)
  @ControlDocs(
    'Resume a PAUSE instance (command RECOVER_SUSPENDED_PROCESS); the sub-workflow children paused with it ' +
      'resume with it (the same child carries on). Time spent paused does not count toward timeoutMs.',
  )
  resume(@Param('id') id: string): Promise<ControlOutcome> {
    return this.instances.control(parseId(id, 'workflow instance'), 'resume');
  }

  @Post(':id/rerun')
  @Scope('run')
  @HttpCode(202)
  @ControlDocs('Run a finished instance again, every task as a new attempt (command REPEAT_RUNNING).')
  rerun(@Param('id') id: string): Promise<ControlOutcome> {
    return this.instances.control(parseId(id, 'workflow instance'), 'rerun');
  }

  @Post(':id/resume-failed')
  @Scope('run')
  @HttpCode(202)
  @ControlDocs(
    'Rerun the failed and unstarted tasks of a FAILURE instance (command START_FAILURE_TASK_PROCESS).',
  )
  resumeFailed(@Param('id') id: string): Promise<ControlOutcome> {
    return this.instances.control(parseId(id, 'workflow instance'), 'resume-failed');
  }
}

/** The OpenAPI description shared by the control routes. */
function ControlDocs(summary: string): MethodDecorator {
  return applyDecorators(
    ApiOperation({ summary }),
    ApiResponse({ status: 202, type: ControlAcceptedDto }),
    ApiNotFoundResponse({ type: ErrorDto }),
    ApiConflictResponse({
      type: ErrorDto,
      description: 'The instance is in a state the action does not apply to.',
    }),
  );
}
