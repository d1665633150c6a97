/**
 * Key ranges for the etcd backend. Registry paths are stored as etcd keys unchanged. Valid
 * segments use only characters above '/' except '-' and '.', so `p + '0'` ('0' follows '/' in
 * ASCII) bounds everything that starts with `p + '/'`; ranges that may also catch siblings
 * such as `/a-b` are filtered again by the caller with isUnder().
 */

export interface KeyRange {
  readonly key: Buffer;
  readonly range_end?: Buffer;
}

/** Every key strictly under `path` (its descendants, not the key itself). */
export function descendantsRange(path: string): KeyRange {
  const base = path === '/' ? '/' : `${path}/`;
  return { key: Buffer.from(base), range_end: Buffer.from(`${base.slice(0, -1)}0`) };
}

/** The key and its descendants, plus siblings like `/a-b` or `/a.b` that callers must filter out. */
export function subtreeRange(path: string): KeyRange {
  if (path === '/') return { key: Buffer.from('/'), range_end: Buffer.from('0') };
  return { key: Buffer.from(path), range_end: Buffer.from(`${path}0`) };
}

export function exactKey(path: string): KeyRange {
  return { key: Buffer.from(path) };
}
