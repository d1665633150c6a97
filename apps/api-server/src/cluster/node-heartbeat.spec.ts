import { parseMasterHeartbeat, parseWorkerHeartbeat } from './node-heartbeat';

const hb = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    host: 'h',
    port: 1,
    startTime: 1,
    heartbeatTime: 2,
    cpuUsage: 0,
    memoryUsage: 0.5,
    loadAverage: 0,
    serving: false,
    ...extra,
  });

describe('node heartbeats from the registry', () => {
  it('passes on the known fields only', () => {
    expect(parseMasterHeartbeat('h:1', hb({ secret: 'x', group: 'g' }))).toEqual({
      node: {
        address: 'h:1',
        host: 'h',
        port: 1,
        startTime: 1,
        heartbeatTime: 2,
        cpuUsage: 0,
        memoryUsage: 0.5,
        loadAverage: 0,
        serving: false,
      },
    });
    expect(
      parseWorkerHeartbeat('h:1', 'gpu', hb({ group: 'gpu', runningTasks: 0, capacity: 4 })).node,
    ).toMatchObject({
      group: 'gpu',
      runningTasks: 0,
      capacity: 4,
    });
  });

  it.each([
    [null, 'no value'],
    ['', 'value is not JSON'],
    ['null', 'value is not a JSON object'],
    ['[1]', 'value is not a JSON object'],
    [hb({ host: '' }), 'host "" does not match the key'],
    [hb({ host: 'other' }), 'host "other" does not match the key'],
    [hb({ port: 70000 }), 'port 70000 does not match the key'],
    [hb({ port: '1' }), 'port "1" does not match the key'],
    [hb({ cpuUsage: -1 }), 'cpuUsage must be a number >= 0'],
    [hb({ heartbeatTime: null }), 'heartbeatTime must be a number >= 0'],
    [hb({ serving: 'yes' }), 'serving must be a boolean'],
  ])('refuses %j: %s', (raw, problem) => {
    expect(parseMasterHeartbeat('h:1', raw)).toEqual({ problem });
  });

  it('refuses a worker without running tasks or capacity, or filed under another group', () => {
    expect(parseWorkerHeartbeat('h:1', 'g', hb({ group: 'g', capacity: 1 })).problem).toBe(
      'runningTasks must be a whole number >= 0',
    );
    expect(parseWorkerHeartbeat('h:1', 'g', hb({ group: 'g', runningTasks: 1, capacity: 1.5 })).problem).toBe(
      'capacity must be a whole number >= 1',
    );
    expect(
      parseWorkerHeartbeat('h:1', 'g', hb({ group: 'other', runningTasks: 0, capacity: 1 })).problem,
    ).toBe('group "other" does not match the key');
  });

  it('takes a worker registration that is a whole number >= 1, or none (a worker from before)', () => {
    const worker = (registration: unknown) =>
      parseWorkerHeartbeat('h:1', 'g', hb({ group: 'g', runningTasks: 0, capacity: 1, registration }));
    expect(worker(undefined).node).toBeDefined();
    expect(worker(3).node).toBeDefined();
    for (const bad of [0, 1.5, '2', -1]) {
      expect(worker(bad).problem).toBe('registration must be a whole number >= 1');
    }
  });
});
