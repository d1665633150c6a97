import { Injectable } from '@nestjs/common';
import { ScheduleRepository, type ScheduleRecord } from '@porpoise/dao';
import { NotFoundError } from '../common/api-errors';
import { quote, type Page } from '../common/input';
import { mergeSchedule, parseSchedulePatch, parseScheduleBody, scheduleFields } from './schedule-body';

/** A schedule as the API shows it: no next fire time when none will come (disabled, or past endTime). */
export interface ScheduleView extends Omit<ScheduleRecord, 'nextFireTime'> {
  readonly nextFireTime: Date | null;
}

const view = (s: ScheduleRecord): ScheduleView => ({
  ...s,
  nextFireTime:
    s.nextFireTime !== null && s.endTime !== null && s.nextFireTime.getTime() > s.endTime.getTime()
      ? null
      : s.nextFireTime,
});

@Injectable()
export class SchedulesService {
  constructor(private readonly schedules: ScheduleRepository) {}

  /** The first fire time comes from the database's clock (SELECT now()), as the masters' fires do. */
  async create(body: unknown): Promise<ScheduleView> {
    const input = parseScheduleBody(body);
    const fields = scheduleFields(input, await this.schedules.dbNow());
    const created = await this.schedules.create({ workflowCode: input.workflowCode, ...fields });
    if (!created) throw new NotFoundError(`workflow ${quote(input.workflowCode)} not found`);
    return view(created);
  }

  async get(id: number): Promise<ScheduleView> {
    const found = await this.schedules.get(id);
    if (!found) throw new NotFoundError(`schedule ${id} not found`);
    return view(found);
  }

  /** Any field; the revision goes up, so no master fires with what it read before. */
  async update(id: number, body: unknown): Promise<ScheduleView> {
    const patch = parseSchedulePatch(body);
    const outcome = await this.schedules.update(id, (current, dbNow) => {
      const merged = mergeSchedule(current, patch);
      return { workflowCode: merged.workflowCode, ...scheduleFields(merged, dbNow, current) };
    });
    switch (outcome.status) {
      case 'notFound':
        throw new NotFoundError(`schedule ${id} not found`);
      case 'unknownWorkflow':
        throw new NotFoundError(`workflow ${quote(outcome.workflowCode)} not found`);
      case 'updated':
        return view(outcome.schedule);
    }
  }

  async list(filter: Page & { workflowCode?: string }): Promise<{ items: ScheduleView[]; total: number }> {
    const page = await this.schedules.list(filter);
    return { items: page.items.map(view), total: page.total };
  }

  async delete(id: number): Promise<void> {
    if (!(await this.schedules.delete(id))) throw new NotFoundError(`schedule ${id} not found`);
  }
}
