/**
 * The invariants of DESIGN.md section 7, checked after a chaos run from what the database and
 * the witness file say happened. Pure: the tests gather the inputs (rows, audit trails written by
 * triggers the test installs, witness lines, the list of faults it caused) and assert that the
 * answer is empty; invariants.spec.ts feeds it fabricated bad histories to prove each check bites.
 *
 * Besides the worker-side SHELL tasks, the DAG may hold master-side tasks (DESIGN.md section 9):
 * CONDITIONS (the branch not taken ends SKIPPED, with every task only reachable through it) and
 * SUB_WORKFLOW (one child instance per task attempt, whose own tasks obey the same invariants).
 * Which tasks fail on purpose, hence which branch a CONDITIONS task takes, follows from the run's
 * params (DagSpec.failWhen).
 *
 * Every violation names the invariant it breaks ('1'..'8', '3/4' for a run that failed although
 * none of its tasks failed by itself, '9' for the semantics of the workflow language of DESIGN.md
 * section 9: a branch, a SKIPPED task, a SUB_WORKFLOW task and its child) and says what happened,
 * with ids, so that the instance can be looked up in the node logs.
 */
import type { Witness, WitnessLine } from './witness';

export const FINAL_WORKFLOW_STATES: readonly string[] = ['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'];
const FINAL_TASK_STATES: readonly string[] = [
  'SUCCESS',
  'FAILURE',
  'KILL',
  'PAUSE',
  'NEED_FAULT_TOLERANCE',
  'SKIPPED',
];

/** A fault is only matched to an attempt within this much of the attempt's window (clock jitter, spawn races). */
export const FAULT_SLACK_MS = 2_000;

export interface Run {
  readonly commandId: number;
  readonly instanceId: number;
  /** The params the run was triggered with: they decide which tasks fail on purpose (DagSpec.failWhen). */
  readonly params?: Readonly<Record<string, string>>;
}
export interface InstanceRow {
  readonly id: number;
  readonly state: string;
  readonly host: string | null;
  readonly epoch: number;
  /** Of a SUB_WORKFLOW child: its parent instance and the parent's task attempt (task_instance.id). */
  readonly parentInstanceId?: number | null;
  readonly parentTaskInstanceId?: number | null;
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
/** A workflow_instance row after each insert or update (audit trigger); at = ms since the epoch. */
export interface InstanceAuditRow {
  readonly seq: number;
  readonly instanceId: number;
  readonly host: string | null;
  readonly epoch: number;
  readonly state: string;
  readonly at?: number;
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
  /**
   * The epoch of the master whose fenced statement wrote this version of the row
   * (task_instance.writer_epoch; null: written outside a master's fence), and the instance's epoch
   * when the write happened (read by the audit trigger). A writer older than the owner is a stale
   * master's write that the fence let through.
   */
  readonly writerEpoch?: number | null;
  readonly ownerEpoch?: number | null;
}
/** Something the test did to a node, or a node reported (its registry session was lost). */
export interface Fault {
  readonly at: number;
  /** host:port, as in workflow_instance.host and task_instance.host. */
  readonly address: string;
  readonly role: 'master' | 'worker';
  readonly kind: 'SIGKILL' | 'SIGTERM' | 'SIGSTOP' | 'session-lost' | 'stalled';
  /** The process it hit (a node restarted on the same address is another process). */
  readonly pid?: number;
  /** SIGSTOP: when the process was woken (SIGCONT). */
  readonly until?: number;
}
/** One incarnation of a node: the process that served an address from startedAt on. */
export interface NodeProcess {
  readonly address: string;
  readonly role: 'master' | 'worker';
  readonly pid: number;
  readonly startedAt: number;
}
/**
 * A master's own line saying it stood down from instances another master had taken: a fenced
 * write that found the instance at a newer epoch (instanceId, epoch), or, after it woke up with
 * its session lost, that the instances it dropped were already taken over (no ids).
 */
export interface FenceEvent {
  readonly at: number;
  readonly address: string;
  readonly pid?: number;
  readonly instanceId?: number;
  /** The stale epoch the master still held. */
  readonly epoch?: number;
}
export interface UnexpectedExit {
  readonly node: string;
  readonly code: number | null;
  readonly signal: string | null;
}

/**
 * A workflow as the checker sees it. Every task is a witnessed SHELL task (start and end lines)
 * unless it is named in `conditions` or `subWorkflows`: those run on the master and write no line.
 */
export interface DagSpec {
  readonly tasks: readonly string[];
  readonly edges: ReadonlyArray<{ readonly from: string; readonly to: string }>;
  /** CONDITIONS tasks: their success and failure targets (direct downstream tasks). */
  readonly conditions?: Readonly<
    Record<string, { readonly success: readonly string[]; readonly failure: readonly string[] }>
  >;
  /** SUB_WORKFLOW tasks: the DAG of their child workflow. */
  readonly subWorkflows?: Readonly<Record<string, DagSpec>>;
  /**
   * SHELL tasks that fail on purpose (a `fail` line, exit 1) in a run whose param of this name is
   * '1'. A child instance's tasks never do (the checker does not know a child's params).
   */
  readonly failWhen?: Readonly<Record<string, string>>;
}

export interface CheckInput {
  /** What the API (or the SQL trigger) answered for each run. */
  readonly runs: readonly Run[];
  readonly dag: DagSpec;
  /**
   * Every instance of the workflow(s) the runs belong to, and of their SUB_WORKFLOW children
   * (and of the child workflows: a child whose parent is not one of the runs belongs to no run).
   */
  readonly instances: readonly InstanceRow[];
  /** Every task row of those instances (children included). */
  readonly tasks: readonly TaskRow[];
  /** The command table at the end. */
  readonly commandsLeft: readonly CommandRow[];
  readonly commandAudit: readonly CommandAuditRow[];
  readonly instanceAudit: readonly InstanceAuditRow[];
  readonly taskAudit: readonly TaskAuditRow[];
  /** The witness file of these runs (and of nothing else). */
  readonly witness: Witness;
  readonly faults: readonly Fault[];
  /**
   * Every process of every node: a fault excuses a re-run only if it hit the process that ran the
   * attempt (looked up by the attempt's worker address and start time). Without it (a history
   * with no process ids) each address counts as one process.
   */
  readonly processes?: readonly NodeProcess[];
  /** Fenced writes the masters reported (proof that a stale master was stopped by its fence). */
  readonly fenced?: readonly FenceEvent[];
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

// ------------------------------------------------------------------ what a run should do

/** How a task of a run should end, from its DAG and which of its tasks fail on purpose. */
export type TaskOutcome = 'SUCCESS' | 'FAILURE' | 'SKIPPED' | 'NOT_RUN';

export interface Expectation {
  readonly tasks: ReadonlyMap<string, TaskOutcome>;
  /** Of each CONDITIONS task: the targets it does not take. */
  readonly notTaken: ReadonlyMap<string, ReadonlySet<string>>;
  readonly state: 'SUCCESS' | 'FAILURE';
  /** The tasks that fail on purpose in this run. */
  readonly failing: ReadonlySet<string>;
}

/** The tasks a run makes fail: those of dag.failWhen whose param the run sets to '1'. */
export function failingTasks(
  dag: DagSpec,
  params: Readonly<Record<string, string>> | undefined,
): Set<string> {
  return new Set(
    Object.entries(dag.failWhen ?? {})
      .filter(([, param]) => params?.[param] === '1')
      .map(([task]) => task),
  );
}

const isMasterSide = (dag: DagSpec, task: string) =>
  dag.conditions?.[task] !== undefined || dag.subWorkflows?.[task] !== undefined;

function upstreamOf(dag: DagSpec, task: string): string[] {
  return dag.edges.filter((e) => e.to === task).map((e) => e.from);
}

/** The tasks with every upstream task before them (Kahn); what a cycle leaves out comes last. */
function topologicalOrder(dag: DagSpec): string[] {
  const indegree = new Map(dag.tasks.map((t) => [t, 0]));
  for (const e of dag.edges) indegree.set(e.to, (indegree.get(e.to) ?? 0) + 1);
  const queue = dag.tasks.filter((t) => indegree.get(t) === 0);
  const order: string[] = [];
  for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
    order.push(t);
    for (const e of dag.edges) {
      if (e.from !== t) continue;
      const left = (indegree.get(e.to) ?? 0) - 1;
      indegree.set(e.to, left);
      if (left === 0) queue.push(e.to);
    }
  }
  return [...order, ...dag.tasks.filter((t) => !order.includes(t))];
}

/**
 * What DESIGN.md section 9 says a run does (failure strategy END): a task whose upstream tasks
 * are all SKIPPED (or not taken by the CONDITIONS task above it) is SKIPPED; a CONDITIONS task
 * waits for its upstream tasks however they end and takes its success targets if all succeeded
 * (or were skipped), else its failure targets; any other task runs once every upstream task
 * succeeded or was skipped (never after a failure), and fails if the run makes it fail. The run
 * ends FAILURE only for a failure that no CONDITIONS task right below it handles.
 */
export function expectedOutcome(dag: DagSpec, failing: ReadonlySet<string>): Expectation {
  const tasks = new Map<string, TaskOutcome>();
  const notTaken = new Map<string, Set<string>>();
  for (const t of topologicalOrder(dag)) {
    const incoming = upstreamOf(dag, t).map((u): TaskOutcome =>
      notTaken.get(u)?.has(t) ? 'SKIPPED' : (tasks.get(u) ?? 'NOT_RUN'),
    );
    const conditions = dag.conditions?.[t];
    let outcome: TaskOutcome;
    if (incoming.length > 0 && incoming.every((o) => o === 'SKIPPED')) outcome = 'SKIPPED';
    else if (incoming.includes('NOT_RUN')) outcome = 'NOT_RUN';
    else if (conditions) {
      const taken = incoming.every((o) => o === 'SUCCESS' || o === 'SKIPPED')
        ? conditions.success
        : conditions.failure;
      notTaken.set(
        t,
        new Set([...conditions.success, ...conditions.failure].filter((x) => !taken.includes(x))),
      );
      outcome = 'SUCCESS';
    } else if (incoming.includes('FAILURE')) outcome = 'NOT_RUN';
    else outcome = failing.has(t) && !isMasterSide(dag, t) ? 'FAILURE' : 'SUCCESS';
    tasks.set(t, outcome);
  }
  const handled = (t: string) => dag.edges.some((e) => e.from === t && dag.conditions?.[e.to] !== undefined);
  const unhandled = [...tasks].some(([t, o]) => o === 'FAILURE' && !handled(t));
  return {
    tasks,
    notTaken,
    state: unhandled ? 'FAILURE' : 'SUCCESS',
    failing: new Set([...tasks].filter(([, o]) => o === 'FAILURE').map(([t]) => t)),
  };
}

/** Why the run's branches go the way they do, for messages. */
function branchNote(dag: DagSpec, expected: Expectation): string {
  const failing = [...expected.failing];
  const params = failing.map((t) => `${dag.failWhen?.[t]}=1`);
  const why =
    failing.length > 0 ? `${failing.join(', ')} fails on purpose (${params.join(', ')})` : 'no task fails';
  const taken = [...expected.notTaken].map(([c, not]) => `${c} does not take ${[...not].join(', ')}`);
  return taken.length > 0 ? `${why}: ${taken.join('; ')}` : why;
}

// ------------------------------------------------------------------ the instance tree

/** One instance of the runs or of their children, with the DAG it runs and what it should do. */
interface InstanceCtx {
  readonly instance: InstanceRow;
  readonly spec: DagSpec;
  readonly expected: Expectation;
  /** Of a child: the parent instance and its SUB_WORKFLOW task attempt. */
  readonly parent: { readonly ctx: InstanceCtx; readonly task: string; readonly row: TaskRow } | undefined;
  readonly label: string;
}

interface Tree {
  readonly contexts: InstanceCtx[];
  readonly byId: ReadonlyMap<number, InstanceCtx>;
  /** The runs' instances and every instance that descends from one (a child with a bad link too). */
  readonly ours: ReadonlySet<number>;
  /** Parent task attempt (task_instance.id) → its child instances. */
  readonly childrenOfRow: ReadonlyMap<number, InstanceRow[]>;
}

/**
 * The runs' instances and, from parent_instance_id down, their children: a child's DAG is the one
 * of the SUB_WORKFLOW task its parent_task_instance_id names. 1: a child whose parent task row
 * does not exist, belongs to another instance or is not a SUB_WORKFLOW task.
 */
function buildTree(input: CheckInput, add: (invariant: string, message: string) => void): Tree {
  const rowsById = new Map(input.tasks.map((t) => [t.id, t]));
  const byParent = groupBy(
    input.instances.filter((i) => i.parentInstanceId !== undefined && i.parentInstanceId !== null),
    (i) => i.parentInstanceId,
  );
  const runByInstance = new Map(input.runs.map((r) => [r.instanceId, r]));
  const contexts: InstanceCtx[] = [];
  const byId = new Map<number, InstanceCtx>();
  const ours = new Set<number>();
  const queue: InstanceCtx[] = [];
  for (const instance of input.instances) {
    const run = runByInstance.get(instance.id);
    if (!run) continue;
    queue.push({
      instance,
      spec: input.dag,
      expected: expectedOutcome(input.dag, failingTasks(input.dag, run.params)),
      parent: undefined,
      label: `instance ${instance.id}`,
    });
  }
  for (let ctx = queue.shift(); ctx !== undefined; ctx = queue.shift()) {
    if (ours.has(ctx.instance.id)) continue;
    ours.add(ctx.instance.id);
    contexts.push(ctx);
    byId.set(ctx.instance.id, ctx);
    for (const child of byParent.get(ctx.instance.id) ?? []) {
      if (ours.has(child.id) || runByInstance.has(child.id)) continue;
      const link = child.parentTaskInstanceId ?? null;
      const row = link === null ? undefined : rowsById.get(link);
      const spec = row?.instanceId === ctx.instance.id ? ctx.spec.subWorkflows?.[row.name] : undefined;
      if (!row || !spec) {
        add(
          '1',
          `child instance ${child.id} of instance ${ctx.instance.id} names parent task row ${link ?? 'none'}, ` +
            (row
              ? `which is ${row.name} of instance ${row.instanceId}, not a SUB_WORKFLOW task of instance ${ctx.instance.id}`
              : 'which does not exist'),
        );
        ours.add(child.id);
        continue;
      }
      queue.push({
        instance: child,
        spec,
        expected: expectedOutcome(spec, new Set()),
        parent: { ctx, task: row.name, row },
        label: `child instance ${child.id} (of instance ${ctx.instance.id} ${row.name} attempt ${row.attempt})`,
      });
    }
  }
  const childrenOfRow = groupBy(
    input.instances.filter(
      (i) => ours.has(i.id) && i.parentTaskInstanceId !== undefined && i.parentTaskInstanceId !== null,
    ),
    (i) => i.parentTaskInstanceId ?? 0,
  );
  return { contexts, byId, ours, childrenOfRow };
}

/** Rows and witness lines by instance and task name. */
interface Index {
  readonly rowsByTask: ReadonlyMap<string, TaskRow[]>;
  readonly linesByTask: ReadonlyMap<string, WitnessLine[]>;
}

/** Faults that may end or re-run a task attempt of the worker process they hit. */
const WORKER_FAULTS: ReadonlySet<Fault['kind']> = new Set([
  'SIGKILL',
  'SIGTERM',
  'SIGSTOP',
  'session-lost',
  'stalled',
]);

/**
 * The process that served address at ms: the latest one started there by then (a task's start
 * line comes after its worker spawned it). undefined without process ids (each address is then
 * one process); -1 when no process of the list served it then.
 */
export function processAt(input: CheckInput, address: string, ms: number): number | undefined {
  if (!input.processes) return undefined;
  let best: NodeProcess | undefined;
  for (const p of input.processes) {
    if (p.address === address && p.startedAt <= ms && (!best || p.startedAt >= best.startedAt)) best = p;
  }
  return best?.pid ?? -1;
}

/**
 * The fault that excuses the end or the re-run of an attempt that started at fromMs on the worker
 * at address: a kill, stop, freeze, stall or lost session of the very process that ran it (not of
 * its predecessor or successor on the same address), between the attempt's start and toMs (the
 * next attempt's start), FAULT_SLACK_MS either side.
 */
export function workerFault(
  input: CheckInput,
  address: string,
  fromMs: number,
  toMs: number,
): Fault | undefined {
  const pid = processAt(input, address, fromMs);
  return input.faults.find(
    (f) =>
      f.role === 'worker' &&
      WORKER_FAULTS.has(f.kind) &&
      f.address === address &&
      f.pid === pid &&
      f.at >= fromMs - FAULT_SLACK_MS &&
      f.at <= toMs + FAULT_SLACK_MS,
  );
}

export function checkInvariants(input: CheckInput): Violation[] {
  const violations: Violation[] = [];
  const add = (invariant: string, message: string) => violations.push({ invariant, message });
  const tree = buildTree(input, add);
  const ours = <T extends { instanceId: number }>(rows: readonly T[]) =>
    rows.filter((r) => tree.ours.has(r.instanceId));
  const index: Index = {
    rowsByTask: groupBy(ours(input.tasks), (t) => key(t.instanceId, t.name)),
    linesByTask: groupBy(
      input.witness.lines.filter((l) => tree.ours.has(l.instance)),
      (l) => key(l.instance, l.task),
    ),
  };

  checkCommandsAndInstances(input, tree.ours, ours, add);
  checkOwnershipHistory(ours(input.instanceAudit), add);
  checkTaskHistory(ours(input.taskAudit), add);
  checkWitnessRows(input, tree.ours, add);
  for (const ctx of tree.contexts) {
    checkAttempts(input, ctx, index, add);
    checkChildren(ctx, index, tree, add);
  }
  checkOrder(tree, index, add);

  const stuck = input.stuckInvariant ?? '7';
  for (const { instance, expected, label } of tree.contexts) {
    if (!FINAL_WORKFLOW_STATES.includes(instance.state)) {
      add(stuck, `${label} is stuck in ${instance.state} (host ${instance.host ?? 'none'})`);
    } else if (instance.state !== expected.state) {
      const failed = input.tasks.filter(
        (t) =>
          t.instanceId === instance.id && t.state === 'FAILURE' && expected.tasks.get(t.name) !== 'FAILURE',
      );
      if (expected.state === 'FAILURE') {
        add(
          '9',
          `${label} ended ${instance.state} although ${[...expected.failing].join(', ')} failed unhandled`,
        );
      } else if (expected.failing.size > 0 && failed.length === 0) {
        add(
          '9',
          `${label} ended ${instance.state} although its only failure (${[...expected.failing].join(', ')}, on purpose) is handled by a CONDITIONS task`,
        );
      } else {
        const onPurpose =
          expected.failing.size > 0
            ? ` but ${[...expected.failing].join(', ')} (on purpose, handled by a CONDITIONS task)`
            : '';
        const which =
          failed.length > 0
            ? `; failed: ${failed.map((t) => `${t.name} attempt ${t.attempt}`).join(', ')}`
            : '';
        add(
          '3/4',
          `${label} ended ${instance.state} although none of its tasks can fail${onPurpose}${which}`,
        );
      }
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
  ourInstances: ReadonlySet<number>,
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
    if (ourInstances.has(instance.id)) continue;
    const parent = instance.parentInstanceId ?? null;
    add(
      '1',
      `instance ${instance.id} belongs to no run${parent === null ? '' : ` (its parent instance ${parent} is none of the runs')`}`,
    );
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
  // A child instance's START_PROCESS is written by its parent's master, and counts the same.
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

/**
 * 2: no task row is written by a master whose epoch the instance has left behind (the writer's
 * epoch, task_instance.writer_epoch, older than the instance's at that moment); a task row that
 * reached SUCCESS is never written over (a stale master or a late duplicate would).
 */
function checkTaskHistory(
  audit: readonly TaskAuditRow[],
  add: (invariant: string, message: string) => void,
): void {
  for (const row of audit) {
    const writer = row.writerEpoch ?? null;
    const owner = row.ownerEpoch ?? null;
    if (writer !== null && owner !== null && writer < owner) {
      add(
        '2',
        `task row ${row.taskId} (instance ${row.instanceId} ${row.name} attempt ${row.attempt}) was written ${row.state} by a master at epoch ${writer} while the instance was at epoch ${owner}: a stale master's write got through`,
      );
    }
  }
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

/** 1, 2: every witness line belongs to one of our instances and names the task row it ran as. */
function checkWitnessRows(
  input: CheckInput,
  ourInstances: ReadonlySet<number>,
  add: (invariant: string, message: string) => void,
): void {
  const rowsById = new Map(input.tasks.map((t) => [t.id, t]));
  for (const line of input.witness.lines) {
    if (!ourInstances.has(line.instance)) {
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
  /** The first fail line: it failed on purpose (its run asked it to). */
  readonly fail: WitnessLine | undefined;
}

const hasRow = (a: Attempt): a is Attempt & { readonly row: TaskRow } => a.row !== undefined;

/**
 * 2, 3, 4 from the attempts of each task of one instance: no attempt started twice; a new attempt
 * only when the previous one never started, failed, or its worker was killed or lost its session;
 * attempts overlap only in that last case; every task ends as the run says (expectedOutcome):
 * SUCCESS with one attempt that really ran (start and end lines, on the worker the database
 * names), FAILURE on purpose (a fail line), or SKIPPED without ever starting (6, 9); nothing is
 * left running or waiting. Master-side tasks (CONDITIONS, SUB_WORKFLOW) have rows and no lines.
 */
function checkAttempts(
  input: CheckInput,
  ctx: InstanceCtx,
  ix: Index,
  add: (invariant: string, message: string) => void,
): void {
  const { instance, spec, expected } = ctx;
  const workerFaulted = (address: string | null, fromMs: number, toMs: number) =>
    address !== null && workerFault(input, address, fromMs, toMs) !== undefined;
  const dagTasks = new Set(spec.tasks);
  const finished = FINAL_WORKFLOW_STATES.includes(instance.state);
  for (const [k, rows] of groupBy(
    input.tasks.filter((t) => t.instanceId === instance.id),
    (t) => t.name,
  )) {
    if (!dagTasks.has(k)) {
      add('4', `instance ${instance.id} has ${rows.length} row(s) of unknown task ${k}`);
    }
  }

  for (const name of spec.tasks) {
    const rows = ix.rowsByTask.get(key(instance.id, name)) ?? [];
    const lines = ix.linesByTask.get(key(instance.id, name)) ?? [];
    const numbers = [...new Set([...rows.map((r) => r.attempt), ...lines.map((l) => l.attempt)])].sort(
      (a, b) => a - b,
    );
    const attempts: Attempt[] = numbers.map((n) => {
      const mine = lines.filter((l) => l.attempt === n);
      const starts = mine.filter((l) => l.kind === 'start');
      const ends = mine.filter((l) => l.kind === 'end');
      return {
        attempt: n,
        row: rows.find((r) => r.attempt === n),
        starts,
        ends,
        start: starts[0],
        end: ends[0],
        fail: mine.find((l) => l.kind === 'fail'),
      };
    });
    const what = `instance ${instance.id} task ${name}`;
    const outcome = expected.tasks.get(name) ?? 'SUCCESS';

    for (const a of attempts) {
      if (a.starts.length > 1) {
        add(
          '2',
          `${what} attempt ${a.attempt} started ${a.starts.length} times (workers ${a.starts.map((s) => s.workerPort).join(', ')})`,
        );
      }
      if (!a.row) add('2', `${what} attempt ${a.attempt} ran but has no task row`);
      if (a.row && a.start && a.row.state !== 'SKIPPED' && portOf(a.row.host) !== a.start.workerPort) {
        add(
          '2',
          `${what} attempt ${a.attempt} ran on worker port ${a.start.workerPort} but its row names ${a.row.host}`,
        );
      }
    }

    // 6: a task on a branch not taken, or a SKIPPED attempt, never starts.
    const started = attempts.filter((a) => a.start);
    if (outcome === 'SKIPPED' && started.length > 0) {
      add(
        '6',
        `${what} started (attempt ${started.map((a) => `${a.attempt} on port ${a.start?.workerPort}`).join(', ')}) although it is on a branch not taken (${branchNote(spec, expected)})`,
      );
    } else {
      for (const a of started) {
        if (a.row?.state === 'SKIPPED') {
          add(
            '6',
            `${what} attempt ${a.attempt} is SKIPPED but started on worker port ${a.start?.workerPort}`,
          );
        }
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
      // Started, never ended, not a success: something ended it; only a fault of its worker may,
      // or the task itself (a fail line, and its row FAILURE).
      if (!a.start || a.end || a.row?.state === 'SUCCESS' || a.row?.state === 'SKIPPED') continue;
      if (a.fail && a.row?.state === 'FAILURE') continue;
      const host = a.row?.host ?? `127.0.0.1:${a.start.workerPort}`;
      if (workerFaulted(host, a.start.ms, Number.POSITIVE_INFINITY)) continue;
      add(
        '3',
        a.row?.state === 'FAILURE'
          ? `${what} attempt ${a.attempt} ended FAILURE on ${host} without failing by itself (no fail line), and ${host} was never killed`
          : `${what} attempt ${a.attempt} was interrupted (${a.row?.state ?? 'no row'}) on ${host}, which was never killed`,
      );
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
    const states = withRow.map((a) => a.row.state).join(', ') || 'no row';
    if (outcome === 'SKIPPED') {
      // 9: the branch not taken (and all that is only reachable through it) is one SKIPPED row.
      if (withRow.length !== 1 || withRow[0]?.row.state !== 'SKIPPED') {
        add('9', `${what} should be SKIPPED (${branchNote(spec, expected)}) but is ${states}`);
      }
      continue;
    }
    if (outcome === 'NOT_RUN') continue; // the run's end state is reported
    if (withRow.some((a) => a.row.state === 'SKIPPED')) {
      add('9', `${what} should run (${branchNote(spec, expected)}) but is ${states}`);
      continue;
    }
    if (outcome === 'FAILURE') {
      // It fails on purpose: every attempt that ran to its end failed, the last one by itself.
      const lastRow = withRow.at(-1);
      if (successes.length > 0 || lastRow?.row.state !== 'FAILURE' || !lastRow.fail) {
        add(
          '9',
          `${what} should fail on purpose (${branchNote(spec, expected)}) but is ${states}${lastRow && !lastRow.fail ? ' and its last attempt wrote no fail line' : ''}`,
        );
      }
      continue;
    }
    if (successes.length !== 1) {
      add(
        '4',
        `${what} has ${successes.length} successful attempts (${attempts.map((a) => a.row?.state).join(', ')})`,
      );
    }
    if (isMasterSide(spec, name)) continue; // no witness lines: its child or its decision is checked
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

/**
 * 1, 9: every SUB_WORKFLOW task attempt has at most one child instance (a unique key; checked
 * anyway), an attempt that ended has its child, and the task ended with its child's state
 * (SUCCESS for SUCCESS, FAILURE for any other final state); a SKIPPED attempt started no child.
 */
function checkChildren(
  ctx: InstanceCtx,
  ix: Index,
  tree: Tree,
  add: (invariant: string, message: string) => void,
): void {
  for (const name of Object.keys(ctx.spec.subWorkflows ?? {})) {
    for (const row of ix.rowsByTask.get(key(ctx.instance.id, name)) ?? []) {
      const kids = tree.childrenOfRow.get(row.id) ?? [];
      const at = `instance ${ctx.instance.id} task ${name} attempt ${row.attempt} (task row ${row.id}, ${row.state})`;
      if (kids.length > 1) {
        add('1', `${at} has ${kids.length} child instances (${kids.map((k) => k.id).join(', ')}), not one`);
      }
      const kid = kids[0];
      if (!kid) {
        if (row.state === 'SUCCESS' || row.state === 'FAILURE') {
          add('9', `${at} ended without a child instance`);
        }
        continue;
      }
      if (row.state === 'SKIPPED') {
        add('9', `${at} is SKIPPED but started child instance ${kid.id}`);
      } else if (row.state === 'SUCCESS' && kid.state !== 'SUCCESS') {
        add('9', `${at} ended SUCCESS but its child instance ${kid.id} is ${kid.state}`);
      } else if (
        row.state === 'FAILURE' &&
        (kid.state === 'SUCCESS' || !FINAL_WORKFLOW_STATES.includes(kid.state))
      ) {
        add('9', `${at} ended FAILURE but its child instance ${kid.id} is ${kid.state}`);
      }
    }
  }
}

/** A point in the witness file: a task may start only after it. */
interface Mark {
  readonly index: number;
  readonly what: string;
}

/**
 * 6: every start of a task comes after every upstream task it waits for has ended: the end line
 * of the upstream SHELL attempt the database records as SUCCESS; for an upstream CONDITIONS task,
 * the end (or fail) lines of the tasks it waited for; for an upstream SUB_WORKFLOW task, the end
 * lines of every task of its child instance. A child's first tasks start only after everything
 * their parent task waited for. An upstream on a branch not taken is not waited for.
 */
function checkOrder(tree: Tree, ix: Index, add: (invariant: string, message: string) => void): void {
  const skippedFor = (ctx: InstanceCtx, up: string, task: string) =>
    ctx.expected.tasks.get(up) === 'SKIPPED' || (ctx.expected.notTaken.get(up)?.has(task) ?? false);
  const successOf = (ctx: InstanceCtx, task: string) =>
    (ix.rowsByTask.get(key(ctx.instance.id, task)) ?? []).find((r) => r.state === 'SUCCESS');
  const memo = new Map<string, Mark | string>();

  /** When an upstream task ended, as the witness file shows it (a string: why that is unknown). */
  const ended = (ctx: InstanceCtx, task: string): Mark | string => {
    const k = `ended ${key(ctx.instance.id, task)}`;
    const known = memo.get(k);
    if (known !== undefined) return known;
    let result: Mark | string;
    const id = ctx.instance.id;
    if (ctx.spec.conditions?.[task]) {
      result = ready(ctx, task);
    } else if (ctx.spec.subWorkflows?.[task]) {
      const success = successOf(ctx, task);
      const kid = success && tree.childrenOfRow.get(success.id)?.[0];
      const kidCtx = kid && tree.byId.get(kid.id);
      if (!success) result = `${task} never succeeded`;
      else if (!kid || !kidCtx) result = `${task} attempt ${success.attempt} has no child instance`;
      else {
        result = { index: -1, what: `child instance ${kid.id} ran nothing` };
        for (const t of kidCtx.spec.tasks) {
          const outcome = kidCtx.expected.tasks.get(t);
          if (outcome === 'SKIPPED' || outcome === 'NOT_RUN') continue;
          const m = ended(kidCtx, t);
          if (typeof m === 'string') {
            result = `its child instance ${kid.id}: ${m}`;
            break;
          }
          if (m.index > result.index) result = m;
        }
      }
    } else {
      const lines = ix.linesByTask.get(key(id, task)) ?? [];
      const success = successOf(ctx, task);
      if (success) {
        const end = lines.find((l) => l.kind === 'end' && l.attempt === success.attempt);
        result = end
          ? { index: end.index, what: `instance ${id} ${task} attempt ${success.attempt} ended` }
          : `instance ${id} ${task} attempt ${success.attempt} never wrote its end line`;
      } else {
        // Not a success (a CONDITIONS task waits for it anyway): its last line.
        const last = lines.at(-1);
        result = last
          ? { index: last.index, what: `instance ${id} ${task} attempt ${last.attempt} wrote ${last.kind}` }
          : `instance ${id} ${task} never ran`;
      }
    }
    memo.set(k, result);
    return result;
  };

  /** When a task of ctx could start: the latest end of what it waits for. */
  const ready = (ctx: InstanceCtx, task: string): Mark | string => {
    const k = `ready ${key(ctx.instance.id, task)}`;
    const known = memo.get(k);
    if (known !== undefined) return known;
    const ups = upstreamOf(ctx.spec, task);
    let result: Mark | string = { index: -1, what: 'nothing' };
    if (ups.length === 0 && ctx.parent) {
      result = ready(ctx.parent.ctx, ctx.parent.task);
    } else {
      for (const up of ups) {
        if (skippedFor(ctx, up, task)) continue;
        const m = ended(ctx, up);
        if (typeof m === 'string') {
          result = m;
          break;
        }
        if (m.index > result.index) result = m;
      }
    }
    memo.set(k, result);
    return result;
  };

  for (const ctx of tree.contexts) {
    const id = ctx.instance.id;
    for (const task of ctx.spec.tasks) {
      if (isMasterSide(ctx.spec, task) || ctx.expected.tasks.get(task) === 'SKIPPED') continue;
      const starts = (ix.linesByTask.get(key(id, task)) ?? []).filter((l) => l.kind === 'start');
      const ups = upstreamOf(ctx.spec, task).filter((up) => !skippedFor(ctx, up, task));
      for (const line of starts) {
        const what = `instance ${id}: ${task} attempt ${line.attempt} started`;
        if (ups.length === 0 && ctx.parent) {
          const { ctx: parent, task: parentTask } = ctx.parent;
          const m = ready(parent, parentTask);
          const of = `its parent task ${parentTask} (instance ${parent.instance.id}) waited for`;
          if (typeof m === 'string') add('6', `${what}, but what ${of} never ended: ${m}`);
          else if (m.index > line.index) add('6', `${what} before what ${of} ended (${m.what} after it)`);
        }
        for (const up of ups) {
          const success = successOf(ctx, up);
          if (!success) {
            add('6', `${what} although upstream ${up} never succeeded`);
            continue;
          }
          const m = ended(ctx, up);
          if (typeof m === 'string') {
            add('6', `${what} before upstream ${up} (attempt ${success.attempt}) ended: ${m}`);
          } else if (m.index > line.index) {
            add('6', `${what} before upstream ${up} (attempt ${success.attempt}) ended (${m.what} after it)`);
          }
        }
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
  const children = input.instances.filter((i) => (i.parentInstanceId ?? null) !== null).length;
  const failing = input.runs.filter((r) => failingTasks(input.dag, r.params).size > 0).length;
  const skipped = input.tasks.filter((t) => t.state === 'SKIPPED').length;
  return (
    `${input.runs.length} runs (${failing} with a task failing on purpose), ${children} child instances, ` +
    `${skipped} SKIPPED tasks, ${input.witness.lines.length} witness lines; faults so far: ` +
    `${count('SIGKILL')} SIGKILL, ${count('SIGTERM')} SIGTERM, ${count('SIGSTOP')} SIGSTOP, ` +
    `${count('session-lost')} lost sessions, ${count('stalled')} stalls; ${takenOver} instances taken over, ${reruns} task attempts > 1 ` +
    `(${faultTolerated} NEED_FAULT_TOLERANCE)`
  );
}

/** Evidence that the faults hit work, each item naming what it saw (for the log and messages). */
export interface Hits {
  /** An instance RUNNING on a master when that master was SIGKILLed, then taken by another master. */
  readonly takeovers: string[];
  /** An attempt > 1 of a task whose previous attempt started on a worker process SIGKILLed or frozen meanwhile. */
  readonly workerReruns: string[];
  /**
   * A master frozen (SIGSTOP) while it drove a RUNNING instance that another master took over
   * before it woke: it woke stale, and said it stood down (FenceEvent). That it wrote nothing is
   * what invariant 2 checks (no write at an older epoch, ownership never going back).
   */
  readonly staleFenced: string[];
}

/** What the faults of a scenario did to its runs (takeovers, re-runs after worker faults, fenced stale masters). */
export function countHits(input: CheckInput): Hits {
  const takeovers: string[] = [];
  const byInstance = groupBy(
    [...input.instanceAudit].sort((a, b) => a.seq - b.seq),
    (a) => a.instanceId,
  );
  for (const f of input.faults) {
    if (f.role !== 'master' || f.kind !== 'SIGKILL') continue;
    for (const [instanceId, rows] of byInstance) {
      const before = rows.filter((r) => r.at !== undefined && r.at <= f.at).at(-1);
      if (!before || before.host !== f.address || before.state !== 'RUNNING_EXECUTION') continue;
      const taker = rows.find(
        (r) =>
          r.at !== undefined &&
          r.at > f.at &&
          r.host !== null &&
          r.host !== f.address &&
          r.epoch > before.epoch,
      );
      if (taker) {
        takeovers.push(
          `instance ${instanceId}: RUNNING on ${f.address} (epoch ${before.epoch}) when it was SIGKILLed, taken by ${taker.host} (epoch ${taker.epoch})`,
        );
      }
    }
  }

  const workerReruns: string[] = [];
  const starts = new Map<string, WitnessLine>();
  for (const l of input.witness.lines) {
    const k = `${l.instance}/${l.task}/${l.attempt}`;
    if (l.kind === 'start' && !starts.has(k)) starts.set(k, l);
  }
  for (const t of input.tasks) {
    if (t.attempt < 2) continue;
    const prev = starts.get(`${t.instanceId}/${t.name}/${t.attempt - 1}`);
    if (!prev) continue;
    const next = starts.get(`${t.instanceId}/${t.name}/${t.attempt}`);
    const address = `127.0.0.1:${prev.workerPort}`;
    const fault = workerFault(input, address, prev.ms, next?.ms ?? Number.POSITIVE_INFINITY);
    if (fault && (fault.kind === 'SIGKILL' || fault.kind === 'SIGSTOP')) {
      workerReruns.push(
        `instance ${t.instanceId} task ${t.name} attempt ${t.attempt}: attempt ${t.attempt - 1} ran on ${address}, ${fault.kind} at ${fault.at}`,
      );
    }
  }

  const staleFenced: string[] = [];
  for (const f of input.faults) {
    if (f.role !== 'master' || f.kind !== 'SIGSTOP' || f.until === undefined) continue;
    const woke = f.until;
    const stoodDown = (input.fenced ?? []).find(
      (e) => e.address === f.address && e.pid === f.pid && e.at >= woke - FAULT_SLACK_MS,
    );
    if (!stoodDown) continue;
    for (const [instanceId, rows] of byInstance) {
      const before = rows.filter((r) => r.at !== undefined && r.at <= f.at).at(-1);
      if (!before || before.host !== f.address || before.state !== 'RUNNING_EXECUTION') continue;
      const taker = rows.find(
        (r) =>
          r.at !== undefined &&
          r.at > f.at &&
          r.at < woke &&
          r.host !== null &&
          r.host !== f.address &&
          r.epoch > before.epoch,
      );
      if (taker) {
        staleFenced.push(
          `instance ${instanceId}: RUNNING on ${f.address} (epoch ${before.epoch}) when it froze, taken by ${taker.host} (epoch ${taker.epoch}) before it woke; it stood down`,
        );
      }
    }
  }
  return { takeovers, workerReruns, staleFenced };
}

/** Which hits a scenario must show: it proves nothing about failover if its faults never hit work. */
export interface RequiredHits {
  readonly takeover?: boolean;
  readonly workerRerun?: boolean;
  readonly staleFenced?: boolean;
}

/** Violations (invariant 'hits') for each required kind of hit that the scenario did not produce. */
export function checkHits(hits: Hits, required: RequiredHits): Violation[] {
  const out: Violation[] = [];
  if (required.takeover && hits.takeovers.length === 0) {
    out.push({
      invariant: 'hits',
      message: 'no master was SIGKILLed while it drove a RUNNING instance that another master then took over',
    });
  }
  if (required.workerRerun && hits.workerReruns.length === 0) {
    out.push({
      invariant: 'hits',
      message: 'no task ran again after the worker process of its previous attempt was SIGKILLed or frozen',
    });
  }
  if (required.staleFenced && hits.staleFenced.length === 0) {
    out.push({
      invariant: 'hits',
      message:
        'no master frozen while it drove a RUNNING instance woke up after another master took it over and stood down (no stale master was fenced)',
    });
  }
  return out;
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
