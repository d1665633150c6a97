import { Injectable } from '@nestjs/common';
import { BackfillRepository, type BackfillRecord } from '@porpoise/dao';
import { BadRequestError, ConflictError, NotFoundError } from '../common/api-errors';
import { WORKFLOW_CODE_PATTERN, quote } from '../common/input';
import { parseBackfillBody, planBackfill } from './backfill-body';

@Injectable()
export class BackfillsService {
  constructor(private readonly backfills: BackfillRepository) {}

  /**
   * Validates, enumerates the fire times and stores the backfill with all its dates in one
   * statement. No instance is created here: the masters create the runs.
   */
  async create(code: string, body: unknown): Promise<{ backfillId: number; runs: number }> {
    if (!WORKFLOW_CODE_PATTERN.test(code)) {
      throw new BadRequestError(`workflow code ${quote(code)} is invalid`);
    }
    const request = parseBackfillBody(body);
    const workflow = await this.backfills.workflowSchedules(code);
    if (!workflow.exists) throw new NotFoundError(`workflow ${quote(code)} not found`);
    // Its runs pass the run gate like any fresh run: under SERIAL_DISCARD a second date started
    // while the first runs would be discarded at once (README "Run concurrency").
    if (workflow.concurrencyPolicy === 'SERIAL_DISCARD' && request.parallelism > 1) {
      throw new BadRequestError(
        `backfill: "parallelism" must be 1 for workflow ${quote(code)}, whose concurrency policy is ` +
          `SERIAL_DISCARD (its runs would discard each other), got ${request.parallelism}`,
      );
    }
    const plan = planBackfill(request, code, workflow.schedules);
    const id = await this.backfills.create({
      workflowCode: code,
      cron: plan.cron,
      timezone: plan.timezone,
      params: request.params,
      parallelism: request.parallelism,
      order: request.order,
      start: plan.start,
      end: plan.end,
      times: plan.times,
    });
    if (id === null) throw new NotFoundError(`workflow ${quote(code)} not found`);
    return { backfillId: id, runs: plan.times.length };
  }

  async get(id: number): Promise<BackfillRecord> {
    const found = await this.backfills.get(id);
    if (!found) throw new NotFoundError(`backfill ${id} not found`);
    return found;
  }

  async cancel(id: number): Promise<BackfillRecord> {
    const outcome = await this.backfills.cancel(id);
    if (outcome === 'missing') throw new NotFoundError(`backfill ${id} not found`);
    const found = await this.get(id);
    if (outcome === 'finished') {
      throw new ConflictError(`backfill ${id} is ${found.state} already: there is nothing left to cancel`);
    }
    return found;
  }
}
