import { parseHeartbeat, parseNodeKey } from '../../src/registry/heartbeat';
import { InvalidHeartbeatError } from '../../src/master.errors';

const worker = {
  host: '10.0.0.5',
  port: 1234,
  startTime: 1,
  heartbeatTime: 2,
  cpuUsage: 0.1,
  memoryUsage: 0.2,
  loadAverage: 0.3,
  group: 'default',
  runningTasks: 1,
  capacity: 4,
  serving: true,
};

describe('registry heartbeats', () => {
  it('splits node keys', () => {
    expect(parseNodeKey('/nodes/worker', '/nodes/worker/default/10.0.0.5:1234')).toEqual({
      group: 'default',
      address: '10.0.0.5:1234',
    });
    expect(parseNodeKey('/nodes/worker', '/nodes/worker/default')).toBeUndefined();
    expect(parseNodeKey('/nodes/master', '/nodes/master/10.0.0.1:5678')).toEqual({
      address: '10.0.0.1:5678',
    });
  });

  it('accepts a valid worker heartbeat', () => {
    const key = '/nodes/worker/default/10.0.0.5:1234';
    expect(parseHeartbeat(key, parseNodeKey('/nodes/worker', key)!, JSON.stringify(worker))).toEqual(worker);
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['another host', JSON.stringify({ ...worker, host: '10.0.0.6' }), /host .* does not match/],
    ['another port', JSON.stringify({ ...worker, port: 1 }), /port 1 does not match/],
    ['another group', JSON.stringify({ ...worker, group: 'gpu' }), /group "gpu" does not match/],
    ['no capacity', JSON.stringify({ ...worker, capacity: 0 }), /capacity/],
    ['bad runningTasks', JSON.stringify({ ...worker, runningTasks: -1 }), /runningTasks/],
    ['no serving flag', JSON.stringify({ ...worker, serving: 'yes' }), /serving/],
    ['a string load', JSON.stringify({ ...worker, loadAverage: 'high' }), /loadAverage/],
  ])('rejects %s with a reason', (_what, value, reason) => {
    const key = '/nodes/worker/default/10.0.0.5:1234';
    const parse = () => parseHeartbeat(key, parseNodeKey('/nodes/worker', key)!, value);
    expect(parse).toThrow(InvalidHeartbeatError);
    expect(parse).toThrow(reason);
    expect(parse).toThrow(key);
  });
});
