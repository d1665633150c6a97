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
  // The model's own checks are in libs/common (parse-definition.spec.ts); here, the API's wrapping.
  it('returns the definition with defaults filled in', () => {
    expect(
      parseWorkflowBody({ name: 'w', tasks: [task('b'), task('a')], edges: [{ from: 'b', to: 'a' }] }),
    ).toEqual({
      name: 'w',
      description: '',
      params: {},
      failureStrategy: 'END',
      timeoutMs: 0,
      tasks: ['b', 'a'].map((name) => ({
        name,
        type: 'SHELL',
        command: 'true',
        retries: 0,
        retryIntervalMs: 1000,
        timeoutMs: 0,
        workerGroup: 'default',
      })),
      edges: [{ from: 'b', to: 'a' }],
    });
  });

  it.each([
    [null, /^request body must be a JSON object \(Content-Type: application\/json\), got null$/],
    ['x', /got a string/],
    [[task('a')], /got an array/],
    [{ name: 'w', tasks: [task('a', { type: 'shell' })] }, /^unknown task type "shell" for task "a"/],
    [{ name: 'w', tasks: [task('a')], edges: [{ from: 'a', to: 'a' }] }, /a task cannot depend on itself/],
  ])('rejects %j with a BadRequestError', (body, message) => {
    expect(problem(() => parseWorkflowBody(body))).toMatch(message);
  });

  it("passes the updated workflow's code on: a SUB_WORKFLOW task may not run it", () => {
    const body = {
      name: 'w',
      tasks: [{ name: 's', type: 'SUB_WORKFLOW', subWorkflow: { workflowCode: 'wf_a' } }],
    };
    expect(parseWorkflowBody(body, 'wf_b').tasks).toHaveLength(1);
    expect(problem(() => parseWorkflowBody(body, 'wf_a'))).toMatch(/a workflow cannot run itself/);
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
      { params: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, 'x'.repeat(64 * 1024)])) },
      /params are larger than 1048576 bytes in all/,
    ],
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
