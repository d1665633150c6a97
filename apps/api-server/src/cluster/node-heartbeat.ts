import {
  InvalidHeartbeatError,
  parseHeartbeat,
  REGISTRY_PATHS,
  type NodeHeartbeat,
  type ParsedNodeKey,
} from '@porpoise/common';

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
 * Validates the heartbeat JSON a node keeps in the registry with the parser the masters use
 * (libs/common). Registry data is input like any other: another version of a node, a
 * hand-written key or a truncated value must not break the listing, so a bad entry yields a
 * problem to log, not an error. Only the known fields are passed on. Pure.
 */
export function parseMasterHeartbeat(address: string, raw: string | null): Parsed<MasterNode> {
  return parse(`${REGISTRY_PATHS.masters}/${address}`, { address }, raw, (hb) => pick(address, hb));
}

export function parseWorkerHeartbeat(address: string, group: string, raw: string | null): Parsed<WorkerNode> {
  return parse(`${REGISTRY_PATHS.workers}/${group}/${address}`, { address, group }, raw, (hb) => ({
    ...pick(address, hb),
    group,
    runningTasks: hb.runningTasks ?? 0,
    capacity: hb.capacity ?? 0,
  }));
}

function parse<T>(
  key: string,
  node: ParsedNodeKey,
  raw: string | null,
  build: (hb: NodeHeartbeat) => T,
): Parsed<T> {
  try {
    return { node: build(parseHeartbeat(key, node, raw)) };
  } catch (err) {
    if (err instanceof InvalidHeartbeatError) return { problem: err.problem };
    throw err;
  }
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
