import type { NodeHeartbeat } from '@porpoise/common';

export interface MasterNode {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly startTime: number;
  readonly heartbeatTime: number;
  readonly cpuUsage: number;
  readonly memoryUsage: number;
  readonly loadAverage: number;
  readonly serving: boolean;
}

export interface WorkerNode extends MasterNode {
  readonly group: string;
  readonly runningTasks: number;
  readonly capacity: number;
}

type Parsed<T> = { node: T; problem?: undefined } | { node?: undefined; problem: string };

/**
 * Validates the heartbeat JSON a node keeps in the registry (NodeHeartbeat). Registry data
 * is input like any other: another version of a node, a hand-written key or a truncated
 * value must not break the listing, so a bad entry yields a problem to log, not an error.
 * Only the known fields are passed on; a worker's group is the one its key is filed under. Pure.
 */
export function parseMasterHeartbeat(address: string, raw: string | null): Parsed<MasterNode> {
  const base = parseCommon(raw);
  if (base.problem !== undefined) return base;
  return { node: pick(address, base.node) };
}

export function parseWorkerHeartbeat(address: string, group: string, raw: string | null): Parsed<WorkerNode> {
  const base = parseCommon(raw);
  if (base.problem !== undefined) return base;
  const hb = base.node;
  if (!isCount(hb.runningTasks)) return { problem: '"runningTasks" must be a non-negative integer' };
  if (!isCount(hb.capacity)) return { problem: '"capacity" must be a non-negative integer' };
  return { node: { ...pick(address, hb), group, runningTasks: hb.runningTasks, capacity: hb.capacity } };
}

function parseCommon(raw: string | null): Parsed<NodeHeartbeat> {
  if (raw === null) return { problem: 'no value' };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { problem: 'value is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { problem: 'value is not a JSON object' };
  const hb = value as Record<string, unknown>;
  if (typeof hb.host !== 'string' || hb.host === '') return { problem: '"host" must be a non-empty string' };
  if (!Number.isInteger(hb.port) || (hb.port as number) < 1 || (hb.port as number) > 65535)
    return { problem: '"port" must be an integer 1..65535' };
  for (const field of ['startTime', 'heartbeatTime', 'cpuUsage', 'memoryUsage', 'loadAverage'])
    if (!isNonNegative(hb[field])) return { problem: `"${field}" must be a non-negative number` };
  if (typeof hb.serving !== 'boolean') return { problem: '"serving" must be a boolean' };
  return { node: hb as unknown as NodeHeartbeat };
}

function pick(address: string, hb: NodeHeartbeat): MasterNode {
  return {
    address,
    host: hb.host,
    port: hb.port,
    startTime: hb.startTime,
    heartbeatTime: hb.heartbeatTime,
    cpuUsage: hb.cpuUsage,
    memoryUsage: hb.memoryUsage,
    loadAverage: hb.loadAverage,
    serving: hb.serving,
  };
}

const isNonNegative = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
