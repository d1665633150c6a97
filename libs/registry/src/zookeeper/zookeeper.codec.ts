/**
 * How registry values map to znode data. Parents that put() creates on the way, and lock
 * nodes, hold MARKER: a byte that UTF-8 encoding of a JS string never produces, so such a
 * node can never be mistaken for a key, whatever string a key holds (including '').
 */
export const MARKER = Buffer.from([0xff]);

export function encodeValue(value: string): Buffer {
  return Buffer.from(value, 'utf8');
}

/** The key's value, or null for an implicit parent / lock node (or data written by other tools as null). */
export function decodeValue(data: Buffer | null): string | null {
  if (data === null || isMarker(data)) return null;
  return data.toString('utf8');
}

export function isMarker(data: Buffer | null): boolean {
  return data !== null && data.length === MARKER.length && data[0] === MARKER[0];
}

/** ZooKeeper's own subtree under the root; never part of the registry's key space. */
export function isSystemPath(path: string): boolean {
  return path === '/zookeeper' || path.startsWith('/zookeeper/');
}
