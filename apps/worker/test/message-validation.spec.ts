import { RpcInvalidArgument, type TaskSpec } from '@porpoise/rpc';
import {
  validateDispatchRequest,
  validateKillRequest,
  validateReadLogRequest,
  validateTakeOverRequest,
} from '../src/domain/message-validation';

const spec = (over: Partial<Record<keyof TaskSpec, unknown>> = {}): Record<string, unknown> => ({
  taskInstanceId: 7,
  workflowInstanceId: 3,
  taskName: 'extract',
  command: 'echo hi',
  attempt: 1,
  timeoutMs: 0,
  params: { DATE: '2024-01-01', _x1: '' },
  masterAddress: '127.0.0.1:5678',
  epoch: 2,
  taskType: 'SHELL',
  payloadJson: '',
  ...over,
});

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RpcInvalidArgument);
    return (err as Error).message;
  }
  throw new Error('expected RpcInvalidArgument');
}

describe('Dispatch validation', () => {
  it('accepts a well-formed task and returns it unchanged', () => {
    expect(validateDispatchRequest({ task: spec() })).toEqual({
      task: spec(),
      workerStartTimeMs: 0,
      workerRegistration: 0,
    });
  });

  it('carries the addressed registration, and refuses one that is not a whole number >= 0', () => {
    expect(
      validateDispatchRequest({ task: spec(), workerStartTimeMs: 5, workerRegistration: 2 }),
    ).toMatchObject({ workerStartTimeMs: 5, workerRegistration: 2 });
    expect(refusal(() => validateDispatchRequest({ task: spec(), workerRegistration: -1 }))).toContain(
      'workerRegistration',
    );
    expect(refusal(() => validateDispatchRequest({ task: spec(), workerStartTimeMs: 1.5 }))).toContain(
      'workerStartTimeMs',
    );
  });

  it('accepts a host name as master address and a missing params map', () => {
    const { task } = validateDispatchRequest({
      task: spec({ masterAddress: 'master-1.local:1', params: null }),
    });
    expect(task.params).toEqual({});
  });

  it.each<[string, Partial<Record<keyof TaskSpec, unknown>>, string]>([
    ['a zero task id', { taskInstanceId: 0 }, 'task.taskInstanceId'],
    ['a negative workflow id', { workflowInstanceId: -1 }, 'task.workflowInstanceId'],
    ['a fractional id', { taskInstanceId: 1.5 }, 'task.taskInstanceId'],
    ['an unsafe id', { taskInstanceId: 2 ** 60 }, 'task.taskInstanceId'],
    ['an empty command', { command: '' }, 'task.command'],
    ['a blank command', { command: '   ' }, 'task.command'],
    ['a NUL in the command', { command: 'echo \u0000' }, 'task.command'],
    ['an empty task name', { taskName: '' }, 'task.taskName'],
    ['attempt 0', { attempt: 0 }, 'task.attempt'],
    ['a negative timeout', { timeoutMs: -1 }, 'task.timeoutMs'],
    ['a master address without port', { masterAddress: '127.0.0.1' }, 'task.masterAddress'],
    ['a master address with port 0', { masterAddress: 'h:0' }, 'task.masterAddress'],
    ['a master address with port 70000', { masterAddress: 'h:70000' }, 'task.masterAddress'],
    ['a URL as master address', { masterAddress: 'http://h:1' }, 'task.masterAddress'],
    ['a negative epoch', { epoch: -1 }, 'task.epoch'],
    ['a param name with a dash', { params: { 'bad-name': 'x' } }, 'task.params'],
    ['a param name starting with a digit', { params: { '1x': 'x' } }, 'task.params'],
    ['a non-string param value', { params: { GOOD: 5 } }, 'task.params.GOOD'],
  ])('refuses %s naming the field', (_what, over, field) => {
    expect(refusal(() => validateDispatchRequest({ task: spec(over) }))).toContain(field);
  });

  it('quotes a huge bad master address shortened (the message goes back as a gRPC trailer)', () => {
    const message = refusal(() =>
      validateDispatchRequest({ task: spec({ masterAddress: 'x'.repeat(300_000) }) }),
    );
    expect(message).toContain('task.masterAddress');
    expect(message.length).toBeLessThan(200);
  });

  it('reads a missing task type as SHELL (a master from before task types)', () => {
    const old = spec();
    delete old.taskType;
    delete old.payloadJson;
    expect(validateDispatchRequest({ task: old }).task).toMatchObject({ taskType: 'SHELL', payloadJson: '' });
    expect(validateDispatchRequest({ task: spec({ taskType: '' }) }).task.taskType).toBe('SHELL');
  });

  it('takes the worker types, and no command for the types that have none', () => {
    for (const taskType of ['SHELL', 'EMPTY', 'HTTP', 'SQL']) {
      expect(validateDispatchRequest({ task: spec({ taskType }) }).task.taskType).toBe(taskType);
    }
    expect(validateDispatchRequest({ task: spec({ taskType: 'EMPTY', command: '' }) }).task.command).toBe('');
  });

  it.each([
    ['SWITCH', 'SWITCH runs on the master, never on a worker'],
    ['SUB_WORKFLOW', 'SUB_WORKFLOW runs on the master, never on a worker'],
    ['CONDITIONS', 'CONDITIONS runs on the master, never on a worker'],
    ['DEPENDENT', 'DEPENDENT runs on the master, never on a worker'],
    ['PYTHON', 'must be one of SHELL, EMPTY, HTTP, SQL, got "PYTHON"'],
    ['shell', 'must be one of SHELL, EMPTY, HTTP, SQL, got "shell"'],
  ])('refuses task type %s with a clear reason', (taskType, reason) => {
    expect(refusal(() => validateDispatchRequest({ task: spec({ taskType }) }))).toBe(
      `task.taskType ${reason}`,
    );
  });

  it('refuses a payload larger than a worker takes, before parsing it', () => {
    const payloadJson = JSON.stringify({ body: 'x'.repeat(3 * 1024 * 1024) });
    expect(refusal(() => validateDispatchRequest({ task: spec({ taskType: 'HTTP', payloadJson }) }))).toMatch(
      /^task.payloadJson is \d+ bytes, more than the 3145728 a worker takes$/,
    );
    expect(refusal(() => validateDispatchRequest({ task: spec({ payloadJson: 5 }) }))).toContain(
      'task.payloadJson must be a string',
    );
  });

  it('keeps a param named __proto__ as a param', () => {
    const params = JSON.parse('{"__proto__": "x"}') as Record<string, string>;
    const { task } = validateDispatchRequest({ task: spec({ params }) });
    expect(Object.keys(task.params)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(task.params)).toBe(Object.prototype);
  });

  it('refuses a missing task', () => {
    expect(refusal(() => validateDispatchRequest({ task: null }))).toBe('task is required');
    expect(refusal(() => validateDispatchRequest({}))).toBe('task is required');
  });
});

describe('Kill, TakeOver and ReadLog validation', () => {
  it('accepts well-formed requests', () => {
    expect(validateKillRequest({ taskInstanceId: 4 })).toEqual({ taskInstanceId: 4 });
    expect(validateTakeOverRequest({ taskInstanceId: 4, newMasterAddress: 'm:1', epoch: 0 })).toEqual({
      taskInstanceId: 4,
      newMasterAddress: 'm:1',
      epoch: 0,
    });
    expect(validateReadLogRequest({ taskInstanceId: 4, offset: 0, limit: 0 })).toEqual({
      taskInstanceId: 4,
      offset: 0,
      limit: 0,
    });
  });

  it('names the field that is wrong', () => {
    expect(refusal(() => validateKillRequest({ taskInstanceId: 0 }))).toContain('taskInstanceId');
    expect(refusal(() => validateKillRequest(null))).toContain('taskInstanceId');
    expect(
      refusal(() => validateTakeOverRequest({ taskInstanceId: 1, newMasterAddress: 'nope', epoch: 1 })),
    ).toContain('newMasterAddress');
    expect(
      refusal(() => validateTakeOverRequest({ taskInstanceId: 1, newMasterAddress: 'm:1', epoch: -2 })),
    ).toContain('epoch');
    expect(refusal(() => validateReadLogRequest({ taskInstanceId: 1, offset: -1, limit: 0 }))).toContain(
      'offset',
    );
    expect(refusal(() => validateReadLogRequest({ taskInstanceId: 1, offset: 0, limit: -1 }))).toContain(
      'limit',
    );
  });
});
