import type { BuiltinContext, TaskDefinitionOf, TemplateContext } from '@porpoise/common';
import {
  buildWorkerTaskPayload,
  isRefusal,
  type OpenedDatasource,
} from '../../src/tasks/worker-task-payload';

const common = { retries: 0, retryIntervalMs: 1000, timeoutMs: 0, workerGroup: 'default' };
const builtins: BuiltinContext = {
  workflowInstanceId: 42,
  taskInstanceId: 7,
  taskName: 't',
  attempt: 2,
  scheduleTime: new Date('2026-03-02T01:30:00Z'),
  timezone: 'UTC',
};
const ctx: TemplateContext = { params: { day: '2026-03-01', who: "O'Brien; DROP TABLE x" }, builtins };
const datasources = new Map<string, OpenedDatasource>([
  ['dw', { type: 'postgres', url: 'postgres://u:p@db/dw' }],
]);
const lookup = (name: string) => datasources.get(name);

describe('buildWorkerTaskPayload', () => {
  it('substitutes SHELL commands and leaves unknown names for the shell', () => {
    const def: TaskDefinitionOf<'SHELL'> = {
      ...common,
      name: 't',
      type: 'SHELL',
      command: 'echo ${day} ${HOME} ${porpoise.attempt} $[yyyyMMdd-1]',
    };
    expect(buildWorkerTaskPayload(def, ctx, lookup)).toEqual({
      taskType: 'SHELL',
      command: 'echo 2026-03-01 ${HOME} 2 20260301',
      payloadJson: '{}',
    });
  });

  it("carries the workflow's tenant in a SHELL payload only", () => {
    const shell: TaskDefinitionOf<'SHELL'> = { ...common, name: 't', type: 'SHELL', command: 'id -u' };
    expect(buildWorkerTaskPayload(shell, ctx, lookup, 'etl')).toMatchObject({
      payloadJson: '{"tenant":"etl"}',
    });
    const empty: TaskDefinitionOf<'EMPTY'> = { ...common, name: 'e', type: 'EMPTY' };
    expect(buildWorkerTaskPayload(empty, ctx, lookup, 'etl')).toMatchObject({ payloadJson: '{}' });
  });

  it('refuses a SHELL command naming an unknown built-in', () => {
    const def: TaskDefinitionOf<'SHELL'> = {
      ...common,
      name: 't',
      type: 'SHELL',
      command: 'echo ${porpoise.nope}',
    };
    const out = buildWorkerTaskPayload(def, ctx, lookup);
    expect(isRefusal(out) && out.refused).toMatch(/porpoise\.nope/);
  });

  it('sends EMPTY with nothing to run', () => {
    const def: TaskDefinitionOf<'EMPTY'> = { ...common, name: 't', type: 'EMPTY' };
    expect(buildWorkerTaskPayload(def, ctx, lookup)).toEqual({
      taskType: 'EMPTY',
      command: '',
      payloadJson: '{}',
    });
  });

  it('substitutes HTTP url, headers and body strictly', () => {
    const def: TaskDefinitionOf<'HTTP'> = {
      ...common,
      name: 't',
      type: 'HTTP',
      http: {
        method: 'POST',
        url: 'http://svc/report?day=${day}',
        headers: { 'x-run': '${porpoise.workflowInstanceId}' },
        body: '{"day":"${day}"}',
        expectStatus: [200, 201],
      },
    };
    const out = buildWorkerTaskPayload(def, ctx, lookup);
    if (isRefusal(out)) throw new Error(out.refused);
    expect(out.taskType).toBe('HTTP');
    expect(JSON.parse(out.payloadJson)).toEqual({
      method: 'POST',
      url: 'http://svc/report?day=2026-03-01',
      headers: { 'x-run': '42' },
      body: '{"day":"2026-03-01"}',
      expectStatus: [200, 201],
    });
  });

  it('refuses an HTTP task naming an unknown parameter, and sends nothing', () => {
    const def: TaskDefinitionOf<'HTTP'> = {
      ...common,
      name: 't',
      type: 'HTTP',
      http: { method: 'GET', url: 'http://svc/${missing}' },
    };
    const out = buildWorkerTaskPayload(def, ctx, lookup);
    expect(isRefusal(out) && out.refused).toMatch(/missing/);
  });

  it('makes every SQL reference a bind parameter, injection attempts included', () => {
    const def: TaskDefinitionOf<'SQL'> = {
      ...common,
      name: 't',
      type: 'SQL',
      sql: {
        datasource: 'dw',
        statement: 'select * from t where who = ${who} and day = ${day} or d2 = ${day}',
      },
    };
    const out = buildWorkerTaskPayload(def, ctx, lookup);
    if (isRefusal(out)) throw new Error(out.refused);
    expect(JSON.parse(out.payloadJson)).toEqual({
      datasourceType: 'postgres',
      url: 'postgres://u:p@db/dw',
      text: 'select * from t where who = $1 and day = $2 or d2 = $2',
      values: ["O'Brien; DROP TABLE x", '2026-03-01'],
    });
  });

  it('refuses a SQL task whose data source is gone', () => {
    const def: TaskDefinitionOf<'SQL'> = {
      ...common,
      name: 't',
      type: 'SQL',
      sql: { datasource: 'gone', statement: 'select 1' },
    };
    const out = buildWorkerTaskPayload(def, ctx, lookup);
    expect(isRefusal(out) && out.refused).toMatch(/data source "gone"/);
  });
});
