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
    expect(parseWorkerHeartbeat('h:1', 'gpu', hb({ runningTasks: 0, capacity: 4 })).node).toMatchObject({
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
    [hb({ host: '' }), '"host" must be a non-empty string'],
    [hb({ port: 70000 }), '"port" must be an integer 1..65535'],
    [hb({ port: '1' }), '"port" must be an integer 1..65535'],
    [hb({ cpuUsage: -1 }), '"cpuUsage" must be a non-negative number'],
    [hb({ heartbeatTime: null }), '"heartbeatTime" must be a non-negative number'],
    [hb({ serving: 'yes' }), '"serving" must be a boolean'],
  ])('refuses %j: %s', (raw, problem) => {
    expect(parseMasterHeartbeat('h:1', raw)).toEqual({ problem });
  });

  it('refuses a worker without running tasks or capacity', () => {
    expect(parseWorkerHeartbeat('h:1', 'g', hb({ capacity: 1 })).problem).toBe(
      '"runningTasks" must be a non-negative integer',
    );
    expect(parseWorkerHeartbeat('h:1', 'g', hb({ runningTasks: 1, capacity: 1.5 })).problem).toBe(
      '"capacity" must be a non-negative integer',
    );
  });
});
