/** The API's answers the console reads (DESIGN.md sections 4, 10, 11; the OpenAPI document). */

export interface Page<T> {
  items: T[];
  total: number;
}

export interface Edge {
  from: string;
  to: string;
}

export interface TaskDefinition {
  name: string;
  type: string;
  command?: string;
  [field: string]: unknown;
}

export interface WorkflowSummary {
  code: string;
  version: number;
  name: string;
  description: string;
  createdAt: string;
  updatedAt: string;
}

export interface Workflow extends WorkflowSummary {
  params: Record<string, string>;
  failureStrategy: string;
  timeoutMs: number;
  priority?: string;
  concurrency: { policy: string; maxRuns?: number };
  tenant?: string;
  tasks: TaskDefinition[];
  edges: Edge[];
}

export interface Instance {
  id: number;
  workflowCode: string;
  workflowVersion: number;
  state: string;
  host: string | null;
  commandType: string;
  params: Record<string, string>;
  scheduleTime: string | null;
  startTime: string | null;
  endTime: string | null;
  createdAt: string;
  message: string | null;
}

export interface TaskInstance {
  id: number;
  name: string;
  state: string;
  host: string | null;
  attempt: number;
  startTime: string | null;
  endTime: string | null;
  exitCode: number | null;
  message: string | null;
  outputs: Record<string, string>;
}

export interface InstanceDetail extends Instance {
  tasks: TaskInstance[];
}

export interface Schedule {
  id: number;
  workflowCode: string;
  cron: string;
  timezone: string;
  params: Record<string, string>;
  enabled: boolean;
  misfirePolicy: string;
  nextFireTime: string | null;
}

export interface Backfill {
  id: number;
  workflowCode: string;
  state: string;
  total: number;
  created: number;
  running: number;
  succeeded: number;
  failed: number;
  workflowInstanceIds: number[];
}

export interface MasterNode {
  address: string;
  host: string;
  port: number;
  startTime: number;
  heartbeatTime: number;
  cpuUsage: number;
  memoryUsage: number;
  loadAverage: number;
  serving: boolean;
}

export interface WorkerNode extends MasterNode {
  group: string;
  runningTasks: number;
  capacity: number;
}

export interface Token {
  id: number;
  name: string;
  scopes: string[];
  createdAt: string;
  revokedAt: string | null;
}

export interface AuditEvent {
  id: number;
  at: string;
  tokenName: string;
  method: string;
  route: string;
  target: string | null;
  status: number;
}

export const WORKFLOW_STATES = [
  'SUBMITTED_SUCCESS',
  'SERIAL_WAIT',
  'RUNNING_EXECUTION',
  'READY_PAUSE',
  'PAUSE',
  'READY_STOP',
  'STOP',
  'FAILURE',
  'SUCCESS',
] as const;

/** States after which an instance changes only by a new command (rerun, resume...). */
export const FINAL_WORKFLOW_STATES = new Set(['SUCCESS', 'FAILURE', 'STOP', 'PAUSE']);
export const FINAL_TASK_STATES = new Set(['SUCCESS', 'FAILURE', 'KILL', 'PAUSE', 'SKIPPED']);
