/**
 * The run's definition as the command consumer builds it from a stored version: the shared
 * model (parseStoredDefinition + buildWorkflowGraph) and the workflow settings.
 */
import { DefinitionError } from '@porpoise/common';
import { runDefinition } from '../../src/command/command-consumer.service';
import { task } from '../support/tasks';

const stored = (settings: unknown, elapsedMs = 0) => ({
  workflowCode: 'wf',
  workflowVersion: 1,
  tasks: [task('a'), task('b')],
  edges: [{ from: 'a', to: 'b' }],
  settings,
  elapsedMs,
});

describe('runDefinition', () => {
  it('builds the DAG and carries failureStrategy, declared params and the timeout left (database clock)', () => {
    const r = runDefinition(
      stored({ params: { day: 'mon' }, failureStrategy: 'CONTINUE', timeoutMs: 10_000 }, 4_000),
    );
    expect(r.dag).not.toBeInstanceOf(Error);
    if (r.dag instanceof Error) return;
    expect(r.dag.order).toEqual(['a', 'b']);
    expect(r.dag.upstream.get('b')).toEqual(['a']);
    expect(r).toMatchObject({ failureStrategy: 'CONTINUE', timeoutInMs: 6_000, defaults: { day: 'mon' } });
  });

  it('has no timeout for timeoutMs 0 or a version stored before settings existed ({}), and END by default', () => {
    expect(runDefinition(stored({ timeoutMs: 0 }, 99)).timeoutInMs).toBeUndefined();
    const old = runDefinition(stored({}));
    expect(old).toMatchObject({ failureStrategy: 'END', defaults: {} });
    expect(old.timeoutInMs).toBeUndefined();
  });

  it('a timeout already passed is left <= 0 (the run times out at once)', () => {
    expect(runDefinition(stored({ timeoutMs: 1_000 }, 5_000)).timeoutInMs).toBe(-4_000);
  });

  it.each([
    ['a missing version', { ...stored({}), tasks: null }, /version 1 does not exist/],
    [
      'a cycle',
      {
        ...stored({}),
        edges: [
          { from: 'a', to: 'b' },
          { from: 'b', to: 'a' },
        ],
      },
      /cycle/,
    ],
    ['a bad task', { ...stored({}), tasks: [{ name: 'a', type: 'NOPE' }] }, /type/],
    ['bad settings', stored({ failureStrategy: 'MAYBE' }), /failureStrategy/],
  ])('%s is an Error with the reason (the instance fails with it)', (_what, c, reason) => {
    const r = runDefinition(c);
    expect(r.dag).toBeInstanceOf(Error);
    expect((r.dag as Error).message).toMatch(reason);
  });

  it("a definition error is the shared model's DefinitionError", () => {
    expect(runDefinition({ ...stored({}), tasks: [{ name: 'a', type: 'NOPE' }] }).dag).toBeInstanceOf(
      DefinitionError,
    );
  });
});
