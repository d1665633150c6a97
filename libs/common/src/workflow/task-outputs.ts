/**
 * Task outputs (DESIGN.md section 9, **Outputs**): a line of a task's output containing
 * `${setValue(name=value)}` (DS's syntax; DS's `#{setValue(name=value)}` too) sets output `name`.
 *
 * - A line may hold several; each ends at the first `)}` after it, so a value cannot contain
 *   `)}`, nor span lines (DS lets one span lines; here an unclosed one is reported and ignored).
 * - The name (spaces around it are ignored) must be a param name (an identifier); the value is
 *   everything after the first `=`, spaces included, and may be empty.
 * - The last value set for a name wins.
 * - Bounded, since outputs are stored with the task instance and passed to every task
 *   downstream: at most MAX_TASK_OUTPUTS names, a name of at most MAX_TASK_OUTPUT_NAME_LENGTH
 *   characters, a value of at most MAX_TASK_OUTPUT_VALUE_BYTES bytes (UTF-8). What breaks a
 *   bound, or is malformed, is not an output: it is reported in `rejected` (for the task log;
 *   at most MAX_REJECTED_OUTPUT_REPORTS of them), and the task does not fail for it.
 */
import { isParamName } from './param-template';

/** The most distinct output names one task instance may set. */
export const MAX_TASK_OUTPUTS = 100;
/** The longest output value, in UTF-8 bytes (64 KiB). */
export const MAX_TASK_OUTPUT_VALUE_BYTES = 64 * 1024;
/** The longest output name, in characters. */
export const MAX_TASK_OUTPUT_NAME_LENGTH = 255;
/** The most rejected `setValue`s reported (the rest are counted in `rejectedCount`). */
export const MAX_REJECTED_OUTPUT_REPORTS = 100;

const OPENERS = ['${setValue(', '#{setValue('] as const;
const OPENER_LENGTH = OPENERS[0].length;
const CLOSER = ')}';

/** A `setValue` that did not become an output, and why. */
export interface RejectedTaskOutput {
  /** The name as written (may be empty or invalid), shortened to 100 characters. */
  readonly name: string;
  readonly reason: string;
}

export interface TaskOutputs {
  readonly outputs: Record<string, string>;
  readonly rejected: readonly RejectedTaskOutput[];
  /** How many were rejected in all (`rejected` lists the first MAX_REJECTED_OUTPUT_REPORTS). */
  readonly rejectedCount: number;
}

/** Collects outputs from a task's output, line by line, as it is produced. */
export class TaskOutputCollector {
  private readonly values = new Map<string, string>();
  private readonly rejections: RejectedTaskOutput[] = [];
  private rejectedTotal = 0;

  /** Reads one line of output (without its line break). */
  addLine(line: string): void {
    let from = 0;
    for (;;) {
      const start = nextOpener(line, from);
      if (start === -1) return;
      const bodyStart = start + OPENER_LENGTH;
      const end = line.indexOf(CLOSER, bodyStart);
      if (end === -1) {
        this.reject(line.slice(bodyStart).split('=')[0] ?? '', `no ${CLOSER} after it on its line`);
        return;
      }
      this.set(line.slice(bodyStart, end));
      from = end + CLOSER.length;
    }
  }

  /** Reads several lines, or a chunk of text with line breaks in it. */
  addText(text: string): void {
    for (const line of text.split('\n')) this.addLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  }

  result(): TaskOutputs {
    return {
      outputs: Object.fromEntries(this.values),
      rejected: [...this.rejections],
      rejectedCount: this.rejectedTotal,
    };
  }

  private set(body: string): void {
    const equals = body.indexOf('=');
    if (equals === -1) {
      this.reject(body, 'no = between the name and the value');
      return;
    }
    const name = body.slice(0, equals).trim();
    const value = body.slice(equals + 1);
    if (!isParamName(name)) {
      this.reject(name, 'the name is not an identifier (a letter or _, then letters, digits, _)');
    } else if (name.length > MAX_TASK_OUTPUT_NAME_LENGTH) {
      this.reject(name, `the name is longer than ${MAX_TASK_OUTPUT_NAME_LENGTH} characters`);
    } else if (Buffer.byteLength(value, 'utf8') > MAX_TASK_OUTPUT_VALUE_BYTES) {
      this.reject(name, `the value is longer than ${MAX_TASK_OUTPUT_VALUE_BYTES} bytes`);
    } else if (!this.values.has(name) && this.values.size >= MAX_TASK_OUTPUTS) {
      this.reject(name, `a task sets at most ${MAX_TASK_OUTPUTS} outputs`);
    } else {
      this.values.set(name, value);
    }
  }

  private reject(name: string, reason: string): void {
    this.rejectedTotal++;
    if (this.rejections.length < MAX_REJECTED_OUTPUT_REPORTS) {
      this.rejections.push({ name: name.slice(0, 100), reason });
    }
  }
}

function nextOpener(line: string, from: number): number {
  let first = -1;
  for (const opener of OPENERS) {
    const at = line.indexOf(opener, from);
    if (at !== -1 && (first === -1 || at < first)) first = at;
  }
  return first;
}

/** The outputs set in a task's output: lines, or text with line breaks in it. */
export function parseTaskOutputs(output: string | Iterable<string>): TaskOutputs {
  const collector = new TaskOutputCollector();
  if (typeof output === 'string') {
    collector.addText(output);
  } else {
    for (const line of output) collector.addText(line);
  }
  return collector.result();
}
