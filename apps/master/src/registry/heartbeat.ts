import { cpuUsage as processCpuUsage } from 'node:process';
import { freemem, loadavg, totalmem } from 'node:os';
import type { NodeHeartbeat } from '@porpoise/common';
import { InvalidHeartbeatError } from '../master.errors';

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
    if (rest.length !== 2) return undefined;
    return { group: rest[0], address: rest[1] };
  }
  if (rest.length !== 1) return undefined;
  return { address: rest[0] };
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isCount = (v: unknown): v is number => isNumber(v) && Number.isInteger(v) && v >= 0;

/**
 * Validates the JSON another node keeps in its registry key (registry data is a boundary: a
 * bad or foreign entry must be skipped with a clear reason, never crash the master or be used
 * as a dispatch target). The key is authoritative for the address; the value must agree.
 */
export function parseHeartbeat(key: string, node: ParsedNodeKey, raw: string | null): NodeHeartbeat {
  if (raw === null) throw new InvalidHeartbeatError(key, 'no value');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new InvalidHeartbeatError(key, 'value is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidHeartbeatError(key, 'value is not a JSON object');
  const v = value as Record<string, unknown>;
  const m = ADDRESS.exec(node.address);
  if (!m) throw new InvalidHeartbeatError(key, `key does not end in host:port`);
  if (v.host !== m[1])
    throw new InvalidHeartbeatError(key, `host ${JSON.stringify(v.host)} does not match the key`);
  if (v.port !== Number(m[2]))
    throw new InvalidHeartbeatError(key, `port ${JSON.stringify(v.port)} does not match the key`);
  for (const field of ['startTime', 'heartbeatTime', 'cpuUsage', 'memoryUsage', 'loadAverage'] as const)
    if (!isNumber(v[field])) throw new InvalidHeartbeatError(key, `${field} must be a number`);
  if (typeof v.serving !== 'boolean') throw new InvalidHeartbeatError(key, 'serving must be a boolean');
  if (node.group !== undefined) {
    if (v.group !== node.group)
      throw new InvalidHeartbeatError(key, `group ${JSON.stringify(v.group)} does not match the key`);
    if (!isCount(v.runningTasks))
      throw new InvalidHeartbeatError(key, 'runningTasks must be a whole number >= 0');
    if (!isCount(v.capacity) || v.capacity < 1)
      throw new InvalidHeartbeatError(key, 'capacity must be a whole number >= 1');
  }
  return v as unknown as NodeHeartbeat;
}

/**
 * Samples this process for its own heartbeat: cpu is the share of one core used since the
 * previous sample, memory the machine's used fraction, load the 1-minute load average.
 */
export class HeartbeatSampler {
  private lastCpu = processCpuUsage();
  private lastAt = performance.now();
  private readonly startTime = Date.now();

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  sample(serving: boolean): NodeHeartbeat {
    const now = performance.now();
    const cpu = processCpuUsage(this.lastCpu);
    const elapsedMicros = Math.max(1, (now - this.lastAt) * 1000);
    this.lastCpu = processCpuUsage();
    this.lastAt = now;
    return {
      host: this.host,
      port: this.port,
      startTime: this.startTime,
      heartbeatTime: Date.now(),
      cpuUsage: Math.round(((cpu.user + cpu.system) / elapsedMicros) * 1000) / 1000,
      memoryUsage: Math.round((1 - freemem() / totalmem()) * 1000) / 1000,
      loadAverage: loadavg()[0],
      serving,
    };
  }
}
