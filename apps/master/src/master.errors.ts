/** Small named errors of the master; each message says what went wrong and where. */

/**
 * A conditional write (host = me AND epoch = mine) matched no instance row: another master took
 * the instance over (or it was handed back). The runner must stop at once and write nothing more.
 */
export class OwnershipLostError extends Error {
  constructor(
    readonly workflowInstanceId: number,
    readonly epoch: number,
  ) {
    super(`lost ownership of workflow instance ${workflowInstanceId} (epoch ${epoch})`);
    this.name = 'OwnershipLostError';
  }
}

/** A schedule row whose cron expression or timezone cannot be evaluated. */
export class InvalidScheduleError extends Error {
  constructor(
    readonly scheduleId: number,
    message: string,
  ) {
    super(`schedule ${scheduleId}: ${message}`);
    this.name = 'InvalidScheduleError';
  }
}

export { InvalidHeartbeatError } from '@porpoise/common';
