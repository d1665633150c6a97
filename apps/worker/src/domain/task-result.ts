import type { TaskFinalState } from '@porpoise/rpc';
import { RESULT_RETRY_FIRST_MS, RESULT_RETRY_MAX_MS } from '../worker.constants';

/** How a task's shell ended: exit code, or the signal that ended it. */
export interface ProcessExit {
  code: number | null;
  signal: string | null;
}

/** Set when the worker itself ends a run (Kill, timeout, lost session, stop); the first reason wins. */
export interface StopReason {
  state: Extract<TaskFinalState, 'KILL' | 'FAILURE'>;
  message: string;
  /** Reported instead of the real exit code (a timeout is always -1). */
  exitCode?: number;
}

export interface TaskOutcome {
  state: TaskFinalState;
  exitCode: number;
  message: string;
}

/**
 * The result of one run. A run the worker stopped reports the stop reason whatever the exit code,
 * so a task killed because the session was lost is never reported as SUCCESS even if it exited 0
 * at the same moment. Exit code -1 means "killed by a signal or never started" (worker.proto).
 */
export function decideOutcome(end: ProcessExit | { spawnError: string }, stop?: StopReason): TaskOutcome {
  const exitCode = 'spawnError' in end ? -1 : (end.code ?? -1);
  if (stop) return { state: stop.state, exitCode: stop.exitCode ?? exitCode, message: stop.message };
  if ('spawnError' in end) return { state: 'FAILURE', exitCode: -1, message: end.spawnError };
  if (end.code === 0) return { state: 'SUCCESS', exitCode: 0, message: '' };
  if (end.code !== null) return { state: 'FAILURE', exitCode: end.code, message: '' };
  return { state: 'FAILURE', exitCode: -1, message: `killed by signal ${end.signal ?? 'unknown'}` };
}

/**
 * The reported outcome of a run of any type: a run the worker stopped itself (Kill, timeout,
 * lost session, stop) reports the stop reason whatever the run returned, as decideOutcome does
 * for a process.
 */
export function applyStop(outcome: TaskOutcome, stop?: StopReason): TaskOutcome {
  if (!stop) return { state: outcome.state, exitCode: outcome.exitCode, message: outcome.message };
  return { state: stop.state, exitCode: stop.exitCode ?? outcome.exitCode, message: stop.message };
}

/**
 * Delay before the next try to deliver a result after `failures` failed tries: 200 ms doubling
 * up to 5 s, with ±20 % jitter so that a restarted master is not hit by every worker at once.
 */
export function retryDelayMs(failures: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 16);
  const base = Math.min(RESULT_RETRY_MAX_MS, RESULT_RETRY_FIRST_MS * 2 ** exponent);
  const jittered = base * (0.8 + 0.4 * random());
  return Math.round(Math.min(RESULT_RETRY_MAX_MS, Math.max(RESULT_RETRY_FIRST_MS / 2, jittered)));
}
