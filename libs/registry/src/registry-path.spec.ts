import {
  isUnder,
  joinPath,
  parentOf,
  validateLockTimeout,
  validatePath,
  validateValue,
} from './registry-path';
import { InvalidArgumentError, InvalidPathError, ValueTooLargeError } from './registry.errors';

describe('validatePath', () => {
  it.each(['/', '/a', '/nodes/master/127.0.0.1:5678', '/lock/failover', '/a-b_c.d@e'])('accepts %s', (p) => {
    expect(validatePath(p)).toBe(p);
  });

  it.each([
    ['', 'empty'],
    ['a/b', 'must start with /'],
    ['/a/', 'must not end with /'],
    ['/a//b', 'empty segment'],
    ['/a/../b', 'segment ".."'],
    ['/a/./b', 'segment "."'],
    ['/a b', 'may hold only'],
    ['/' + 'x'.repeat(1100), 'longer than'],
  ])('rejects %j naming the problem (%s)', (p, reason) => {
    expect(() => validatePath(p)).toThrow(InvalidPathError);
    expect(() => validatePath(p)).toThrow(reason);
  });

  it('rejects a non-string', () => {
    expect(() => validatePath(7)).toThrow('not a string');
  });
});

describe('validateValue', () => {
  it('accepts a string within the limit, counting UTF-8 bytes', () => {
    expect(validateValue('/k', 'héllo', 6)).toBe('héllo');
    expect(() => validateValue('/k', 'héllo', 5)).toThrow(ValueTooLargeError);
  });
  it('rejects a non-string value', () => {
    expect(() => validateValue('/k', { a: 1 })).toThrow(InvalidArgumentError);
  });
});

describe('validateLockTimeout', () => {
  it.each([undefined, 0, 1500])('accepts %p', (t) => expect(validateLockTimeout(t)).toBe(t));
  it.each([-1, NaN, Infinity, '5'])('rejects %p', (t) =>
    expect(() => validateLockTimeout(t)).toThrow(InvalidArgumentError),
  );
});

describe('path helpers', () => {
  it('isUnder matches the prefix and its subtree only', () => {
    expect(isUnder('/a', '/a')).toBe(true);
    expect(isUnder('/a/b', '/a')).toBe(true);
    expect(isUnder('/ab', '/a')).toBe(false);
    expect(isUnder('/anything', '/')).toBe(true);
  });
  it('parentOf and joinPath are inverse', () => {
    expect(parentOf('/a/b/c')).toBe('/a/b');
    expect(parentOf('/a')).toBe('/');
    expect(joinPath('/', 'a')).toBe('/a');
    expect(joinPath('/a', 'b')).toBe('/a/b');
  });
});
