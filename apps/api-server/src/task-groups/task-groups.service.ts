import { Injectable } from '@nestjs/common';
import { TASK_GROUP_NAME_PATTERN } from '@porpoise/common';
import { TaskGroupRepository, type TaskGroupRecord } from '@porpoise/dao';
import { ConflictError, NotFoundError } from '../common/api-errors';
import { quote } from '../common/input';
import { parseTaskGroupBody, parseTaskGroupPatch } from './task-group-body';

@Injectable()
export class TaskGroupsService {
  constructor(private readonly groups: TaskGroupRepository) {}

  async create(body: unknown): Promise<TaskGroupRecord> {
    const input = parseTaskGroupBody(body);
    const created = await this.groups.create(input.name, input.capacity);
    if (!created) throw new ConflictError(`task group ${quote(input.name)} already exists`);
    return created;
  }

  async list(): Promise<{ items: TaskGroupRecord[] }> {
    return { items: await this.groups.list() };
  }

  async get(name: string): Promise<TaskGroupRecord> {
    const found = TASK_GROUP_NAME_PATTERN.test(name) ? await this.groups.find(name) : undefined;
    if (!found) throw new NotFoundError(`task group ${quote(name)} not found`);
    return found;
  }

  /** Validates the body first: a bad body is a 400 whether or not the group exists. */
  async update(name: string, body: unknown): Promise<TaskGroupRecord> {
    const { capacity } = parseTaskGroupPatch(body);
    const updated = TASK_GROUP_NAME_PATTERN.test(name)
      ? await this.groups.updateCapacity(name, capacity)
      : undefined;
    if (!updated) throw new NotFoundError(`task group ${quote(name)} not found`);
    return updated;
  }

  async delete(name: string): Promise<void> {
    const outcome = TASK_GROUP_NAME_PATTERN.test(name) ? await this.groups.delete(name) : 'notFound';
    if (outcome === 'notFound') throw new NotFoundError(`task group ${quote(name)} not found`);
    if (outcome === 'inUse') {
      throw new ConflictError(
        `task group ${quote(name)} is in use: tasks hold or wait for its slots (delete it once they ended)`,
      );
    }
  }
}
