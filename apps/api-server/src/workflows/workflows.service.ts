import { Inject, Injectable } from '@nestjs/common';
import {
  definitionReferences,
  PORPOISE_CONFIG,
  type ApiServerConfig,
  type WorkflowDefinition,
} from '@porpoise/common';
import {
  DatasourceRepository,
  TaskGroupRepository,
  WorkflowDefinitionRepository,
  type WorkflowDefinitionRecord,
  type WorkflowListItem,
  WorkflowRunRepository,
  type TriggerOutcome,
} from '@porpoise/dao';
import { randomBytes } from 'node:crypto';
import { BadRequestError, NotFoundError } from '../common/api-errors';
import { WORKFLOW_CODE_PATTERN, quote, type Page } from '../common/input';
import { parseIdempotencyKey, parseRunBody } from './run-body';
import { parseWorkflowBody } from './workflow-body';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** 'wf_' + 16 base32 characters (80 random bits): unique without coordination between API servers. */
export function newWorkflowCode(): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return `wf_${out}`;
}

/**
 * A workflow's tenant (the OS user its SHELL tasks run as) must be one of TASK_TENANTS: whoever
 * may edit workflows must not pick any user of the workers' machines (root, postgres, ...).
 */
export function checkTenant(input: Pick<WorkflowDefinition, 'tenant'>, allowed: readonly string[]): void {
  const { tenant } = input;
  if (tenant === undefined || allowed.includes(tenant)) return;
  throw new BadRequestError(
    allowed.length === 0
      ? `workflow: "tenant" is not allowed: tenants are off on this cluster (TASK_TENANTS is empty)`
      : `workflow: "tenant" ${quote(tenant)} is not one of TASK_TENANTS (${allowed.join(', ')})`,
  );
}

@Injectable()
export class WorkflowsService {
  constructor(
    private readonly definitions: WorkflowDefinitionRepository,
    private readonly runs: WorkflowRunRepository,
    private readonly datasources: DatasourceRepository,
    private readonly taskGroups: TaskGroupRepository,
    @Inject(PORPOISE_CONFIG) private readonly config: ApiServerConfig,
  ) {}

  async create(body: unknown): Promise<WorkflowDefinitionRecord> {
    const input = parseWorkflowBody(body);
    checkTenant(input, this.config.taskTenants);
    await this.checkReferences(input);
    // A collision of 80 random bits is not expected; retrying costs nothing if it happens.
    for (let i = 0; i < 3; i++) {
      const created = await this.definitions.create(newWorkflowCode(), input);
      if (created) return created;
    }
    throw new Error('could not allocate a unique workflow code');
  }

  /** Validates the body first: a bad body is a 400 whether or not the workflow exists. */
  async update(code: string, body: unknown): Promise<WorkflowDefinitionRecord> {
    const input = parseWorkflowBody(body, code);
    checkTenant(input, this.config.taskTenants);
    await this.checkReferences(input, code);
    const updated = WORKFLOW_CODE_PATTERN.test(code) ? await this.definitions.update(code, input) : null;
    if (!updated) throw new NotFoundError(`workflow ${quote(code)} not found`);
    return updated;
  }

  /**
   * What the definition names outside itself must exist: its SQL tasks' data sources, its
   * SUB_WORKFLOW tasks' workflows and the workflows its DEPENDENT tasks wait for; and on an update, no sub-workflow may lead back to the
   * workflow itself (it would start itself forever). Read before the write: a data source
   * deleted in between fails the task at run time, with a message naming it.
   */
  private async checkReferences(input: WorkflowDefinition, selfCode?: string): Promise<void> {
    const { datasourceNames, subWorkflowCodes, dependentWorkflowCodes, taskGroupNames } =
      definitionReferences(input);
    const [datasources, codes, loops, groups] = await Promise.all([
      this.datasources.existing(datasourceNames),
      this.definitions.existingCodes([...new Set([...subWorkflowCodes, ...dependentWorkflowCodes])]),
      selfCode === undefined
        ? ([] as string[])
        : this.definitions.subWorkflowsReaching(subWorkflowCodes, selfCode),
      this.taskGroups.existing(taskGroupNames),
    ]);
    for (const task of input.tasks) {
      if (task.taskGroup !== undefined && !groups.includes(task.taskGroup)) {
        throw new BadRequestError(
          `task ${quote(task.name)}: "taskGroup" names unknown task group ${quote(task.taskGroup)}` +
            ' (create it with POST /task-groups)',
        );
      }
      if (task.type === 'SQL' && !datasources.includes(task.sql.datasource)) {
        throw new BadRequestError(
          `task ${quote(task.name)}: "sql.datasource" names unknown data source ${quote(task.sql.datasource)}` +
            ' (register it with POST /datasources)',
        );
      }
      if (task.type === 'DEPENDENT' && !codes.includes(task.dependent.workflowCode)) {
        throw new BadRequestError(
          `task ${quote(task.name)}: "dependent.workflowCode" names unknown workflow ${quote(task.dependent.workflowCode)}`,
        );
      }
      if (task.type !== 'SUB_WORKFLOW') continue;
      const target = task.subWorkflow.workflowCode;
      if (!codes.includes(target)) {
        throw new BadRequestError(
          `task ${quote(task.name)}: "subWorkflow.workflowCode" names unknown workflow ${quote(target)}`,
        );
      }
      if (loops.includes(target)) {
        throw new BadRequestError(
          `task ${quote(task.name)}: "subWorkflow.workflowCode" ${quote(target)} runs this workflow again` +
            ' through its sub-workflows: a workflow cannot run itself',
        );
      }
    }
  }

  async get(code: string, version?: number): Promise<WorkflowDefinitionRecord> {
    const found = WORKFLOW_CODE_PATTERN.test(code) ? await this.definitions.find(code, version) : null;
    if (!found) {
      throw new NotFoundError(
        version === undefined
          ? `workflow ${quote(code)} not found`
          : `workflow ${quote(code)} version ${version} not found`,
      );
    }
    return found;
  }

  list(page: Page): Promise<{ items: WorkflowListItem[]; total: number }> {
    return this.definitions.list(page.limit, page.offset);
  }

  /** One statement inserts the instance and its command (see WorkflowRunRepository.trigger). */
  async trigger(
    code: string,
    body: unknown,
    idempotencyKeyHeader: string | string[] | undefined,
  ): Promise<TriggerOutcome> {
    const params = parseRunBody(body);
    const key = parseIdempotencyKey(idempotencyKeyHeader);
    const outcome = WORKFLOW_CODE_PATTERN.test(code) ? await this.runs.trigger(code, params, key) : null;
    if (!outcome) throw new NotFoundError(`workflow ${quote(code)} not found`);
    return outcome;
  }
}
