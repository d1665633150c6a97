/**
 * Every task type checks its payload before anything starts: a bad one is RpcInvalidArgument
 * (answered INVALID_ARGUMENT) naming the field, never a crash, and never echoing a URL.
 */
import { RpcInvalidArgument, type TaskSpec } from '@porpoise/rpc';
import type { ProcessRunner } from '../../src/adapters/process-runner';
import type { SqlPools } from '../../src/adapters/sql-pools';
import type { TaskSandbox } from '../../src/adapters/task-sandbox';
import type { TaskWatchdog } from '../../src/adapters/task-watchdog';
import type { LivenessService } from '../../src/services/liveness.service';
import { EmptyTaskType } from '../../src/task-types/empty.task-type';
import { HttpTaskType } from '../../src/task-types/http.task-type';
import { ShellTaskType } from '../../src/task-types/shell.task-type';
import { SqlTaskType } from '../../src/task-types/sql.task-type';
import { TaskTypeRegistry } from '../../src/task-types/task-type.registry';
import { taskSpec } from '../support/run-context';

const registry = new TaskTypeRegistry(
  new ShellTaskType({} as ProcessRunner, {} as TaskWatchdog, {} as LivenessService, {} as TaskSandbox),
  new EmptyTaskType(),
  new HttpTaskType(),
  new SqlTaskType({} as SqlPools),
);

function refusal(spec: TaskSpec): string {
  try {
    registry.prepare(spec);
  } catch (err) {
    expect(err).toBeInstanceOf(RpcInvalidArgument);
    return (err as Error).message;
  }
  throw new Error('expected RpcInvalidArgument');
}

const http = (payload: unknown) => taskSpec({ taskType: 'HTTP', payloadJson: JSON.stringify(payload) });
const sql = (payload: unknown) => taskSpec({ taskType: 'SQL', payloadJson: JSON.stringify(payload) });
const URL_WITH_PASSWORD = 'postgres://alice:s3cret-pw@db.example:5432/app';
const goodSql = { datasourceType: 'postgres', url: URL_WITH_PASSWORD, text: 'select $1', values: ['x'] };

describe('SHELL and EMPTY payloads', () => {
  it('take "" or {} and nothing else', () => {
    for (const taskType of ['SHELL', 'EMPTY'] as const) {
      expect(registry.prepare(taskSpec({ taskType, command: 'true', payloadJson: '' })).spec.taskType).toBe(
        taskType,
      );
      expect(() =>
        registry.prepare(taskSpec({ taskType, command: 'true', payloadJson: '{}' })),
      ).not.toThrow();
      expect(refusal(taskSpec({ taskType, command: 'true', payloadJson: '{"command":"x"}' }))).toBe(
        'task.payloadJson has unknown field "command"',
      );
      expect(refusal(taskSpec({ taskType, payloadJson: '[]' }))).toBe(
        'task.payloadJson must be a JSON object, got an array',
      );
    }
  });

  it('refuses malformed JSON with the parser’s reason', () => {
    expect(refusal(taskSpec({ taskType: 'EMPTY', payloadJson: '{"a":' }))).toMatch(
      /^task.payloadJson is not JSON: /,
    );
  });

  it('marks EMPTY as instant and SHELL as starting a process', () => {
    expect(registry.prepare(taskSpec({ taskType: 'EMPTY' }))).toMatchObject({
      instant: true,
      startsProcess: false,
    });
    expect(registry.prepare(taskSpec({ taskType: 'SHELL', command: 'true' }))).toMatchObject({
      instant: false,
      startsProcess: true,
    });
  });
});

describe('HTTP payloads', () => {
  it('takes a full request and upper-cases the method', () => {
    expect(() =>
      registry.prepare(
        http({
          method: 'post',
          url: 'https://api.example/x?q=1',
          headers: { 'Content-Type': 'application/json', 'X-Token': 'abc' },
          body: '{}',
          expectStatus: [200, 201],
          timeoutMs: 1000,
        }),
      ),
    ).not.toThrow();
    expect(new HttpTaskType().parsePayload(http({ method: 'get', url: 'http://h/' }))).toEqual({
      method: 'GET',
      url: 'http://h/',
      headers: [],
      body: undefined,
      expectStatus: undefined,
      timeoutMs: 0,
    });
  });

  it.each<[string, unknown, string]>([
    ['no payload', undefined, 'task.payloadJson is required for a HTTP task'],
    ['no method', { url: 'http://h/' }, 'task.payloadJson.method is required'],
    ['an unknown method', { method: 'CONNECT', url: 'http://h/' }, 'task.payloadJson.method must be one of'],
    ['no url', { method: 'GET' }, 'task.payloadJson.url is required'],
    ['a relative url', { method: 'GET', url: '/x' }, 'task.payloadJson.url must be an absolute http'],
    [
      'a file url',
      { method: 'GET', url: 'file:///etc/passwd' },
      'task.payloadJson.url must be an absolute http',
    ],
    [
      'a bad header name',
      { method: 'GET', url: 'http://h/', headers: { 'a b': 'x' } },
      'task.payloadJson.headers name "a b"',
    ],
    [
      'a header with CRLF',
      { method: 'GET', url: 'http://h/', headers: { A: 'x\r\nB: y' } },
      'task.payloadJson.headers.A must not contain CR',
    ],
    [
      'a header that is no string',
      { method: 'GET', url: 'http://h/', headers: { A: 1 } },
      'task.payloadJson.headers.A must be a string',
    ],
    [
      'a body with GET',
      { method: 'GET', url: 'http://h/', body: 'x' },
      'task.payloadJson.body is not allowed with GET',
    ],
    [
      'a status out of range',
      { method: 'GET', url: 'http://h/', expectStatus: [200, 99] },
      'task.payloadJson.expectStatus[1] must be an integer between 100 and 599',
    ],
    [
      'statuses that are no array',
      { method: 'GET', url: 'http://h/', expectStatus: 200 },
      'task.payloadJson.expectStatus must be an array',
    ],
    [
      'a negative timeout',
      { method: 'GET', url: 'http://h/', timeoutMs: -1 },
      'task.payloadJson.timeoutMs must be an integer between 0',
    ],
    [
      'a misspelt field',
      { method: 'GET', url: 'http://h/', expectedStatus: [200] },
      'task.payloadJson has unknown field "expectedStatus"',
    ],
  ])('refuses %s', (_what, payload, message) => {
    const spec = payload === undefined ? taskSpec({ taskType: 'HTTP' }) : http(payload);
    expect(refusal(spec)).toContain(message);
  });

  it('refuses credentials in the URL without echoing them', () => {
    const message = refusal(http({ method: 'GET', url: 'https://user:hunter2@h/' }));
    expect(message).toBe(
      'task.payloadJson.url must not hold credentials (user:password@); send an Authorization header',
    );
    expect(refusal(http({ method: 'GET', url: 'ftp://user:hunter2@h/' }))).not.toContain('hunter2');
  });
});

describe('SQL payloads', () => {
  it('takes a statement with bind values, null included', () => {
    expect(new SqlTaskType({} as SqlPools).parsePayload(sql({ ...goodSql, values: ['a', null] }))).toEqual({
      url: URL_WITH_PASSWORD,
      text: 'select $1',
      values: ['a', null],
    });
    expect(
      new SqlTaskType({} as SqlPools).parsePayload(sql({ ...goodSql, values: undefined })).values,
    ).toEqual([]);
  });

  it.each<[string, unknown, string]>([
    [
      'another database type',
      { ...goodSql, datasourceType: 'mysql' },
      'task.payloadJson.datasourceType must be "postgres", got "mysql"',
    ],
    ['no url', { ...goodSql, url: undefined }, 'task.payloadJson.url is required'],
    [
      'an http url',
      { ...goodSql, url: 'http://alice:s3cret-pw@h/' },
      'task.payloadJson.url must be a postgres:// or postgresql:// URL',
    ],
    ['no statement', { ...goodSql, text: ' ' }, 'task.payloadJson.text must be a non-empty string'],
    [
      'a NUL in the statement',
      { ...goodSql, text: 'select 1\u0000' },
      'task.payloadJson.text must not contain a NUL',
    ],
    [
      'a value that is a number',
      { ...goodSql, values: [1] },
      'task.payloadJson.values[0] must be a string or null, got 1',
    ],
    [
      'values that are no array',
      { ...goodSql, values: 'x' },
      'task.payloadJson.values must be an array of strings, got "x"',
    ],
    [
      'a NUL in a value',
      { ...goodSql, values: ['a\u0000'] },
      'task.payloadJson.values[0] must not contain a NUL',
    ],
    [
      'an unknown field',
      { ...goodSql, datasource: 'main' },
      'task.payloadJson has unknown field "datasource"',
    ],
  ])('refuses %s', (_what, payload, message) => {
    const text = refusal(sql(payload));
    expect(text).toContain(message);
    expect(text).not.toContain('s3cret-pw');
  });
});
