import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Clock, TimerHandle } from '@porpoise/common';
import { RpcCallError, type TaskSpec, type WorkerAddressee } from '@porpoise/rpc';
import type { RunEvent } from '../engine/domain/run-events';
import type { WorkerGateway } from './worker-gateway';

/**
 * Whether a failed Dispatch provably never reached the worker, so the worker cannot have started
 * the task: only a call the channel failed before sending anything (no connection to the worker:
 * refused, unreachable; or its host name did not resolve, so there was no address to connect
 * to). Anything else (connection dropped, deadline, cancelled, internal, RESOURCE_EXHAUSTED, ...)
 * may have started it and is ambiguous. Without the name case a registry entry naming a host that
 * does not resolve held its tasks forever: each Dispatch was "ambiguous", and so was each TakeOver.
 */
export function dispatchNeverSent(err: Error): boolean {
  return (
    err instanceof RpcCallError &&
    err.code === GrpcStatus.UNAVAILABLE &&
    /: UNAVAILABLE: (No connection established|Name resolution failed for target)\b/.test(err.message)
  );
}

/**
 * The worker checked the spec and refused it (INVALID_ARGUMENT): it never ran and no worker
 * would take it, so this is an answer, not an ambiguous failure.
 */
export function dispatchRejected(err: unknown): boolean {
  return err instanceof RpcCallError && err.code === GrpcStatus.INVALID_ARGUMENT;
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * One run's calls to workers (Dispatch, TakeOver, Kill), each with the call deadline, their
 * outcomes turned into run events. The calls in flight are tracked: a runner handing its instance
 * over waits for them, since a Dispatch landing on a worker after the successor's TakeOver asked
 * that worker about the task would run it beside the successor's re-run.
 */
export class WorkerCalls {
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly gateway: WorkerGateway,
    private readonly deadlineMs: number,
    /** This master's address and the run's epoch: TakeOver makes the worker report to us. */
    private readonly me: string,
    private readonly epoch: number,
    private readonly warn: (message: string) => void,
  ) {}

  /** Answers dispatchAnswered, or dispatchFailed (ambiguous unless it provably never left). */
  dispatch(worker: string, spec: TaskSpec, to: WorkerAddressee): Promise<RunEvent> {
    const rowId = spec.taskInstanceId;
    return this.track(
      this.call(() => this.gateway.dispatch(worker, spec, this.deadlineMs, to)).then(
        (res): RunEvent => ({
          type: 'dispatchAnswered',
          rowId,
          worker,
          accepted: res.accepted,
          reason: res.reason,
          incarnation: res.workerStartTimeMs,
          registration: res.workerRegistration,
        }),
        (err: unknown): RunEvent =>
          dispatchRejected(err)
            ? {
                type: 'dispatchFailed',
                rowId,
                worker,
                ambiguous: false,
                rejected: true,
                reason: messageOf(err),
              }
            : {
                type: 'dispatchFailed',
                rowId,
                worker,
                ambiguous: !(err instanceof Error && dispatchNeverSent(err)),
                reason: messageOf(err),
              },
      ),
    );
  }

  /** Answers takeOverAnswered or takeOverFailed. */
  takeOver(worker: string, rowId: number): Promise<RunEvent> {
    return this.track(
      this.call(() => this.gateway.takeOver(worker, rowId, this.me, this.epoch, this.deadlineMs)).then(
        (answer): RunEvent => ({ type: 'takeOverAnswered', rowId, worker, answer }),
        (err: unknown): RunEvent => ({ type: 'takeOverFailed', rowId, worker, reason: messageOf(err) }),
      ),
    );
  }

  /** Kill calls; a failure is only logged (the task ends by its result or its worker's loss). */
  async kill(targets: ReadonlyArray<{ rowId: number; worker: string }>): Promise<void> {
    await Promise.all(
      targets.map(({ rowId, worker }) =>
        this.call(() => this.gateway.kill(worker, rowId, this.deadlineMs)).catch((err: unknown) =>
          this.warn(`Kill of task ${rowId} on ${worker} failed: ${messageOf(err)}`),
        ),
      ),
    );
  }

  /**
   * Settles once every Dispatch / TakeOver call has been answered (or failed), waiting at most
   * boundMs (a call ends by its deadline anyway).
   */
  async settled(clock: Clock, boundMs: number): Promise<void> {
    if (this.inFlight.size === 0) return;
    let timer: TimerHandle | undefined;
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, boundMs))),
    ]);
    clock.clearTimeout(timer);
  }

  /** A gateway that throws instead of rejecting still yields a rejected promise. */
  private call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return fn();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }
}
