import {
  WorkflowLanguageError,
  renderSqlTemplate,
  renderTemplate,
  type TemplateContext,
  type WorkerTaskDefinition,
} from '@porpoise/common';
import type { WorkerTaskType } from '@porpoise/rpc';

/** A data source opened for dispatch: its type and full URL (password included). */
export interface OpenedDatasource {
  readonly type: string;
  readonly url: string;
}

/** What a worker task becomes on the wire (TaskSpec.command / task_type / payload_json). */
export interface WorkerTaskPayload {
  readonly taskType: WorkerTaskType;
  /** SHELL's command after substitution; empty for the other types. */
  readonly command: string;
  /**
   * The type's object after substitution (DESIGN.md section 9); `{}` for EMPTY, and for SHELL
   * unless its workflow has a tenant: `{"tenant": "etl"}` (a worker without tenants refuses it).
   */
  readonly payloadJson: string;
}

/** A task that cannot run as defined: it fails with this message and nothing is dispatched. */
export interface PayloadRefusal {
  readonly refused: string;
}

/**
 * Turns a worker task's definition into what is dispatched, with every parameter substituted
 * (DESIGN.md section 9): SHELL in shell mode (an unknown `${name}` is left for the shell),
 * HTTP in strict mode, SQL with every reference a bind parameter. An unknown parameter (or a
 * `${porpoise.…}` that does not exist, or a data source that is gone) refuses the task with a
 * message naming it. Pure: the data source is looked up by the caller.
 */
export function buildWorkerTaskPayload(
  def: WorkerTaskDefinition,
  ctx: TemplateContext,
  datasource: (name: string) => OpenedDatasource | undefined,
  tenant?: string,
): WorkerTaskPayload | PayloadRefusal {
  try {
    switch (def.type) {
      case 'SHELL':
        return {
          taskType: 'SHELL',
          command: renderTemplate(def.command, 'shell', ctx),
          payloadJson: tenant === undefined ? '{}' : JSON.stringify({ tenant }),
        };
      case 'EMPTY':
        return { taskType: 'EMPTY', command: '', payloadJson: '{}' };
      case 'HTTP': {
        const { method, url, headers, body, expectStatus, timeoutMs } = def.http;
        const rendered = {
          method,
          url: renderTemplate(url, 'strict', ctx),
          ...(headers && {
            headers: Object.fromEntries(
              Object.entries(headers).map(([name, value]) => [name, renderTemplate(value, 'strict', ctx)]),
            ),
          }),
          ...(body !== undefined && { body: renderTemplate(body, 'strict', ctx) }),
          ...(expectStatus && { expectStatus }),
          ...(timeoutMs !== undefined && { timeoutMs }),
        };
        return { taskType: 'HTTP', command: '', payloadJson: JSON.stringify(rendered) };
      }
      case 'SQL': {
        const source = datasource(def.sql.datasource);
        if (!source) return { refused: `data source "${def.sql.datasource}" does not exist (any more)` };
        const { text, values } = renderSqlTemplate(def.sql.statement, ctx);
        return {
          taskType: 'SQL',
          command: '',
          payloadJson: JSON.stringify({ datasourceType: source.type, url: source.url, text, values }),
        };
      }
    }
  } catch (err) {
    if (err instanceof WorkflowLanguageError) return { refused: err.message };
    throw err;
  }
}

export const isRefusal = (p: WorkerTaskPayload | PayloadRefusal): p is PayloadRefusal => 'refused' in p;
