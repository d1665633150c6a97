import { TASK_OUTPUT_LIMITS } from '@porpoise/rpc';
import { limitOutputs } from '../src/domain/output-limits';
import { redactUrl, scrub } from '../src/domain/redact';
import { applyStop } from '../src/domain/task-result';

describe('limitOutputs', () => {
  it('keeps well-formed outputs as they are', () => {
    expect(limitOutputs({ day: '20240101', _x: '', n1: 'a b' })).toEqual({
      outputs: { day: '20240101', _x: '', n1: 'a b' },
      leftOut: [],
    });
  });

  it('leaves out, with a reason, names that are not identifiers and values with NUL', () => {
    const { outputs, leftOut } = limitOutputs({ '?column?': '1', 'a-b': '2', ok: '3', nul: 'a\u0000b' });
    expect(outputs).toEqual({ ok: '3' });
    expect(leftOut.map((o) => o.name)).toEqual(['?column?', 'a-b', 'nul']);
    expect(leftOut[0]?.reason).toMatch(/not an identifier/);
    expect(leftOut[2]?.reason).toMatch(/NUL/);
  });

  it('keeps a name like __proto__ as an ordinary output', () => {
    const { outputs } = limitOutputs(JSON.parse('{"__proto__":"x"}') as Record<string, string>);
    expect(Object.keys(outputs)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(outputs)).toBe(Object.prototype);
  });

  it('bounds the count, each name and value, and the total, first come first kept', () => {
    const many = Object.fromEntries(
      Array.from({ length: TASK_OUTPUT_LIMITS.count + 2 }, (_, i) => [`o${i}`, 'v']),
    );
    const counted = limitOutputs(many);
    expect(Object.keys(counted.outputs)).toHaveLength(TASK_OUTPUT_LIMITS.count);
    expect(counted.leftOut.map((o) => o.name)).toEqual([
      `o${TASK_OUTPUT_LIMITS.count}`,
      `o${TASK_OUTPUT_LIMITS.count + 1}`,
    ]);

    const long = limitOutputs({
      ['n'.repeat(TASK_OUTPUT_LIMITS.nameLength + 1)]: 'v',
      big: 'x'.repeat(TASK_OUTPUT_LIMITS.valueBytes + 1),
    });
    expect(long.outputs).toEqual({});
    expect(long.leftOut.map((o) => o.reason)).toEqual([
      `the name is longer than ${TASK_OUTPUT_LIMITS.nameLength} characters`,
      `the value is longer than ${TASK_OUTPUT_LIMITS.valueBytes} bytes`,
    ]);
    expect(long.leftOut[0]?.name).toHaveLength(100);

    // 17 values of 64 KiB are more than the 1 MiB total: the 17th is left out.
    const value = 'x'.repeat(TASK_OUTPUT_LIMITS.valueBytes - 10);
    const heavy = limitOutputs(Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`v${i}`, value])));
    expect(Object.keys(heavy.outputs)).toHaveLength(16);
    expect(heavy.leftOut).toEqual([
      {
        name: 'v16',
        reason: `the outputs of a task are at most ${TASK_OUTPUT_LIMITS.totalBytes} bytes together`,
      },
    ]);
  });
});

describe('applyStop', () => {
  const ran = { state: 'SUCCESS' as const, exitCode: 0, message: '' };

  it('reports the run as it ended when the worker did not stop it', () => {
    expect(applyStop(ran)).toEqual(ran);
  });

  it('reports the stop reason, whatever the run returned', () => {
    expect(applyStop(ran, { state: 'KILL', message: 'registry session lost' })).toEqual({
      state: 'KILL',
      exitCode: 0,
      message: 'registry session lost',
    });
    expect(
      applyStop(
        { state: 'FAILURE', exitCode: -1, message: 'aborted' },
        { state: 'FAILURE', message: 'timeout', exitCode: -1 },
      ),
    ).toEqual({
      state: 'FAILURE',
      exitCode: -1,
      message: 'timeout',
    });
  });
});

describe('redactUrl and scrub', () => {
  it('hides the password of a URL, in the user info and in the query', () => {
    expect(redactUrl('postgres://alice:s3cret@db:5432/app')).toBe('postgres://alice:***@db:5432/app');
    expect(redactUrl('postgresql://bob@db/app?password=s3cret&sslmode=require')).toBe(
      'postgresql://bob@db/app?password=***&sslmode=require',
    );
    expect(redactUrl('http://h/x')).toBe('http://h/x');
    expect(redactUrl('not a url s3cret')).toBe('(not a valid URL)');
  });

  it('removes a secret wherever a message repeats it', () => {
    expect(scrub('bad s3cret and s3cret', 's3cret')).toBe('bad *** and ***');
    expect(scrub('nothing to hide', undefined)).toBe('nothing to hide');
  });
});
