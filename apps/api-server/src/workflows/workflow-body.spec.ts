import { BadRequestError } from '../common/api-errors';
import { parseIdempotencyKey, parseRunBody } from './run-body';
import { parseWorkflowBody } from './workflow-body';

const task = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'SHELL',
  command: 'true',
  ...extra,
});
const problem = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof BadRequestError) return err.message;
    throw err;
  }
  throw new Error('no BadRequestError');
};

describe('parseWorkflowBody', () => {
  it('fills in defaults and keeps the order of tasks and edges', () => {
    expect(
      parseWorkflowBody({ name: 'w', tasks: [task('b'), task('a')], edges: [{ from: 'b', to: 'a' }] }),
    ).toEqual({
      name: 'w',
      description: '',
      tasks: [
        {
          name: 'b',
          type: 'SHELL',
          command: 'true',
          retries: 0,
          retryIntervalMs: 1000,
          timeoutMs: 0,
          workerGroup: 'default',
        },
        {
          name: 'a',
          type: 'SHELL',
          command: 'true',
          retries: 0,
          retryIntervalMs: 1000,
          timeoutMs: 0,
          workerGroup: 'default',
        },
      ],
      edges: [{ from: 'b', to: 'a' }],
    });
  });

  it('keeps given values at their limits', () => {
    const parsed = parseWorkflowBody({
      name: 'n'.repeat(200),
      description: '',
      tasks: [
        task('t'.repeat(100), {
          retries: 100,
          retryIntervalMs: 0,
          timeoutMs: 2 ** 31 - 1,
          workerGroup: 'a.b_c-1',
        }),
      ],
    });
    expect(parsed.tasks[0]).toMatchObject({
      retries: 100,
      retryIntervalMs: 0,
      timeoutMs: 2 ** 31 - 1,
      workerGroup: 'a.b_c-1',
    });
  });

  it.each([
    [null, /request body must be a JSON object.*got null/],
    ['x', /got a string/],
    [{ name: 'w', tasks: [task('a')], edges: {} }, /"edges" must be an array, got an object/],
    [{ name: 'w', tasks: [task('a'), task('b')], a: 1, b: 2 }, /unknown fields "a", "b"/],
    [{ name: 'w', tasks: [task('a', { type: 'shell' })] }, /unknown task type "shell" for task "a"/],
    [{ name: 'w', tasks: [task('a\nb')] }, /must not contain control characters/],
    [
      { name: 'w', tasks: [task('a', { timeoutMs: 2 ** 31 })] },
      /"timeoutMs" must be between 0 and 2147483647/,
    ],
    [{ name: 'w', tasks: [task('a', { retries: null })] }, /"retries" must be an integer, got null/],
    [{ name: 'w', tasks: [task('a', { workerGroup: 'g'.repeat(65) })] }, /"workerGroup" is longer than 64/],
    [{ name: 'w', tasks: [task('a'), 7] }, /task 1 must be an object, got a number/],
    [{ name: 'w', tasks: [task('a')], edges: [{ from: 'a' }] }, /edge 0: missing field "to"/],
  ])('rejects %j', (body, message) => {
    expect(problem(() => parseWorkflowBody(body))).toMatch(message);
  });
});

describe('parseRunBody', () => {
  it('accepts nothing, {} and string params', () => {
    expect(parseRunBody(undefined)).toEqual({});
    expect(parseRunBody({})).toEqual({});
    expect(parseRunBody({ params: { _a: '', B2: 'x y' } })).toEqual({ _a: '', B2: 'x y' });
  });

  it.each([
    [{ params: null }, /"params" must be an object of strings, got null/],
    [{ params: { 'a b': 'x' } }, /param name "a b" is invalid/],
    [{ params: { ['n'.repeat(129)]: 'x' } }, /is invalid/],
    [{ params: { a: 'x\u0000y' } }, /must not contain NUL/],
    [{ params: { a: 'é'.repeat(32769) } }, /larger than 65536 bytes/],
    [
      { params: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`p${i}`, ''])) },
      /more than 100 params/,
    ],
  ])('rejects %j', (body, message) => {
    expect(problem(() => parseRunBody(body))).toMatch(message);
  });
});

describe('parseIdempotencyKey', () => {
  it('accepts absent and 1..200 characters, refuses empty and longer', () => {
    expect(parseIdempotencyKey(undefined)).toBeUndefined();
    expect(parseIdempotencyKey('k'.repeat(200))).toBe('k'.repeat(200));
    expect(problem(() => parseIdempotencyKey(' '))).toMatch(/must not be empty/);
    expect(problem(() => parseIdempotencyKey('k'.repeat(201)))).toMatch(/longer than 200/);
  });
});
