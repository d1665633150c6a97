import { isParamName } from '@porpoise/common';
import { TASK_OUTPUT_LIMITS } from '@porpoise/rpc';

/** An output a run set that is not sent, and why (written to the task log). */
export interface LeftOutOutput {
  /** As set, shortened to 100 characters. */
  readonly name: string;
  readonly reason: string;
}

export interface LimitedOutputs {
  readonly outputs: Record<string, string>;
  readonly leftOut: readonly LeftOutOutput[];
}

/**
 * The outputs a result carries (TaskFinishedEvent.outputs), within TASK_OUTPUT_LIMITS: each name
 * an identifier (downstream tasks see it as `${name}` and PORPOISE_PARAM_NAME), each value free of
 * NUL (an environment cannot carry it), and all of them, in the order set, within the count and
 * size bounds. What breaks a bound is left out, not failed: the task did its work.
 */
export function limitOutputs(
  outputs: Readonly<Record<string, string>>,
  limits: typeof TASK_OUTPUT_LIMITS = TASK_OUTPUT_LIMITS,
): LimitedOutputs {
  const kept: [string, string][] = [];
  const leftOut: LeftOutOutput[] = [];
  let total = 0;
  for (const [name, value] of Object.entries(outputs)) {
    const bytes = Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value, 'utf8');
    let reason: string | undefined;
    if (!isParamName(name)) {
      reason = 'the name is not an identifier (a letter or _, then letters, digits, _)';
    } else if (name.length > limits.nameLength) {
      reason = `the name is longer than ${limits.nameLength} characters`;
    } else if (Buffer.byteLength(value, 'utf8') > limits.valueBytes) {
      reason = `the value is longer than ${limits.valueBytes} bytes`;
    } else if (value.includes('\u0000')) {
      reason = 'the value contains a NUL character';
    } else if (kept.length >= limits.count) {
      reason = `a task sets at most ${limits.count} outputs`;
    } else if (total + bytes > limits.totalBytes) {
      reason = `the outputs of a task are at most ${limits.totalBytes} bytes together`;
    }
    if (reason === undefined) {
      kept.push([name, value]);
      total += bytes;
    } else {
      leftOut.push({ name: name.slice(0, 100), reason });
    }
  }
  // fromEntries defines each key: an output named __proto__ stays an output.
  return { outputs: Object.fromEntries(kept), leftOut };
}
