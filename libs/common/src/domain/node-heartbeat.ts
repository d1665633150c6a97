import type { NodeHeartbeat } from './states';

/** A registry value under /nodes that is not a valid NodeHeartbeat for its key. */
export class InvalidHeartbeatError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`ignoring registry entry ${key}: ${problem}`);
    this.name = 'InvalidHeartbeatError';
  }
}

const ADDRESS = /^([A-Za-z0-9.-]+):(\d{1,5})$/;

export interface ParsedNodeKey {
  /** "host:port" from the key's last segment. */
  address: string;
  /** Workers only: the group segment of /nodes/worker/{group}/{address}. */
  group?: string;
}

/**
 * Splits a registry key under /nodes/master or /nodes/worker into address (and group).
 * Returns undefined for keys that are not node entries (for example the group folder itself).
 */
export function parseNodeKey(prefix: string, key: string): ParsedNodeKey | undefined {
  if (!key.startsWith(`${prefix}/`)) return undefined;
  const rest = key.slice(prefix.length + 1).split('/');
  if (prefix.endsWith('/worker')) {
    const [group, address, ...extra] = rest;
    if (group === undefined || address === undefined || extra.length > 0) return undefined;
    return { group, address };
  }
  const [address, ...extra] = rest;
  if (address === undefined || extra.length > 0) return undefined;
  return { address };
}

/**
 * A host name or IPv4 address, as NODE_HOST is checked at start (config.loader.ts): every host
 * a real node advertises passes, and one no node could advertise ("-.-") does not.
 */
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

/** A value from the registry quoted in a message, cut short (a planted value can be 1 MB). */
function show(v: unknown): string {
  const text = String(JSON.stringify(v));
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

const isNonNegative = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isCount = (v: unknown): v is number => isNonNegative(v) && Number.isInteger(v);

/**
 * Validates the JSON another node keeps in its registry key (registry data is a boundary: a
 * bad or foreign entry must be skipped with a clear reason, never crash a node, be listed by
 * the API or be used as a dispatch target). The key is authoritative for the address and group;
 * the value must agree. Shared by masters (membership, worker choice) and the API server.
 */
export function parseHeartbeat(key: string, node: ParsedNodeKey, raw: string | null): NodeHeartbeat {
  if (raw === null) throw new InvalidHeartbeatError(key, 'no value');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new InvalidHeartbeatError(key, 'value is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidHeartbeatError(key, 'value is not a JSON object');
  }
  const v = value as Record<string, unknown>;
  const m = ADDRESS.exec(node.address);
  if (!m) throw new InvalidHeartbeatError(key, `key does not end in host:port`);
  // Dialling a port or host name that cannot exist fails in ways a master cannot tell from a
  // worker that may have started the task, so such an entry would hold its tasks forever.
  const [, host = '', portText = ''] = m;
  if (!HOST.test(host)) {
    throw new InvalidHeartbeatError(key, `key's host ${show(host)} is not a host name or IPv4 address`);
  }
  if (Number(portText) < 1 || Number(portText) > 65535) {
    throw new InvalidHeartbeatError(key, `key's port ${portText} is not between 1 and 65535`);
  }
  if (v.host !== m[1]) {
    throw new InvalidHeartbeatError(key, `host ${show(v.host)} does not match the key`);
  }
  if (v.port !== Number(m[2])) {
    throw new InvalidHeartbeatError(key, `port ${show(v.port)} does not match the key`);
  }
  for (const field of ['startTime', 'heartbeatTime', 'cpuUsage', 'memoryUsage', 'loadAverage'] as const) {
    if (!isNonNegative(v[field])) throw new InvalidHeartbeatError(key, `${field} must be a number >= 0`);
  }
  if (typeof v.serving !== 'boolean') throw new InvalidHeartbeatError(key, 'serving must be a boolean');
  if (node.group !== undefined) {
    if (v.group !== node.group) {
      throw new InvalidHeartbeatError(key, `group ${show(v.group)} does not match the key`);
    }
    if (!isCount(v.runningTasks)) {
      throw new InvalidHeartbeatError(key, 'runningTasks must be a whole number >= 0');
    }
    if (!isCount(v.capacity) || v.capacity < 1) {
      throw new InvalidHeartbeatError(key, 'capacity must be a whole number >= 1');
    }
    if (v.registration !== undefined && (!isCount(v.registration) || v.registration < 1)) {
      throw new InvalidHeartbeatError(key, 'registration must be a whole number >= 1');
    }
  }
  return v as unknown as NodeHeartbeat;
}
