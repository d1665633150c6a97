import { DefinitionError } from './definition-error';
import type { TaskDefinition } from './definition-types';
import {
  canonicalTaskDefinition,
  definitionSettings,
  parseStoredDefinition,
  readStoredSettings,
  STORED_NAME_UNREAD,
} from './stored-definition';

const shell = (name: string) => ({
  name,
  type: 'SHELL',
  command: 'true',
  retries: 0,
  retryIntervalMs: 1000,
  timeoutMs: 0,
  workerGroup: 'default',
});

/** What jsonb gives back: keys sorted by length, then bytewise. */
function jsonbOrder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(jsonbOrder);
  if (typeof value !== 'object' || value === null) return value;
  const keys = Object.keys(value).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(keys.map((k) => [k, jsonbOrder((value as Record<string, unknown>)[k])]));
}

describe('parseStoredDefinition', () => {
  it('reads a version stored before the settings column existed with the default settings', () => {
    expect(parseStoredDefinition({ name: 'w', tasks: [shell('a')], edges: [], settings: {} })).toEqual({
      name: 'w',
      description: '',
      params: {},
      failureStrategy: 'END',
      timeoutMs: 0,
      tasks: [shell('a')],
      edges: [],
    });
  });

  it('reads the settings and ignores settings keys of a later version', () => {
    const parsed = parseStoredDefinition({
      name: 'w',
      description: 'd',
      tasks: jsonbOrder([shell('a'), shell('b')]),
      edges: [{ from: 'a', to: 'b' }],
      settings: { params: { x: '1' }, failureStrategy: 'CONTINUE', timeoutMs: 5, calendar: 'later-issue' },
    });
    expect(parsed).toMatchObject({ params: { x: '1' }, failureStrategy: 'CONTINUE', timeoutMs: 5 });
    expect(parsed.tasks).toEqual([shell('a'), shell('b')]);
  });

  it('needs only the tasks, edges and settings columns', () => {
    expect(parseStoredDefinition({ tasks: [shell('a')], edges: [] }).name).toBe(STORED_NAME_UNREAD);
  });

  it('does not apply the API size limits (a version runs under the limits it was stored with)', () => {
    const tasks = Array.from({ length: 1500 }, (_, i) => shell(`t${i}`));
    expect(parseStoredDefinition({ name: 'w', tasks, edges: [] }).tasks).toHaveLength(1500);
  });

  it('still refuses what cannot run, with a DefinitionError naming it', () => {
    const cyclic = {
      name: 'w',
      tasks: [shell('a'), shell('b')],
      edges: [
        { from: 'a', to: 'b' },
        { from: 'b', to: 'a' },
      ],
    };
    expect(() => parseStoredDefinition(cyclic)).toThrow(new DefinitionError('cycle: a -> b -> a', 'edges'));
    expect(() => parseStoredDefinition({ name: 'w', tasks: 'oops', edges: [] })).toThrow(
      'workflow: "tasks" must be an array, got a string',
    );
    expect(() =>
      parseStoredDefinition({ name: 'w', tasks: [shell('a')], edges: [], settings: { timeoutMs: -1 } }),
    ).toThrow(/"timeoutMs" must be between 0/);
  });
});

describe('readStoredSettings', () => {
  it('fills in defaults and reads a wrong shape as the default instead of failing', () => {
    const concurrency = { policy: 'PARALLEL' };
    expect(readStoredSettings({})).toEqual({ params: {}, failureStrategy: 'END', timeoutMs: 0, concurrency });
    expect(readStoredSettings(null)).toEqual({
      params: {},
      failureStrategy: 'END',
      timeoutMs: 0,
      concurrency,
    });
    expect(
      readStoredSettings({
        params: { a: 'x', b: 1 },
        failureStrategy: 'MAYBE',
        timeoutMs: '5',
        concurrency: { policy: 'SERIAL', maxRuns: 0 },
      }),
    ).toEqual({
      params: { a: 'x' },
      failureStrategy: 'END',
      timeoutMs: 0,
      concurrency,
    });
    const settings = {
      params: { a: 'x' },
      failureStrategy: 'CONTINUE' as const,
      timeoutMs: 9,
      concurrency: { policy: 'PARALLEL' as const, maxRuns: 3 },
    };
    expect(readStoredSettings(definitionSettings({ ...settings }))).toEqual(settings);
  });
});

describe('canonicalTaskDefinition', () => {
  it('gives back jsonb-sorted keys in the documented order, nested objects too', () => {
    const task: TaskDefinition = {
      name: 'h',
      type: 'HTTP',
      http: {
        method: 'POST',
        url: 'http://x/',
        headers: { B: '1', A: '2' },
        body: '{}',
        expectStatus: [200],
        timeoutMs: 5,
      },
      retries: 0,
      retryIntervalMs: 1000,
      timeoutMs: 0,
      workerGroup: 'default',
    };
    const stored = jsonbOrder(task) as TaskDefinition;
    expect(Object.keys(stored)).not.toEqual(Object.keys(task));
    const canonical = canonicalTaskDefinition(stored);
    expect(JSON.stringify(canonical)).toBe(
      JSON.stringify({ ...task, http: { ...task.http, headers: { A: '2', B: '1' } } }),
    );
  });

  it('orders switch cases and keeps unknown keys after the known ones', () => {
    const stored = jsonbOrder({
      name: 's',
      type: 'SWITCH',
      switch: { default: 'b', cases: [{ when: 'true', then: 'a' }] },
      retries: 0,
      retryIntervalMs: 1000,
      timeoutMs: 0,
      workerGroup: 'default',
      zLater: 1,
    }) as TaskDefinition;
    const canonical = canonicalTaskDefinition(stored) as unknown as Record<string, unknown>;
    expect(Object.keys(canonical)).toEqual([
      'name',
      'type',
      'switch',
      'retries',
      'retryIntervalMs',
      'timeoutMs',
      'workerGroup',
      'zLater',
    ]);
    expect(JSON.stringify(canonical.switch)).toBe('{"cases":[{"when":"true","then":"a"}],"default":"b"}');
  });
});
