/**
 * The invariants of DESIGN.md section 7, checked after a chaos run from what the database and
 * the witness file say happened. Pure: the tests gather the inputs (rows, audit trails written by
 * triggers the test installs, witness lines, the list of faults it caused) and assert that the
 * answer is empty; invariants.spec.ts feeds it fabricated bad histories to prove each check bites.
 *
 * Every violation names the invariant it breaks ('1'..'8', '3/4' for a run that failed although
 * none of its tasks failed by itself) and says what happened, with ids, so that the instance can
 * be looked up in the node logs.
 */
import type { Witness, WitnessLine } from './witness';

export const FINAL_WORKFLOW_STATES: readonly string[] = ['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'];
const FINAL_TASK_STATES: readonly string[] = ['SUCCESS', 'FAILURE', 'KILL', 'PAUSE', 'NEED_FAULT_TOLERANCE'];

/** A fault is only matched to an attempt within this much of the attempt's window (clock jitter, spawn races). */
export const FAULT_SLACK_MS = 2_000;

export interface Run {
  readonly commandId: number;
  readonly instanceId: number;
}
export interface InstanceRow {
  readonly id: number;
  readonly state: string;
  readonly host: string | null;
  readonly epoch: number;
}
export interface TaskRow {
  readonly id: number;
  readonly instanceId: number;
  readonly name: string;
  readonly state: string;
  readonly host: string | null;
  readonly attempt: number;
  readonly exitCode: number | null;
}
export interface CommandRow {
  readonly id: number;
  readonly instanceId: number;
  readonly type: string;
}
/** One INSERT or DELETE of a command row, in the order they happened (audit trigger). */
export interface CommandAuditRow {
  readonly seq: number;
  readonly op: 'INSERT' | 'DELETE';
  readonly commandId: number;
  readonly instanceId: number;
  readonly type: string;
}
/** A workflow_instance row after each insert or update (audit trigger). */
export interface InstanceAuditRow {
  readonly seq: number;
  readonly instanceId: number;
  readonly host: string | null;
  readonly epoch: number;
  readonly state: string;
}
/** A task_instance row after each insert or update (audit trigger); at = ms since the epoch. */
export interface TaskAuditRow {
  readonly seq: number;
  readonly taskId: number;
  readonly instanceId: number;
  readonly name: string;
  readonly attempt: number;
  readonly state: string;
  readonly host: string | null;
  readonly at: number;
}
/** Something the test did to a node, or a node reported (its registry session was lost). */
export interface Fault {
  readonly at: number;
  /** host:port, as in workflow_instance.host and task_instance.host. */
  readonly address: string;
  readonly role: 'master' | 'worker';
  readonly kind: 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'session-lost' | 'stalled';
}
export interface UnexpectedExit {
  readonly node: string;
  readonly code: number | null;
  readonly signal: string | null;
}

export interface CheckInput {
  /** What the API (or the SQL trigger) answered for each run. */
  readonly runs: readonly Run[];
  readonly dag: {
    readonly tasks: readonly string[];
    readonly edges: ReadonlyArray<{ from: string; to: string }>;
  };
  /** Every instance of the workflow(s) the runs belong to. */
  readonly instances: readonly InstanceRow[];
  /** Every task row of those instances. */
  readonly tasks: readonly TaskRow[];
  /** The command table at the end. */
  readonly commandsLeft: readonly CommandRow[];
  readonly commandAudit: readonly CommandAuditRow[];
  readonly instanceAudit: readonly InstanceAuditRow[];
  readonly taskAudit: readonly TaskAuditRow[];
  /** The witness file of these runs (and of nothing else). */
  readonly witness: Witness;
  readonly faults: readonly Fault[];
  readonly unexpectedExits: readonly UnexpectedExit[];
  /** Which invariant an unfinished instance breaks: 7, or 5 after every master was killed. */
  readonly stuckInvariant?: '5' | '7';
}

export interface Violation {
  readonly invariant: string;
  readonly message: string;
}

const key = (instance: number, task: string) => `${instance}/${task}`;
const portOf = (address: string | null) =>
  address ? Number(address.slice(address.lastIndexOf(':') + 1)) : NaN;

/** Each element with the one after it, in order. */
function consecutivePairs<T>(items: readonly T[]): Array<[T, T]> {
  const pairs: Array<[T, T]> = [];
  let previous: { item: T } | undefined;
  for (const item of items) {
    if (previous) pairs.push([previous.item, item]);
    previous = { item };
  }
  return pairs;
}

function groupBy<T, K>(items: readonly T[], by: (t: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const item of items) {
    const k = by(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

export function checkInvariants(input: CheckInput): Violation[] {
  const violations: Violation[] = [];
  const add = (invariant: string, message: string) => violations.push({ invariant, message });
  const runInstances = new Set(input.runs.map((r) => r.instanceId));
  const ours = <T extends { instanceId: number }>(rows: readonly T[]) =>
    rows.filter((r) => runInstances.has(r.instanceId));

  checkCommandsAndInstances(input, runInstances, ours, add);
  checkOwnershipHistory(ours(input.instanceAudit), add);
  checkTaskHistory(ours(input.taskAudit), add);
  checkAttempts(input, runInstances, add);
  checkOrder(input, runInstances, add);

  const stuck = input.stuckInvariant ?? '7';
  for (const instance of input.instances) {
    if (!runInstances.has(instance.id)) continue;
    if (!FINAL_WORKFLOW_STATES.includes(instance.state)) {
      add(stuck, `instance ${instance.id} is stuck in ${instance.state} (host ${instance.host ?? 'none'})`);
    } else if (instance.state !== 'SUCCESS') {
      add('3/4', `instance ${instance.id} ended ${instance.state} although none of its tasks can fail`);
    }
  }
  for (const exit of input.unexpectedExits) {
    add('8', `${exit.node} exited on its own (code ${exit.code}, signal ${exit.signal})`);
  }
  for (const line of input.witness.malformed) {
    add('witness', `unreadable witness line ${JSON.stringify(line)}`);
  }
  return violations;
}

/** 1: one instance per run, every command consumed once, each consumption one take of the instance. */
function checkCommandsAndInstances(
  input: CheckInput,
  runInstances: ReadonlySet<number>,
  ours: <T extends { instanceId: number }>(rows: readonly T[]) => T[],
  add: (invariant: string, message: string) => void,
): void {
  const seenCommands = new Set<number>();
  const seenInstances = new Set<number>();
  for (const run of input.runs) {
    if (seenCommands.has(run.commandId)) add('1', `command ${run.commandId} was answered for two runs`);
    if (seenInstances.has(run.instanceId)) add('1', `instance ${run.instanceId} was answered for two runs`);
    seenCommands.add(run.commandId);
    seenInstances.add(run.instanceId);
  }
  const instanceIds = new Set(input.instances.map((i) => i.id));
  for (const run of input.runs) {
    if (!instanceIds.has(run.instanceId)) {
      add('1', `run of command ${run.commandId} has no instance ${run.instanceId}`);
    }
  }
  for (const instance of input.instances) {
    if (!runInstances.has(instance.id)) add('1', `instance ${instance.id} belongs to no run`);
  }
  for (const c of ours(input.commandsLeft)) {
    add('1', `command ${c.id} (${c.type}) of instance ${c.instanceId} was never consumed`);
  }

  const audit = ours(input.commandAudit);
  const byCommand = groupBy(audit, (a) => a.commandId);
  for (const [id, rows] of byCommand) {
    const inserts = rows.filter((r) => r.op === 'INSERT').length;
    const deletes = rows.filter((r) => r.op === 'DELETE').length;
    if (inserts !== 1 || deletes > 1) {
      add('1', `command ${id} was inserted ${inserts} time(s) and consumed ${deletes} time(s)`);
    }
  }
  if (audit.length > 0) {
    for (const run of input.runs) {
      const inserted = byCommand.get(run.commandId)?.find((r) => r.op === 'INSERT');
      if (!inserted) {
        add('1', `the command ${run.commandId} of instance ${run.instanceId} was never inserted`);
      } else if (inserted.instanceId !== run.instanceId) {
        add('1', `command ${run.commandId} names instance ${inserted.instanceId}, not ${run.instanceId}`);
      }
    }
  }

  // Each consumed command takes its instance once (host NULL -> a master, epoch + 1); a take without
  // a command, or a command that took nothing, means a command was applied twice or not at all.
  const commandsPerInstance = groupBy(
    audit.filter((a) => a.op === 'INSERT'),
    (a) => a.instanceId,
  );
  for (const [instanceId, rows] of groupBy(ours(input.instanceAudit), (a) => a.instanceId)) {
    rows.sort((a, b) => a.seq - b.seq);
    let takes = 0;
    let previous: string | null = null;
    for (const row of rows) {
      if (previous === null && row.host !== null) takes++;
      previous = row.host;
    }
    const commands = commandsPerInstance.get(instanceId)?.length ?? 0;
    if (audit.length > 0 && takes !== commands) {
      add('1', `instance ${instanceId} was taken ${takes} time(s) by a master for ${commands} command(s)`);
    }
  }
}

/** 2: ownership only moves forward (epoch), never between two masters without a new epoch, never after the end. */
function checkOwnershipHistory(
  audit: readonly InstanceAuditRow[],
  add: (invariant: string, message: string) => void,
): void {
  for (const [instanceId, rows] of groupBy(audit, (a) => a.instanceId)) {
    rows.sort((a, b) => a.seq - b.seq);
    let finalRow: InstanceAuditRow | undefined;
    for (const [prev, row] of consecutivePairs(rows)) {
      if (row.epoch < prev.epoch) {
        add('2', `instance ${instanceId}: epoch went back from ${prev.epoch} to ${row.epoch} (${row.host})`);
      }
      if (prev.host !== null && row.host !== null && prev.host !== row.host && row.epoch <= prev.epoch) {
        add(
          '2',
          `instance ${instanceId}: ${row.host} wrote over ${prev.host} at the same epoch ${row.epoch}`,
        );
      }
      if (FINAL_WORKFLOW_STATES.includes(prev.state)) finalRow ??= prev;
      if (
        finalRow &&
        (row.state !== finalRow.state || row.host !== finalRow.host || row.epoch !== finalRow.epoch)
      ) {
        add(
          '2',
          `instance ${instanceId} changed after it ended ${finalRow.state}: now ${row.state} by ${row.host} epoch ${row.epoch}`,
        );
      }
    }
  }
}

/** 2: a task row that reached SUCCESS is never written over (a stale master or a late duplicate would). */
function checkTaskHistory(
  audit: readonly TaskAuditRow[],
  add: (invariant: string, message: string) => void,
): void {
  for (const [taskId, rows] of groupBy(audit, (a) => a.taskId)) {
    rows.sort((a, b) => a.seq - b.seq);
    const successIndex = rows.findIndex((r) => r.state === 'SUCCESS');
    const success = rows[successIndex];
    if (!success) continue;
    for (const row of rows.slice(successIndex + 1)) {
      if (row.state !== 'SUCCESS' || row.host !== success.host) {
        add(
          '2',
          `task row ${taskId} (instance ${row.instanceId} ${row.name} attempt ${row.attempt}) changed after SUCCESS to ${row.state} on ${row.host}`,
        );
      }
    }
  }
}

interface Attempt {
  readonly attempt: number;
  readonly row: TaskRow | undefined;
  readonly starts: WitnessLine[];
  readonly ends: WitnessLine[];
  /** The first start line: undefined if this attempt never started. */
  readonly start: WitnessLine | undefined;
  /** The first end line: undefined if it never reached its end. */
  readonly end: WitnessLine | undefined;
}

const hasRow = (a: Attempt): a is Attempt & { readonly row: TaskRow } => a.row !== undefined;

/**
 * 2, 3, 4 from the attempts of each task: no attempt started twice; a new attempt only when the
 * previous one never started, failed, or its worker was killed or lost its session; attempts
 * overlap only in that last case; every task ends with one SUCCESS attempt that really ran (start
 * and end lines, on the worker the database names); nothing is left running or waiting.
 */
function checkAttempts(
  input: CheckInput,
  runInstances: ReadonlySet<number>,
  add: (invariant: string, message: string) => void,
): void {
  const rowsById = new Map(input.tasks.map((t) => [t.id, t]));
  const workerFaulted = (address: string | null, fromMs: number, toMs: number) =>
    address !== null &&
    input.faults.some(
      (f) => f.address === address && f.at >= fromMs - FAULT_SLACK_MS && f.at <= toMs + FAULT_SLACK_MS,
    );

  for (const line of input.witness.lines) {
    if (!runInstances.has(line.instance)) {
      add(
        '1',
        `a task ran for instance ${line.instance}, which belongs to no run (${line.kind} ${line.task})`,
      );
      continue;
    }
    const row = rowsById.get(line.taskInstanceId);
    if (!row || row.instanceId !== line.instance || row.name !== line.task || row.attempt !== line.attempt) {
      add(
        '2',
        `witness ${line.kind} of instance ${line.instance} ${line.task} attempt ${line.attempt} names task row ${line.taskInstanceId}, ` +
          (row
            ? `which is instance ${row.instanceId} ${row.name} attempt ${row.attempt}`
            : 'which does not exist'),
      );
    }
  }

  const rowsByTask = groupBy(
    input.tasks.filter((t) => runInstances.has(t.instanceId)),
    (t) => key(t.instanceId, t.name),
  );
  const linesByTask = groupBy(
    input.witness.lines.filter((l) => runInstances.has(l.instance)),
    (l) => key(l.instance, l.task),
  );
  const dagTasks = new Set(input.dag.tasks);

  for (const instance of input.instances) {
    if (!runInstances.has(instance.id)) continue;
    const finished = FINAL_WORKFLOW_STATES.includes(instance.state);
    for (const [k, rows] of groupBy(
      input.tasks.filter((t) => t.instanceId === instance.id),
      (t) => t.name,
    )) {
      if (!dagTasks.has(k)) {
        add('4', `instance ${instance.id} has ${rows.length} row(s) of unknown task ${k}`);
      }
    }

    for (const name of input.dag.tasks) {
      const rows = rowsByTask.get(key(instance.id, name)) ?? [];
      const lines = linesByTask.get(key(instance.id, name)) ?? [];
      const numbers = [...new Set([...rows.map((r) => r.attempt), ...lines.map((l) => l.attempt)])].sort(
        (a, b) => a - b,
      );
      const attempts: Attempt[] = numbers.map((n) => {
        const starts = lines.filter((l) => l.attempt === n && l.kind === 'start');
        const ends = lines.filter((l) => l.attempt === n && l.kind === 'end');
        return {
          attempt: n,
          row: rows.find((r) => r.attempt === n),
          starts,
          ends,
          start: starts[0],
          end: ends[0],
        };
      });
      const what = `instance ${instance.id} task ${name}`;

      for (const a of attempts) {
        if (a.starts.length > 1) {
          add(
            '2',
            `${what} attempt ${a.attempt} started ${a.starts.length} times (workers ${a.starts.map((s) => s.workerPort).join(', ')})`,
          );
        }
        if (!a.row) add('2', `${what} attempt ${a.attempt} ran but has no task row`);
        if (a.row && a.start && portOf(a.row.host) !== a.start.workerPort) {
          add(
            '2',
            `${what} attempt ${a.attempt} ran on worker port ${a.start.workerPort} but its row names ${a.row.host}`,
          );
        }
      }

      for (const [cur, next] of consecutivePairs(attempts)) {
        const curStart = cur.start;
        if (!curStart) continue; // never started: running it again repeats nothing
        const failedByItself = cur.row?.state === 'FAILURE' || (cur.row?.exitCode ?? 0) !== 0;
        const host = cur.row?.host ?? `127.0.0.1:${curStart.workerPort}`;
        if (next.start && curStart.index > next.start.index) {
          // A superseded attempt must never start, whatever happened to its worker (a stalled
          // worker that wakes up must not run what was queued for it meanwhile).
          add(
            '2',
            `${what} attempt ${cur.attempt} started on ${host} ${curStart.ms - next.start.ms} ms after attempt ${next.attempt} had started: a superseded dispatch ran late`,
          );
          continue;
        }
        const until = next.start?.ms ?? Number.POSITIVE_INFINITY;
        const faulted = workerFaulted(host, curStart.ms, until);
        if (failedByItself || faulted) continue;
        add(
          '3',
          `${what} ran again as attempt ${next.attempt} although attempt ${cur.attempt} had started on ${host}, which was never killed (attempt ${cur.attempt} is ${cur.row?.state ?? 'unknown'})`,
        );
        const curEnd = cur.end?.index ?? Number.POSITIVE_INFINITY;
        if (next.start && curEnd > next.start.index) {
          add(
            '2',
            `${what}: attempts ${cur.attempt} (${host}) and ${next.attempt} ran at the same time although ${host} was never killed`,
          );
        }
      }

      if (!finished) continue; // the stuck check reports it; its tasks may legitimately be open
      for (const a of attempts) {
        // Started, never ended, not a success: something ended it; only a fault of its worker may.
        if (!a.start || a.end || a.row?.state === 'SUCCESS') continue;
        const host = a.row?.host ?? `127.0.0.1:${a.start.workerPort}`;
        if (!workerFaulted(host, a.start.ms, Number.POSITIVE_INFINITY) && a.row?.state !== 'FAILURE') {
          add(
            '3',
            `${what} attempt ${a.attempt} was interrupted (${a.row?.state ?? 'no row'}) on ${host}, which was never killed`,
          );
        }
      }

      const withRow = attempts.filter(hasRow);
      const successes = withRow.filter((a) => a.row.state === 'SUCCESS');
      const open = withRow.filter((a) => !FINAL_TASK_STATES.includes(a.row.state));
      for (const a of open) {
        add('4', `${what} attempt ${a.attempt} is still ${a.row.state} on ${a.row.host} after the run ended`);
      }
      const last = attempts.at(-1);
      if (last?.row?.state === 'NEED_FAULT_TOLERANCE') {
        add(
          '4',
          `${what}: attempt ${last.attempt} on ${last.row.host} needed fault tolerance and never ran again`,
        );
      }
      if (instance.state !== 'SUCCESS') continue;
      if (successes.length !== 1) {
        add(
          '4',
          `${what} has ${successes.length} successful attempts (${attempts.map((a) => a.row?.state).join(', ')})`,
        );
      }
      for (const s of successes) {
        if (!s.start || !s.end) {
          add(
            '4',
            `${what} attempt ${s.attempt} is SUCCESS but the task ${s.start ? 'never reached its end' : 'never started'}`,
          );
        } else if (portOf(s.row.host) !== s.end.workerPort) {
          add('4', `${what} attempt ${s.attempt} ended on port ${s.end.workerPort}, not on ${s.row.host}`);
        }
      }
    }
  }
}

/** 6: every start of a task comes after the end of the successful attempt of each upstream task. */
function checkOrder(
  input: CheckInput,
  runInstances: ReadonlySet<number>,
  add: (invariant: string, message: string) => void,
): void {
  const upstream = groupBy(input.dag.edges, (e) => e.to);
  const success = new Map<string, TaskRow>();
  for (const t of input.tasks) if (t.state === 'SUCCESS') success.set(key(t.instanceId, t.name), t);
  const endIndex = new Map<string, number>();
  for (const l of input.witness.lines) {
    if (l.kind === 'end') endIndex.set(`${key(l.instance, l.task)}/${l.attempt}`, l.index);
  }

  for (const line of input.witness.lines) {
    if (line.kind !== 'start' || !runInstances.has(line.instance)) continue;
    for (const edge of upstream.get(line.task) ?? []) {
      const up = success.get(key(line.instance, edge.from));
      const what = `instance ${line.instance}: ${line.task} attempt ${line.attempt} started`;
      if (!up) {
        add('6', `${what} although upstream ${edge.from} never succeeded`);
        continue;
      }
      const ended = endIndex.get(`${key(line.instance, edge.from)}/${up.attempt}`);
      if (ended === undefined || ended > line.index) {
        add('6', `${what} before upstream ${edge.from} (attempt ${up.attempt}) ended`);
      }
    }
  }
}

/** What happened, in numbers: proof that the chaos reached the runs (takeovers, re-runs). */
export function summarize(input: CheckInput): string {
  const takes = new Map<number, number>();
  const last = new Map<number, string | null>();
  for (const row of [...input.instanceAudit].sort((a, b) => a.seq - b.seq)) {
    if ((last.get(row.instanceId) ?? null) === null && row.host !== null) {
      takes.set(row.instanceId, (takes.get(row.instanceId) ?? 0) + 1);
    }
    last.set(row.instanceId, row.host);
  }
  const takenOver = [...takes.values()].filter((n) => n > 1).length;
  const reruns = input.tasks.filter((t) => t.attempt > 1).length;
  const faultTolerated = input.tasks.filter((t) => t.state === 'NEED_FAULT_TOLERANCE').length;
  const count = (kind: Fault['kind']) => input.faults.filter((f) => f.kind === kind).length;
  return (
    `${input.runs.length} runs, ${input.witness.lines.length} witness lines; faults so far: ` +
    `${count('SIGKILL')} SIGKILL, ${count('SIGTERM')} SIGTERM, ${count('SIGSTOP')} SIGSTOP, ` +
    `${count('session-lost')} lost sessions, ${count('stalled')} stalls; ${takenOver} instances taken over, ${reruns} task attempts > 1 ` +
    `(${faultTolerated} NEED_FAULT_TOLERANCE)`
  );
}

/** A readable report: violations grouped by invariant, a bounded number of examples each. */
export function formatViolations(violations: readonly Violation[], perInvariant = 12): string {
  if (violations.length === 0) return 'every invariant holds';
  const out: string[] = [`${violations.length} violation(s):`];
  for (const [invariant, list] of groupBy(violations, (v) => v.invariant)) {
    out.push(`  invariant ${invariant}: ${list.length}`);
    for (const v of list.slice(0, perInvariant)) out.push(`    - ${v.message}`);
    if (list.length > perInvariant) out.push(`    ... and ${list.length - perInvariant} more`);
  }
  return out.join('\n');
}
