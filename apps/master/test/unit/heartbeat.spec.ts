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
    ['a huge host, quoted short', JSON.stringify({ ...worker, host: 'h'.repeat(500_000) }), /^.{0,250}$/],
  ])('rejects %s with a reason', (_what, value, reason) => {
    const key = '/nodes/worker/default/10.0.0.5:1234';
    const parse = () => parseHeartbeat(key, parseNodeKey('/nodes/worker', key)!, value);
    expect(parse).toThrow(InvalidHeartbeatError);
    expect(parse).toThrow(reason);
    expect(parse).toThrow(key);
  });

  // Found by test/e2e/fuzz-registry.int-spec.ts: such entries were taken as live workers, and a
  // Dispatch to them failed ambiguously, holding the task until the entry went away.
  it.each([
    ['port 99999', '127.0.0.1:99999', /port 99999 is not between 1 and 65535/],
    ['port 0', '127.0.0.1:0', /port 0 is not between/],
    ['a host of hyphens and dots', '-.-:5', /host "-.-" is not a host name/],
    ['a host ending in a hyphen', 'a-:5', /host "a-" is not a host name/],
  ])('rejects a key with %s, however well-formed its value', (_what, address, reason) => {
    const key = `/nodes/worker/default/${address}`;
    const [host = '', port = ''] = address.split(':');
    const value = JSON.stringify({ ...worker, host, port: Number(port) });
    expect(() => parseHeartbeat(key, parseNodeKey('/nodes/worker', key)!, value)).toThrow(reason);
  });

  it('accepts host names and addresses as nodes advertise them', () => {
    for (const host of ['localhost', 'worker-1.cluster.local', '10.0.0.5', 'W1']) {
      const key = `/nodes/worker/default/${host}:65535`;
      const value = JSON.stringify({ ...worker, host, port: 65535 });
      expect(parseHeartbeat(key, parseNodeKey('/nodes/worker', key)!, value).host).toBe(host);
    }
  });
});
