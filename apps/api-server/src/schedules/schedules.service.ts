import { Injectable } from '@nestjs/common';
import { ScheduleRepository, type ScheduleRecord } from '@porpoise/dao';
import { NotFoundError } from '../common/api-errors';
import { quote, type Page } from '../common/input';
import { parseScheduleBody } from './schedule-body';

@Injectable()
export class SchedulesService {
  constructor(private readonly schedules: ScheduleRepository) {}

  async create(body: unknown): Promise<ScheduleRecord> {
    const input = parseScheduleBody(body);
    const created = await this.schedules.create(input);
    if (!created) throw new NotFoundError(`workflow ${quote(input.workflowCode)} not found`);
    return created;
  }

  list(filter: Page & { workflowCode?: string }): Promise<{ items: ScheduleRecord[]; total: number }> {
    return this.schedules.list(filter);
  }

  async delete(id: number): Promise<void> {
    if (!(await this.schedules.delete(id))) throw new NotFoundError(`schedule ${id} not found`);
  }
}
