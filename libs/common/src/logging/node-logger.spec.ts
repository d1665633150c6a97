import { ManualClock } from '@porpoise/test-harness';
import { withIds } from './log-message';
import { configSecrets, jsonLogLine, NodeLogger, redactLogText } from './node-logger';

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0, 250);

/** What the logger wrote to stdout and stderr while fn ran. */
function capture(fn: () => void): { stdout: string[]; stderr: string[] } {
  const out = { stdout: [] as string[], stderr: [] as string[] };
  const spies = (['stdout', 'stderr'] as const).map((stream) =>
    jest.spyOn(process[stream], 'write').mockImplementation((chunk: string | Uint8Array) => {
      out[stream].push(String(chunk));
      return true;
    }),
  );
  try {
    fn();
  } finally {
    for (const s of spies) s.mockRestore();
  }
  return out;
}

describe('jsonLogLine', () => {
  it('has time, level, context, message, and the ids of a message about an instance and a task', () => {
    const line = jsonLogLine({
      timeMs: T0,
      level: 'log',
      context: 'WorkerExecutor',
      message: withIds({ instanceId: 7, taskInstanceId: 12 }, 'task 12 finished: SUCCESS'),
    });
    expect(JSON.parse(line)).toEqual({
      time: '2026-12-01T12:00:00.250Z',
      level: 'info',
      context: 'WorkerExecutor',
      message: 'task 12 finished: SUCCESS',
      instanceId: 7,
      taskInstanceId: 12,
    });
    expect(line).not.toContain('\n');
  });

  it('carries no ids for a plain message, keeps other levels, and adds an error stack', () => {
    expect(JSON.parse(jsonLogLine({ timeMs: T0, level: 'warn', message: 'plain' }))).toEqual({
      time: '2026-12-01T12:00:00.250Z',
      level: 'warn',
      message: 'plain',
    });
    const err = JSON.parse(
      jsonLogLine({
        timeMs: T0,
        level: 'error',
        context: 'X',
        message: new Error('boom'),
        stack: 'Error: boom\n  at x',
      }),
    );
    expect(err).toMatchObject({ level: 'error', message: 'boom', stack: 'Error: boom\n  at x' });
    expect(JSON.parse(jsonLogLine({ timeMs: T0, level: 'log', message: { a: 1 } })).message).toBe('{ a: 1 }');
  });

  it('never carries a password or a secret of the node', () => {
    const secret = 'cluster-secret-0123456789';
    const line = jsonLogLine({
      timeMs: T0,
      level: 'error',
      message: `cannot reach postgres://porpoise:hunter2@db:5432/porpoise with ${secret}`,
      stack: `at connect (postgresql://u:pw@h/db) ${secret}`,
      secrets: [secret],
    });
    expect(line).not.toContain('hunter2');
    expect(line).not.toContain(':pw@');
    expect(line).not.toContain(secret);
    expect(JSON.parse(line).message).toBe('cannot reach postgres://porpoise:***@db:5432/porpoise with ***');
  });
});

describe('redactLogText / configSecrets', () => {
  it('replaces URL passwords of any scheme and secrets of 12 characters or more', () => {
    expect(redactLogText('http://a:b@h/x and https://user@h/ and postgres://u:p%40ss@h:1/d')).toBe(
      'http://a:***@h/x and https://user@h/ and postgres://u:***@h:1/d',
    );
    // A short password is not blanked out of every word (it would take "postgres" out of URLs).
    expect(redactLogText('postgres://postgres@h', ['postgres'])).toBe('postgres://postgres@h');
  });

  it('takes the cluster secret and the database password from a configuration', () => {
    expect(
      configSecrets({
        clusterSecret: 'the-cluster-secret',
        databaseUrl: 'postgres://u:p%40ss-word-long@h/d',
      }),
    ).toEqual(['the-cluster-secret', 'p@ss-word-long']);
    expect(configSecrets({ databaseUrl: 'postgres://u@h/d' })).toEqual([]);
    // The registry's password (ZOOKEEPER_AUTH, ETCD_PASSWORD).
    expect(
      configSecrets({ registry: { type: 'zookeeper', auth: { password: 'zk-digest-password' } } }),
    ).toEqual(['zk-digest-password']);
  });
});

describe('NodeLogger', () => {
  it('with LOG_FORMAT=json writes one JSON object per line: info to stdout, errors (with their stack) to stderr', () => {
    const logger = new NodeLogger({
      format: 'json',
      clock: new ManualClock(T0),
      secrets: ['a-long-cluster-secret'],
    });
    const out = capture(() => {
      logger.log(withIds({ instanceId: 3 }, 'instance 3: took command 9'), 'CommandConsumer');
      logger.warn('plain warning', 'Workflow');
      logger.error('failed with a-long-cluster-secret', 'Error: x\n    at y', 'Master');
    });
    expect(out.stdout.map((l) => JSON.parse(l))).toEqual([
      {
        time: '2026-12-01T12:00:00.250Z',
        level: 'info',
        context: 'CommandConsumer',
        message: 'instance 3: took command 9',
        instanceId: 3,
      },
      { time: '2026-12-01T12:00:00.250Z', level: 'warn', context: 'Workflow', message: 'plain warning' },
    ]);
    expect(out.stderr).toHaveLength(1);
    expect(JSON.parse(out.stderr[0]!)).toEqual({
      time: '2026-12-01T12:00:00.250Z',
      level: 'error',
      context: 'Master',
      message: 'failed with ***',
      stack: 'Error: x\n    at y',
    });
    for (const line of [...out.stdout, ...out.stderr]) expect(line.endsWith('}\n')).toBe(true);
  });

  it('logs an error without a stack in either format (Nest passes none most of the time)', () => {
    for (const format of ['text', 'json'] as const) {
      const logger = new NodeLogger({ format, secrets: ['a-long-cluster-secret'] });
      const out = capture(() =>
        logger.error(withIds({ instanceId: 1 }, 'failed with a-long-cluster-secret')),
      );
      expect(out.stderr).toHaveLength(1);
      expect(out.stderr[0]).toContain('failed with ***');
    }
    const text = capture(() =>
      new NodeLogger({ format: 'text', secrets: ['a-long-cluster-secret'] }).error(
        'boom',
        'Error: boom\n    at a-long-cluster-secret',
        'Ctx',
      ),
    );
    expect(text.stderr.join('')).toContain('Error: boom\n    at ***');
  });

  it('with LOG_FORMAT=text prints the text of a message with ids, as before', () => {
    const logger = new NodeLogger({ format: 'text' });
    const out = capture(() =>
      logger.log(withIds({ instanceId: 3 }, 'instance 3: took command 9'), 'Workflow'),
    );
    expect(out.stdout).toHaveLength(1);
    // eslint-disable-next-line no-control-regex
    const line = out.stdout[0]!.replace(/\x1b\[[0-9;]*m/g, '');
    expect(line).toMatch(/LOG \[Workflow\] instance 3: took command 9\n$/);
    expect(line).not.toMatch(/LogMessage|instanceId|^\{/);
  });
});
