import { decodeValue, encodeValue, isMarker, isSystemPath, MARKER } from './zookeeper.codec';
import { byLockSequence, isLockNode, lockNodePrefix, lockNodeToken } from './zookeeper.lock';

describe('zookeeper codec', () => {
  it('round-trips every string, including empty and non-ASCII ones', () => {
    for (const value of ['', 'x', '{"a":1}', 'ünïcødé ✓', '\uffff', '\ud800']) {
      expect(decodeValue(encodeValue(value))).toBe(Buffer.from(value, 'utf8').toString('utf8'));
    }
  });

  it('never mistakes a value for the implicit-parent marker', () => {
    expect(decodeValue(MARKER)).toBeNull();
    expect(decodeValue(null)).toBeNull();
    for (let code = 0; code < 0x10000; code += 7) {
      expect(isMarker(encodeValue(String.fromCharCode(code)))).toBe(false);
    }
  });

  it('knows ZooKeeper’s own subtree', () => {
    expect(isSystemPath('/zookeeper')).toBe(true);
    expect(isSystemPath('/zookeeper/quota')).toBe(true);
    expect(isSystemPath('/zookeeperx')).toBe(false);
  });
});

describe('zookeeper lock node names', () => {
  const token = 'a'.repeat(32);
  const other = 'b'.repeat(32);

  it('orders by sequence, not by token', () => {
    const names = [
      `${lockNodePrefix(token)}0000000003`,
      `${lockNodePrefix(other)}0000000001`,
      `${lockNodePrefix(token)}0000000002`,
    ];
    expect(names.sort(byLockSequence).map((n) => n.slice(-1))).toEqual(['1', '2', '3']);
  });

  it('recognises its own nodes and their token', () => {
    expect(isLockNode(`${lockNodePrefix(token)}0000000003`)).toBe(true);
    expect(isLockNode('lock-0000000003')).toBe(false);
    expect(lockNodeToken(`${lockNodePrefix(other)}0000000001`)).toBe(other);
  });
});
