/**
 * The witness file: every chaos task appends a `start` line when it begins and an `end` line
 * when it is about to exit 0, each one `write()` of less than PIPE_BUF bytes to a file opened
 * with O_APPEND, so lines never interleave and the file order is the order in which they
 * happened on this machine:
 *
 *   start <workflow instance> <task> <attempt> <task instance id> <epoch ms> <worker port>
 *   end   <workflow instance> <task> <attempt> <task instance id> <epoch ms> <worker port>
 *   fail  <workflow instance> <task> <attempt> <task instance id> <epoch ms> <worker port>
 *
 * (`fail`: a task made to fail by its run's param writes it instead of `end`, then exits 1.)
 *
 * The worker port comes from CHAOS_WORKER_PORT, which the chaos cluster gives each worker and a
 * task inherits with the rest of the worker's environment (DESIGN.md section 5; Porpoise's own
 * variables such as WORKER_PORT are withheld), so the file also says which worker ran an attempt.
 */
import { readFileSync, existsSync } from 'node:fs';

export interface WitnessLine {
  /** Position in the file (0-based): the global order of events. */
  readonly index: number;
  readonly kind: 'start' | 'end' | 'fail';
  readonly instance: number;
  readonly task: string;
  readonly attempt: number;
  readonly taskInstanceId: number;
  readonly ms: number;
  readonly workerPort: number;
}

export interface Witness {
  readonly lines: WitnessLine[];
  /** Lines that do not parse: a torn write, or something else wrote to the file. */
  readonly malformed: string[];
}

const LINE = /^(start|end|fail) (\d+) (\S+) (\d+) (\d+) (\d+) (\d+)$/;

export function parseWitness(text: string): Witness {
  const lines: WitnessLine[] = [];
  const malformed: string[] = [];
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    const m = LINE.exec(raw.trim());
    const task = m?.[3];
    const kind = m?.[1];
    if (!m || task === undefined || (kind !== 'start' && kind !== 'end' && kind !== 'fail')) {
      malformed.push(raw);
      continue;
    }
    lines.push({
      index: lines.length,
      kind,
      instance: Number(m[2]),
      task,
      attempt: Number(m[4]),
      taskInstanceId: Number(m[5]),
      ms: Number(m[6]),
      workerPort: Number(m[7]),
    });
  }
  return { lines, malformed };
}

export function readWitness(file: string): Witness {
  return parseWitness(existsSync(file) ? readFileSync(file, 'utf8') : '');
}

/**
 * The shell command of a witnessed task: a start line, `sleep` for the given shell expression
 * (seconds), an end line. Killed during the sleep (its worker's restart ends the orphaned group,
 * a worker that lost its session kills it), it leaves a start line without an end line.
 * With `failWhen` (a run param's name), a run whose param is `1` makes it write a fail line
 * instead of the end line and exit 1: a failure of its own, decided by the run.
 */
export function witnessCommand(file: string, sleepSeconds: string, failWhen?: string): string {
  const fields =
    '$PORPOISE_WORKFLOW_INSTANCE_ID $PORPOISE_TASK_NAME $PORPOISE_ATTEMPT $PORPOISE_TASK_INSTANCE_ID';
  const line = (kind: string) => `echo "${kind} ${fields} $(date +%s%3N) $CHAOS_WORKER_PORT" >> ${file}`;
  const fail =
    failWhen === undefined
      ? ''
      : `if [ "$PORPOISE_PARAM_${failWhen}" = 1 ]; then ${line('fail')}; exit 1; fi; `;
  return sleepSeconds === '0'
    ? `${line('start')}; ${fail}${line('end')}`
    : `${line('start')}; sleep ${sleepSeconds}; ${fail}${line('end')}`;
}
