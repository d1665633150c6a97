import {
  DEFAULT_CONCURRENCY,
  isLimitedConcurrency,
  parseConcurrency,
  readStoredConcurrency,
} from './concurrency';
import { DefinitionError } from './definition-error';
import { parseWorkflowDefinition } from './parse-definition';
import { definitionSettings, parseStoredDefinition, readStoredSettings } from './stored-definition';

const wf = (concurrency: unknown) => ({ name: 'w', tasks: [{ name: 'a', type: 'EMPTY' }], concurrency });

function rejection(concurrency: unknown): { message: string; path: string } {
  try {
    parseWorkflowDefinition(wf(concurrency));
  } catch (err) {
    if (err instanceof DefinitionError) return { message: err.message, path: err.path };
    throw err;
  }
  throw new Error('accepted');
}

describe('concurrency in a workflow definition', () => {
  it('is absent when not given (PARALLEL, no limit); an empty object is PARALLEL', () => {
    const plain = parseWorkflowDefinition({ name: 'w', tasks: [{ name: 'a', type: 'EMPTY' }] });
    expect(plain).not.toHaveProperty('concurrency');
    expect(readStoredSettings(definitionSettings(plain)).concurrency).toEqual({ policy: 'PARALLEL' });
    expect(parseWorkflowDefinition(wf({})).concurrency).toEqual({ policy: 'PARALLEL' });
  });

  it.each([
    [{ policy: 'PARALLEL' }, { policy: 'PARALLEL' }, false],
    [{ policy: 'PARALLEL', maxRuns: 1 }, { policy: 'PARALLEL', maxRuns: 1 }, true],
    [{ maxRuns: 10_000 }, { policy: 'PARALLEL', maxRuns: 10_000 }, true],
    [{ policy: 'SERIAL_WAIT' }, { policy: 'SERIAL_WAIT' }, true],
    [{ policy: 'SERIAL_DISCARD' }, { policy: 'SERIAL_DISCARD' }, true],
  ])('accepts %j', (raw, parsed, limited) => {
    const concurrency = parseWorkflowDefinition(wf(raw)).concurrency;
    expect(concurrency).toEqual(parsed);
    expect(isLimitedConcurrency(concurrency ?? DEFAULT_CONCURRENCY)).toBe(limited);
    expect(readStoredSettings(definitionSettings(parseWorkflowDefinition(wf(raw)))).concurrency).toEqual(
      parsed,
    );
  });

  it.each([
    ['not an object', 'SERIAL_WAIT', /"concurrency" must be an object, got "SERIAL_WAIT"/, 'concurrency'],
    ['an array', [], /"concurrency" must be an object, got an array/, 'concurrency'],
    ['null', null, /"concurrency" must be an object, got null/, 'concurrency'],
    ['unknown field', { policy: 'PARALLEL', max: 3 }, /unknown field "concurrency.max"/, 'concurrency.max'],
    [
      'unknown policy',
      { policy: 'SERIAL' },
      /"concurrency.policy" must be one of PARALLEL, SERIAL_WAIT, SERIAL_DISCARD, got "SERIAL"/,
      'concurrency.policy',
    ],
    [
      'maxRuns 0',
      { maxRuns: 0 },
      /"concurrency.maxRuns" must be between 1 and 10000, got 0/,
      'concurrency.maxRuns',
    ],
    [
      'maxRuns too big',
      { maxRuns: 10_001 },
      /"concurrency.maxRuns" must be between 1 and 10000, got 10001/,
      'concurrency.maxRuns',
    ],
    [
      'maxRuns a string',
      { maxRuns: '2' },
      /"concurrency.maxRuns" must be an integer, got "2"/,
      'concurrency.maxRuns',
    ],
    [
      'maxRuns a fraction',
      { maxRuns: 1.5 },
      /"concurrency.maxRuns" must be an integer/,
      'concurrency.maxRuns',
    ],
    [
      'maxRuns with SERIAL_WAIT',
      { policy: 'SERIAL_WAIT', maxRuns: 2 },
      /"concurrency.maxRuns" is only allowed with policy PARALLEL/,
      'concurrency.maxRuns',
    ],
    [
      'maxRuns with SERIAL_DISCARD',
      { policy: 'SERIAL_DISCARD', maxRuns: 1 },
      /"concurrency.maxRuns" is only allowed with policy PARALLEL/,
      'concurrency.maxRuns',
    ],
  ])('refuses %s, naming the field', (_what, raw, message, path) => {
    expect(rejection(raw)).toEqual({ message: expect.stringMatching(message), path });
  });

  it('is read back from a stored version (strict for a master, lenient for answers)', () => {
    const stored = {
      tasks: [{ name: 'a', type: 'EMPTY' }],
      edges: [],
      settings: { concurrency: { policy: 'SERIAL_WAIT' } },
    };
    expect(parseStoredDefinition(stored).concurrency).toEqual({ policy: 'SERIAL_WAIT' });
    expect(parseStoredDefinition({ ...stored, settings: {} }).concurrency).toBeUndefined();
    expect(readStoredConcurrency({ policy: 'NOPE' })).toEqual({ policy: 'PARALLEL' });
    expect(parseConcurrency(undefined)).toEqual({ policy: 'PARALLEL' });
  });
});
