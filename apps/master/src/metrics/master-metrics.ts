import { Inject, Injectable } from '@nestjs/common';
import { METRICS_REGISTRY } from '@porpoise/common';
import type { FailoverMetrics } from '@porpoise/failover';
import { Histogram, type Registry } from 'prom-client';

/**
 * Buckets of the task stages (seconds): a step takes milliseconds when all is well, and a task
 * may wait minutes for a worker or a retry.
 */
export const STAGE_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];
/** Failover takes about a registry session timeout (seconds to a minute). */
export const FAILOVER_BUCKETS = [0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 120, 300, 600];

/** What a workflow runner reports (the engine's interpreter, never its pure domain). */
export interface RunnerMetrics {
  /** The attempt's row was written (the task became ready) → its Dispatch call left this master. */
  readyToDispatch(seconds: number): void;
  /** Dispatch sent → the worker's answer that the run has begun reached this master. */
  dispatchToStart(seconds: number): void;
  /** The task ended on its worker (the result's end time) → its result is stored. */
  finishToPersist(seconds: number): void;
}

/**
 * The master's histograms (DESIGN.md section 12), in the node's own registry. Recording is an
 * observation in memory: no database round trip on any path.
 */
@Injectable()
export class MasterMetrics implements RunnerMetrics, FailoverMetrics {
  private readonly commandWait: Histogram<'type'>;
  private readonly ready: Histogram;
  private readonly start: Histogram;
  private readonly persist: Histogram;
  private readonly failover: Histogram;

  constructor(@Inject(METRICS_REGISTRY) registry: Registry) {
    const registers = [registry];
    this.commandWait = new Histogram({
      name: 'porpoise_command_wait_seconds',
      help: 'Command written (created_at, database clock) to taken by this master (its consume statement), by command type',
      labelNames: ['type'],
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.ready = new Histogram({
      name: 'porpoise_task_ready_to_dispatch_seconds',
      help: "A task attempt's row written (the task became ready) to its Dispatch call sent to a worker; includes time waiting for a live worker",
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.start = new Histogram({
      name: 'porpoise_task_dispatch_to_start_seconds',
      help: "Dispatch call sent to the worker's answer that the run has begun (this master's clock at both ends)",
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.persist = new Histogram({
      name: 'porpoise_task_finish_to_persist_seconds',
      help: "A task's end on its worker (the result's end time, worker clock) to its result stored by this master",
      buckets: STAGE_BUCKETS,
      registers,
    });
    this.failover = new Histogram({
      name: 'porpoise_failover_duration_seconds',
      help: "A dead master's last heartbeat (or its registry REMOVE when unknown) to the recovery commands of all its instances written by this master",
      buckets: FAILOVER_BUCKETS,
      registers,
    });
  }

  commandTaken(type: string, seconds: number): void {
    this.commandWait.observe({ type }, nonNegative(seconds));
  }

  readyToDispatch(seconds: number): void {
    this.ready.observe(nonNegative(seconds));
  }

  dispatchToStart(seconds: number): void {
    this.start.observe(nonNegative(seconds));
  }

  finishToPersist(seconds: number): void {
    this.persist.observe(nonNegative(seconds));
  }

  failoverCompleted(_deadMaster: string, seconds: number): void {
    this.failover.observe(nonNegative(seconds));
  }
}

/** Clocks of two hosts may disagree a little: a negative duration counts as 0. */
function nonNegative(seconds: number): number {
  return Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
}
