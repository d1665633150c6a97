import { RpcInvalidArgument, type TaskFinishedEvent, type TaskStartedEvent } from '@porpoise/rpc';
import { validateTaskFinished, validateTaskStarted } from '../../src/rpc/event-validation';

const started: TaskStartedEvent = {
  taskInstanceId: 3,
  workflowInstanceId: 2,
  attempt: 1,
  startTimeMs: 1,
  workerAddress: '127.0.0.1:1234',
  epoch: 1,
};
const finished: TaskFinishedEvent = {
  taskInstanceId: 3,
  workflowInstanceId: 2,
  attempt: 1,
  state: 'SUCCESS',
  exitCode: 0,
  startTimeMs: 1,
  endTimeMs: 2,
  workerAddress: '127.0.0.1:1234',
  epoch: 1,
  message: '',
  outputs: { rows: '3', status: '200' },
};

describe('task event validation', () => {
  it('accepts valid events', () => {
    expect(validateTaskStarted(started)).toEqual(started);
    expect(validateTaskFinished(finished)).toEqual(finished);
    expect(validateTaskFinished({ ...finished, state: 'KILL', exitCode: -1 }).exitCode).toBe(-1);
  });

  it.each([
    ['taskInstanceId', { taskInstanceId: 0 }],
    ['workflowInstanceId', { workflowInstanceId: 1.5 }],
    ['attempt', { attempt: -1 }],
    ['state', { state: 'RUNNING' }],
    ['exitCode', { exitCode: 0.5 }],
    ['startTimeMs', { startTimeMs: -3 }],
    ['workerAddress', { workerAddress: '' }],
    ['epoch', { epoch: 0 }],
    ['outputs', { outputs: ['a'] }],
    ['outputs', { outputs: { 'not-a-name': 'x' } }],
    ['outputs.big', { outputs: { big: 'x'.repeat(64 * 1024 + 1) } }],
    ['outputs.nul', { outputs: { nul: 'a\u0000b' } }],
    ['outputs.num', { outputs: { num: 3 } }],
    ['outputs', { outputs: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`o${i}`, ''])) }],
  ])('names the bad field %s', (field, over) => {
    const run = () => validateTaskFinished({ ...finished, ...over } as TaskFinishedEvent);
    expect(run).toThrow(RpcInvalidArgument);
    expect(run).toThrow(new RegExp(`^${field}: `));
  });

  it.each([
    ['state', { state: 'x'.repeat(300_000) }],
    ['workerAddress', { workerAddress: 'x'.repeat(300_000) }],
  ])('quotes a huge bad %s shortened (the message goes back as a gRPC trailer)', (field, over) => {
    let message = '';
    try {
      validateTaskFinished({ ...finished, ...over } as TaskFinishedEvent);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(new RegExp(`^${field}: `));
    expect(message.length).toBeLessThan(200);
  });

  it('checks TaskStarted too', () => {
    expect(() => validateTaskStarted({ ...started, workerAddress: 'x' })).toThrow(/^workerAddress: /);
  });

  it('takes absent outputs as none, and keeps a name like __proto__ as a plain key', () => {
    const { outputs: _none, ...old } = finished;
    expect(validateTaskFinished(old as TaskFinishedEvent).outputs).toEqual({});
    const proto = JSON.parse('{"__proto__":"x"}') as Record<string, string>;
    const out = validateTaskFinished({ ...finished, outputs: proto }).outputs;
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
  });

  it('caps an oversized message', () => {
    expect(validateTaskFinished({ ...finished, message: 'x'.repeat(10_000) }).message).toHaveLength(4096);
  });
});
