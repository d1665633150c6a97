import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { TaskGroupRecord } from '@porpoise/dao';
import { ErrorDto } from '../common/error.dto';
import { TaskGroupBodyDto, TaskGroupDto, TaskGroupListDto, TaskGroupPatchDto } from './task-group.dto';
import { TaskGroupsService } from './task-groups.service';
import { Scope } from '../auth/scope.decorator';

/**
 * Task groups (DESIGN.md section 10): a task's `taskGroup` names one; across the whole cluster at
 * most `capacity` tasks of the group run at once, first come first served.
 */
@ApiTags('task-groups')
@ApiBadRequestResponse({ type: ErrorDto, description: 'Invalid body or path; the message names the field.' })
@Controller('task-groups')
export class TaskGroupsController {
  constructor(private readonly groups: TaskGroupsService) {}

  @Post()
  @Scope('edit')
  @HttpCode(201)
  @ApiOperation({ summary: 'Create a task group.' })
  @ApiBody({ type: TaskGroupBodyDto })
  @ApiResponse({ status: 201, type: TaskGroupDto })
  @ApiConflictResponse({ type: ErrorDto, description: 'The name is taken.' })
  create(@Body() body: unknown): Promise<TaskGroupRecord> {
    return this.groups.create(body);
  }

  @Get()
  @Scope('read')
  @ApiOperation({ summary: 'List task groups, with the slots held and the tasks waiting.' })
  @ApiResponse({ status: 200, type: TaskGroupListDto })
  list(): Promise<{ items: TaskGroupRecord[] }> {
    return this.groups.list();
  }

  @Get(':name')
  @Scope('read')
  @ApiOperation({ summary: 'One task group, with the slots held and the tasks waiting.' })
  @ApiResponse({ status: 200, type: TaskGroupDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  get(@Param('name') name: string): Promise<TaskGroupRecord> {
    return this.groups.get(name);
  }

  @Patch(':name')
  @Scope('edit')
  @ApiOperation({
    summary:
      'Change the capacity. A smaller one takes no slot back: running tasks finish and grants resume below it.',
  })
  @ApiBody({ type: TaskGroupPatchDto })
  @ApiResponse({ status: 200, type: TaskGroupDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  update(@Param('name') name: string, @Body() body: unknown): Promise<TaskGroupRecord> {
    return this.groups.update(name, body);
  }

  @Delete(':name')
  @Scope('edit')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a task group no task holds or waits for.' })
  @ApiResponse({ status: 204, description: 'Deleted.' })
  @ApiNotFoundResponse({ type: ErrorDto })
  @ApiConflictResponse({ type: ErrorDto, description: 'Tasks hold or wait for its slots.' })
  async delete(@Param('name') name: string): Promise<void> {
    await this.groups.delete(name);
  }
}
