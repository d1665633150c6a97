import { buildHeartbeat } from '../src/domain/heartbeat';
import { parseOutboxRecord, parseRunningMarker, taskIdOfFile } from '../src/domain/records';
import { decideOutcome, retryDelayMs } from '../src/domain/task-result';
import { CorruptRecordError } from '../src/worker.errors';

describe('decideOutcome', () => {
  it('maps exit 0 to SUCCESS and other codes to FAILURE with the code', () => {
    expect(decideOutcome({ code: 0, signal: null })).toEqual({ state: 'SUCCESS', exitCode: 0, message: '' });
    expect(decideOutcome({ code: 3, signal: null })).toEqual({ state: 'FAILURE', exitCode: 3, message: '' });
  });

  it('reports -1 and the signal for a process killed by someone else', () => {
    expect(decideOutcome({ code: null, signal: 'SIGSEGV' })).toEqual({
      state: 'FAILURE',
      exitCode: -1,
      message: 'killed by signal SIGSEGV',
    });
  });

  it('reports a spawn failure as FAILURE -1 with its message', () => {
    expect(decideOutcome({ spawnError: 'spawn failed: EAGAIN' })).toEqual({
      state: 'FAILURE',
      exitCode: -1,
      message: 'spawn failed: EAGAIN',
    });
  });

  it('lets a stop reason win over the exit code, so a killed run is never SUCCESS', () => {
    const lost = { state: 'KILL' as const, message: 'registry session lost' };
    expect(decideOutcome({ code: 0, signal: null }, lost)).toEqual({
      state: 'KILL',
      exitCode: 0,
      message: 'registry session lost',
    });
    expect(decideOutcome({ code: null, signal: 'SIGKILL' }, lost).exitCode).toBe(-1);
    const timeout = { state: 'FAILURE' as const, message: 'timeout', exitCode: -1 };
    expect(decideOutcome({ code: 137, signal: null }, timeout)).toEqual({
      state: 'FAILURE',
      exitCode: -1,
      message: 'timeout',
    });
  });
});

describe('retryDelayMs', () => {
  it('doubles from 200 ms up to 5 s', () => {
    const mid = () => 0.5; // no jitter
    expect([1, 2, 3, 4, 5, 6, 7, 100].map((n) => retryDelayMs(n, mid))).toEqual([
      200, 400, 800, 1600, 3200, 5000, 5000, 5000,
    ]);
  });

  it('stays within the bounds with jitter', () => {
    for (const r of [0, 0.999]) {
      for (let n = 0; n < 20; n++) {
        const d = retryDelayMs(n, () => r);
        expect(d).toBeGreaterThanOrEqual(100);
        expect(d).toBeLessThanOrEqual(5000);
      }
    }
  });
});

describe('records on disk', () => {
  const event = {
    taskInstanceId: 9,
    workflowInstanceId: 4,
    attempt: 1,
    state: 'SUCCESS',
    exitCode: 0,
    startTimeMs: 1,
    endTimeMs: 2,
    workerAddress: '127.0.0.1:1234',
    epoch: 3,
    message: '',
    outputs: { day: '20240101', empty: '' },
  };

  it('round-trips an outbox record, outputs included', () => {
    const record = { version: 1, masterAddress: 'm:5678', createdAtMs: 5, event };
    expect(parseOutboxRecord('f', JSON.stringify(record))).toEqual(record);
  });

  it('reads an outbox record from before outputs as having none', () => {
    const { outputs: _, ...old } = event;
    const record = { version: 1, masterAddress: 'm:5678', createdAtMs: 5, event: old };
    expect(parseOutboxRecord('f', JSON.stringify(record)).event.outputs).toEqual({});
    expect(() =>
      parseOutboxRecord('f', JSON.stringify({ ...record, event: { ...old, outputs: { a: 1 } } })),
    ).toThrow(/event.outputs.a/);
  });

  it('round-trips a running marker of a run without a process (pid null)', () => {
    const marker = {
      version: 1,
      taskInstanceId: 1,
      workflowInstanceId: 1,
      taskName: 't',
      attempt: 1,
      masterAddress: 'm:1',
      epoch: 0,
      startTimeMs: 0,
      pid: null,
      startToken: null,
    };
    expect(parseRunningMarker('f', JSON.stringify(marker))).toEqual(marker);
  });

  it('refuses damaged records with a named error', () => {
    expect(() => parseOutboxRecord('f', '{"version":1,')).toThrow(CorruptRecordError);
    expect(() => parseOutboxRecord('f', JSON.stringify({ version: 2 }))).toThrow(/version/);
    expect(() =>
      parseOutboxRecord(
        'f',
        JSON.stringify({
          version: 1,
          masterAddress: 'm:1',
          createdAtMs: 1,
          event: { ...event, state: 'RUNNING' },
        }),
      ),
    ).toThrow(/event.state/);
    expect(() =>
      parseRunningMarker(
        'f',
        JSON.stringify({
          version: 1,
          taskInstanceId: 1,
          workflowInstanceId: 1,
          taskName: 't',
          attempt: 1,
          masterAddress: 'm:1',
          epoch: 0,
          startTimeMs: 0,
          pid: 1,
          startToken: null,
        }),
      ),
    ).toThrow(/pid/);
  });

  it('reads task ids from file names only', () => {
    expect(taskIdOfFile('12.json')).toBe(12);
    expect(taskIdOfFile('12.json.123.1.tmp')).toBeNull();
    expect(taskIdOfFile('x.json')).toBeNull();
  });
});

describe('buildHeartbeat', () => {
  it('carries the worker facts and the host load of the common sampler', () => {
    const facts = {
      host: 'h',
      port: 1,
      group: 'g',
      startTime: 5,
      registration: 2,
      runningTasks: 3,
      capacity: 8,
      serving: true,
    };
    const load = { heartbeatTime: 1000, cpuUsage: 0.5, memoryUsage: 0.75, loadAverage: 0.5 };
    expect(buildHeartbeat(facts, load)).toEqual({
      host: 'h',
      port: 1,
      startTime: 5,
      heartbeatTime: 1000,
      cpuUsage: 0.5,
      memoryUsage: 0.75,
      loadAverage: 0.5,
      group: 'g',
      registration: 2,
      runningTasks: 3,
      capacity: 8,
      serving: true,
    });
  });
});
