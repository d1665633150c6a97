import { NOTIFY_CHANNELS } from '@porpoise/common';
import type { WorkerSelectionStrategy } from './dispatch/worker-selector';

/** Injection tokens of the master's adapters (swappable in tests). */
export const WORKER_GATEWAY = Symbol('WORKER_GATEWAY');
export const MASTER_OPTIONS = Symbol('MASTER_OPTIONS');
export const MASTER_IDENTITY = Symbol('MASTER_IDENTITY');
/** Opens SQL tasks' data sources at dispatch (engine/task-spec.ts DatasourceOpener). */
export const DATASOURCE_OPENER = Symbol('DATASOURCE_OPENER');

export const COMMAND_CHANNEL = NOTIFY_CHANNELS.command;
export const INSTANCE_CONTROL_CHANNEL = NOTIFY_CHANNELS.instanceControl;
export const INSTANCE_END_CHANNEL = NOTIFY_CHANNELS.instanceEnd;
export const BACKFILL_CHANNEL = NOTIFY_CHANNELS.backfill;
export const SCHEDULE_CHANNEL = NOTIFY_CHANNELS.schedule;
export const TASK_GROUP_CHANNEL = NOTIFY_CHANNELS.taskGroup;
export const GATE_CHANNEL = NOTIFY_CHANNELS.gate;

/** Knobs of the master that are not part of the environment contract (DESIGN.md section 3). */
export interface MasterOptions {
  /**
   * How a task's worker is chosen among the live workers of its group. LOWEST_LOAD (default,
   * DESIGN.md section 6) ranks by runningTasks / capacity, then loadAverage; RANDOM and
   * ROUND_ROBIN are the alternatives DS offers.
   */
  readonly workerSelection: WorkerSelectionStrategy;
  /** Commands taken per consume transaction. */
  readonly commandBatchSize: number;
  /** Fallback poll for commands when a NOTIFY was missed (listener reconnecting, slot change). */
  readonly commandPollIntervalMs: number;
  /**
   * The run gate's sweep (README "Run concurrency"): how often the workflows with runs in
   * SERIAL_WAIT get a pass even without a NOTIFY, and the limited workflows are re-read.
   */
  readonly gateSweepIntervalMs: number;
  /** How often due schedules are looked for (at most; sooner when a fire time is nearer). */
  readonly scheduleTickMs: number;
  /**
   * How often every RUNNING backfill is advanced whatever the NOTIFYs said (a lost NOTIFY, a
   * master that died while driving one).
   */
  readonly backfillSweepMs: number;
  /** SCHEDULE_MISFIRE_THRESHOLD_MS: a due fire time older than this (database clock) is a misfire. */
  readonly scheduleMisfireThresholdMs: number;
  /** RUN_ALL catching up: at most this many runs per fire statement (the rest on the next ones). */
  readonly scheduleMaxRunsPerFire: number;
  /** At most this many fire times (run or skipped) recorded per fire statement. */
  readonly scheduleMaxRecordsPerFire: number;
  /** Deadline of Dispatch / Kill / TakeOver calls to workers. */
  readonly workerCallDeadlineMs: number;
  /**
   * A task that no live worker of its group accepted waits for a worker event (ADD / UPDATE of
   * that group); this is the fallback re-try in case such an event never comes.
   */
  readonly parkedRetryMs: number;
  /** Grace for in-flight gRPC calls at shutdown. */
  readonly shutdownGraceMs: number;
  /**
   * Bound of each shutdown step: a step that has not finished by then is logged and left
   * behind, so that one stuck part (a connection that never answers) cannot keep the master
   * from handing its instances over and deregistering.
   */
  readonly shutdownStepTimeoutMs: number;
  /**
   * MAX_FAULT_RERUNS (DESIGN.md section 9): a task whose worker is lost under it more than this
   * many times fails with a message saying so, instead of running again.
   */
  readonly maxFaultReruns: number;
  /** Periodic failover sweep; undefined = 2 × the registry session timeout (jittered ±20 %). */
  readonly failoverSweepIntervalMs?: number;
  /** How long a failover pass waits for /lock/failover; undefined = 2 × session timeout + 5 s. */
  readonly failoverLockTimeoutMs?: number;
  /**
   * Provable death (registry/death-watch.service.ts): how often every registered node's gRPC
   * port is probed (0: off, failover waits for the session timeout); undefined = 200 ms.
   */
  readonly deathProbeIntervalMs?: number;
  /** The gap before the confirming probe of a refused port; undefined = 100 ms. */
  readonly deathConfirmMs?: number;
  /** A probe that neither connects nor is refused by then proves nothing; undefined = 1 s. */
  readonly deathProbeTimeoutMs?: number;
}

export const DEFAULT_MASTER_OPTIONS: MasterOptions = {
  workerSelection: 'LOWEST_LOAD',
  commandBatchSize: 100,
  commandPollIntervalMs: 2000,
  gateSweepIntervalMs: 2000,
  scheduleTickMs: 1000,
  backfillSweepMs: 2000,
  scheduleMisfireThresholdMs: 60_000,
  scheduleMaxRunsPerFire: 100,
  scheduleMaxRecordsPerFire: 1000,
  workerCallDeadlineMs: 5000,
  parkedRetryMs: 5000,
  shutdownGraceMs: 5000,
  shutdownStepTimeoutMs: 5000,
  maxFaultReruns: 3,
};

/** Who this master is: the address workers report to and the registry key it holds. */
export interface MasterIdentity {
  readonly host: string;
  readonly port: number;
  /** "host:port", also the value of workflow_instance.host for the instances it drives. */
  readonly address: string;
}
