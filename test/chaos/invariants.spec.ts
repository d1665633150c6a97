/**
 * The chaos checker must really fail on a broken history: a clean fabricated history passes, and
 * each way of breaking an invariant of DESIGN.md section 7 is reported under that invariant.
 */
import {
  checkHits,
  checkInvariants,
  countHits,
  expectedOutcome,
  formatViolations,
  type CheckInput,
  type DagSpec,
  type Fault,
  type InstanceAuditRow,
  type TaskRow,
} from './invariants';
import { parseWitness, witnessCommand } from './witness';

const W1 = '127.0.0.1:1001';
const W2 = '127.0.0.1:1002';
const M1 = '127.0.0.1:2001';
const M2 = '127.0.0.1:2002';
const DAG = { tasks: ['a', 'b'], edges: [{ from: 'a', to: 'b' }] };

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends ReadonlyArray<infer U> ? U[] : T[K] };

/** Two runs of a -> b, each task once on W1, instance 10 driven by M1, 11 by M2; the witness text separately. */
function cleanHistory(): { input: Mutable<CheckInput>; witness: string[] } {
  const tasks: TaskRow[] = [
    { id: 100, instanceId: 10, name: 'a', state: 'SUCCESS', host: W1, attempt: 1, exitCode: 0 },
    { id: 101, instanceId: 10, name: 'b', state: 'SUCCESS', host: W1, attempt: 1, exitCode: 0 },
    { id: 102, instanceId: 11, name: 'a', state: 'SUCCESS', host: W1, attempt: 1, exitCode: 0 },
    { id: 103, instanceId: 11, name: 'b', state: 'SUCCESS', host: W1, attempt: 1, exitCode: 0 },
  ];
  const witness = [
    'start 10 a 1 100 1000 1001',
    'start 11 a 1 102 1001 1001',
    'end 10 a 1 100 1100 1001',
    'start 10 b 1 101 1150 1001',
    'end 11 a 1 102 1160 1001',
    'end 10 b 1 101 1200 1001',
    'start 11 b 1 103 1210 1001',
    'end 11 b 1 103 1300 1001',
  ];
  let seq = 0;
  const instanceAudit = [10, 11].flatMap((id) => {
    const m = id === 10 ? M1 : M2;
    return [
      { seq: ++seq, instanceId: id, host: null, epoch: 0, state: 'SUBMITTED_SUCCESS' },
      { seq: ++seq, instanceId: id, host: m, epoch: 1, state: 'RUNNING_EXECUTION' },
      { seq: ++seq, instanceId: id, host: m, epoch: 1, state: 'SUCCESS' },
    ];
  });
  const taskAudit = tasks.flatMap((t) =>
    ['SUBMITTED_SUCCESS', 'DISPATCH', 'RUNNING_EXECUTION', 'SUCCESS'].map((state, i) => ({
      seq: ++seq,
      taskId: t.id,
      instanceId: t.instanceId,
      name: t.name,
      attempt: t.attempt,
      state,
      host: i === 0 ? null : t.host,
      at: 1000 + seq,
    })),
  );
  const input: Mutable<CheckInput> = {
    runs: [
      { commandId: 1, instanceId: 10 },
      { commandId: 2, instanceId: 11 },
    ],
    dag: DAG,
    instances: [
      { id: 10, state: 'SUCCESS', host: M1, epoch: 1 },
      { id: 11, state: 'SUCCESS', host: M2, epoch: 1 },
    ],
    tasks,
    commandsLeft: [],
    commandAudit: [
      { seq: 1, op: 'INSERT', commandId: 1, instanceId: 10, type: 'START_PROCESS' },
      { seq: 2, op: 'INSERT', commandId: 2, instanceId: 11, type: 'START_PROCESS' },
      { seq: 3, op: 'DELETE', commandId: 1, instanceId: 10, type: 'START_PROCESS' },
      { seq: 4, op: 'DELETE', commandId: 2, instanceId: 11, type: 'START_PROCESS' },
    ],
    instanceAudit,
    taskAudit,
    witness: parseWitness(''),
    faults: [],
    unexpectedExits: [],
  };
  return { input, witness };
}

function check(mutate: (h: { input: Mutable<CheckInput>; witness: string[] }) => void) {
  const h = cleanHistory();
  mutate(h);
  h.input.witness = parseWitness(h.witness.join('\n'));
  return checkInvariants(h.input);
}

/** Replaces rows[index] by a changed copy; a missing row means the clean history changed under the test. */
function change<T>(rows: T[], index: number, changes: Partial<T>): void {
  const row = rows[index];
  if (row === undefined) throw new Error(`the clean history has no row at ${index}`);
  rows[index] = { ...row, ...changes };
}
const taskIndex = (h: { input: Mutable<CheckInput> }, id: number) =>
  h.input.tasks.findIndex((t) => t.id === id);

const invariants = (v: ReturnType<typeof checkInvariants>) => [...new Set(v.map((x) => x.invariant))].sort();

/** Instance 10's task a ran as attempt 1 on W1 and again as attempt 2 on W2 (the fault is up to the caller). */
function rerunOfA(h: { input: Mutable<CheckInput>; witness: string[] }, firstEnds: boolean): void {
  change(h.input.tasks, taskIndex(h, 100), { state: 'NEED_FAULT_TOLERANCE', exitCode: null });
  h.input.tasks.push({
    id: 104,
    instanceId: 10,
    name: 'a',
    state: 'SUCCESS',
    host: W2,
    attempt: 2,
    exitCode: 0,
  });
  h.witness.splice(
    h.witness.indexOf('end 10 a 1 100 1100 1001'),
    1,
    'start 10 a 2 104 1050 1002',
    ...(firstEnds ? ['end 10 a 1 100 1100 1001'] : []),
    'end 10 a 2 104 1120 1002',
  );
}

/**
 * The master-side task types: a -> sub -> e (sub a SUB_WORKFLOW task whose child runs x -> y),
 * a -> f -> cond (CONDITIONS: success g -> g2, failure h); f fails on purpose when FAIL_F is 1.
 */
const BRANCH_DAG: DagSpec = {
  tasks: ['a', 'sub', 'e', 'f', 'cond', 'g', 'g2', 'h'],
  edges: [
    { from: 'a', to: 'sub' },
    { from: 'sub', to: 'e' },
    { from: 'a', to: 'f' },
    { from: 'f', to: 'cond' },
    { from: 'cond', to: 'g' },
    { from: 'g', to: 'g2' },
    { from: 'cond', to: 'h' },
  ],
  conditions: { cond: { success: ['g'], failure: ['h'] } },
  subWorkflows: { sub: { tasks: ['x', 'y'], edges: [{ from: 'x', to: 'y' }] } },
  failWhen: { f: 'FAIL_F' },
};

type History = { input: Mutable<CheckInput>; witness: string[] };

/**
 * One run (instance 20, command 5, driven by M1) of BRANCH_DAG, its worker tasks on W1, with the
 * child instance 21 of sub's attempt (task row 201; command 6, driven by M2, tasks on W2). With
 * failF, f fails on purpose: h runs, g and g2 are SKIPPED; else g and g2 run and h is SKIPPED.
 */
function branchHistory(failF: boolean): History {
  const row = (
    id: number,
    instanceId: number,
    name: string,
    state: string,
    host: string | null,
  ): TaskRow => ({
    id,
    instanceId,
    name,
    state,
    host,
    attempt: 1,
    exitCode: host === null ? null : state === 'FAILURE' ? 1 : 0,
  });
  const tasks: TaskRow[] = [
    row(200, 20, 'a', 'SUCCESS', W1),
    row(201, 20, 'sub', 'SUCCESS', null),
    row(202, 20, 'f', failF ? 'FAILURE' : 'SUCCESS', W1),
    row(203, 20, 'cond', 'SUCCESS', null),
    row(204, 20, 'g', failF ? 'SKIPPED' : 'SUCCESS', failF ? null : W1),
    row(205, 20, 'g2', failF ? 'SKIPPED' : 'SUCCESS', failF ? null : W1),
    row(206, 20, 'h', failF ? 'SUCCESS' : 'SKIPPED', failF ? W1 : null),
    row(207, 20, 'e', 'SUCCESS', W1),
    row(210, 21, 'x', 'SUCCESS', W2),
    row(211, 21, 'y', 'SUCCESS', W2),
  ];
  const witness = [
    'start 20 a 1 200 2000 1001',
    'end 20 a 1 200 2100 1001',
    'start 20 f 1 202 2110 1001',
    'start 21 x 1 210 2120 1002',
    'end 21 x 1 210 2200 1002',
    failF ? 'fail 20 f 1 202 2210 1001' : 'end 20 f 1 202 2210 1001',
    'start 21 y 1 211 2220 1002',
    ...(failF
      ? ['start 20 h 1 206 2230 1001', 'end 20 h 1 206 2240 1001']
      : [
          'start 20 g 1 204 2230 1001',
          'end 20 g 1 204 2240 1001',
          'start 20 g2 1 205 2250 1001',
          'end 20 g2 1 205 2260 1001',
        ]),
    'end 21 y 1 211 2300 1002',
    'start 20 e 1 207 2320 1001',
    'end 20 e 1 207 2400 1001',
  ];
  let seq = 0;
  const instanceAudit = [20, 21].flatMap((id) => {
    const m = id === 20 ? M1 : M2;
    return [
      { seq: ++seq, instanceId: id, host: null, epoch: 0, state: 'SUBMITTED_SUCCESS' },
      { seq: ++seq, instanceId: id, host: m, epoch: 1, state: 'RUNNING_EXECUTION' },
      { seq: ++seq, instanceId: id, host: m, epoch: 1, state: 'SUCCESS' },
    ];
  });
  const taskAudit = tasks.flatMap((t) =>
    ['SUBMITTED_SUCCESS', t.state].map((state, i) => ({
      seq: ++seq,
      taskId: t.id,
      instanceId: t.instanceId,
      name: t.name,
      attempt: t.attempt,
      state,
      host: i === 0 ? null : t.host,
      at: 2000 + seq,
    })),
  );
  const input: Mutable<CheckInput> = {
    runs: [{ commandId: 5, instanceId: 20, params: { FAIL_F: failF ? '1' : '0' } }],
    dag: BRANCH_DAG,
    instances: [
      { id: 20, state: 'SUCCESS', host: M1, epoch: 1, parentInstanceId: null, parentTaskInstanceId: null },
      { id: 21, state: 'SUCCESS', host: M2, epoch: 1, parentInstanceId: 20, parentTaskInstanceId: 201 },
    ],
    tasks,
    commandsLeft: [],
    commandAudit: [
      { seq: 1, op: 'INSERT', commandId: 5, instanceId: 20, type: 'START_PROCESS' },
      { seq: 2, op: 'DELETE', commandId: 5, instanceId: 20, type: 'START_PROCESS' },
      { seq: 3, op: 'INSERT', commandId: 6, instanceId: 21, type: 'START_PROCESS' },
      { seq: 4, op: 'DELETE', commandId: 6, instanceId: 21, type: 'START_PROCESS' },
    ],
    instanceAudit,
    taskAudit,
    witness: parseWitness(''),
    faults: [],
    unexpectedExits: [],
  };
  return { input, witness };
}

function checkBranch(failF: boolean, mutate: (h: History) => void) {
  const h = branchHistory(failF);
  mutate(h);
  h.input.witness = parseWitness(h.witness.join('\n'));
  return checkInvariants(h.input);
}

/** Replaces the witness line that starts with prefix (it must be there). */
function replaceLine(h: History, prefix: string, ...lines: string[]): void {
  const i = h.witness.findIndex((l) => l.startsWith(prefix));
  if (i < 0) throw new Error(`the history has no witness line ${prefix}`);
  h.witness.splice(i, 1, ...lines);
}

/** Moves the witness line that starts with prefix to just before the one that starts with before. */
function moveLineBefore(h: History, prefix: string, before: string): void {
  const i = h.witness.findIndex((l) => l.startsWith(prefix));
  const [line] = h.witness.splice(i, 1);
  if (i < 0 || line === undefined) throw new Error(`the history has no witness line ${prefix}`);
  const j = h.witness.findIndex((l) => l.startsWith(before));
  if (j < 0) throw new Error(`the history has no witness line ${before}`);
  h.witness.splice(j, 0, line);
}

/** A second child instance (22, command 7, tasks 212 and 213) for the parent task row `parentRow`. */
function addChild(h: History, parentRow: number): void {
  h.input.instances.push({
    id: 22,
    state: 'SUCCESS',
    host: M2,
    epoch: 1,
    parentInstanceId: 20,
    parentTaskInstanceId: parentRow,
  });
  h.input.tasks.push(
    { id: 212, instanceId: 22, name: 'x', state: 'SUCCESS', host: W2, attempt: 1, exitCode: 0 },
    { id: 213, instanceId: 22, name: 'y', state: 'SUCCESS', host: W2, attempt: 1, exitCode: 0 },
  );
  h.input.commandAudit.push(
    { seq: 5, op: 'INSERT', commandId: 7, instanceId: 22, type: 'START_PROCESS' },
    { seq: 6, op: 'DELETE', commandId: 7, instanceId: 22, type: 'START_PROCESS' },
  );
  h.input.instanceAudit.push(
    { seq: 901, instanceId: 22, host: null, epoch: 0, state: 'SUBMITTED_SUCCESS' },
    { seq: 902, instanceId: 22, host: M2, epoch: 1, state: 'RUNNING_EXECUTION' },
    { seq: 903, instanceId: 22, host: M2, epoch: 1, state: 'SUCCESS' },
  );
  const i = h.witness.indexOf('end 21 y 1 211 2300 1002') + 1;
  h.witness.splice(
    i,
    0,
    'start 22 x 1 212 2301 1002',
    'end 22 x 1 212 2302 1002',
    'start 22 y 1 213 2303 1002',
    'end 22 y 1 213 2304 1002',
  );
}

describe('chaos invariant checker', () => {
  it('accepts a clean history', () => {
    const v = check(() => undefined);
    expect(formatViolations(v)).toBe('every invariant holds');
  });

  it('accepts a task re-run after its worker was killed, even overlapping its orphaned first attempt', () => {
    const v = check((h) => {
      rerunOfA(h, true);
      h.input.faults.push({ at: 1040, address: W1, role: 'worker', kind: 'SIGKILL' });
    });
    expect(v).toEqual([]);
  });

  it('accepts a re-run after the worker lost its registry session', () => {
    const v = check((h) => {
      rerunOfA(h, false);
      h.input.faults.push({ at: 1030, address: W1, role: 'worker', kind: 'session-lost' });
    });
    expect(v).toEqual([]);
  });

  it('accepts a new attempt of a task that never started (its dispatch was lost with a master)', () => {
    const v = check((h) => {
      change(h.input.tasks, taskIndex(h, 101), { state: 'NEED_FAULT_TOLERANCE', host: W2, exitCode: null });
      h.input.tasks.push({
        id: 105,
        instanceId: 10,
        name: 'b',
        state: 'SUCCESS',
        host: W1,
        attempt: 2,
        exitCode: 0,
      });
      h.witness = h.witness.map((l) => l.replace(/^(start|end) 10 b 1 101/, '$1 10 b 2 105'));
    });
    expect(v).toEqual([]);
  });

  describe('reports', () => {
    it('1: an instance no run created', () => {
      const v = check((h) => h.input.instances.push({ id: 12, state: 'SUCCESS', host: M1, epoch: 1 }));
      expect(invariants(v)).toEqual(['1']);
      expect(v[0]?.message).toContain('instance 12 belongs to no run');
    });

    it('1: a run without an instance', () => {
      const v = check((h) => h.input.instances.splice(1, 1));
      expect(v.map((x) => x.invariant)).toContain('1');
    });

    it('1: a command never consumed', () => {
      const v = check((h) => {
        h.input.commandsLeft.push({ id: 2, instanceId: 11, type: 'START_PROCESS' });
        h.input.commandAudit.splice(3, 1);
      });
      expect(invariants(v)).toEqual(['1']);
    });

    it('1: a command consumed twice', () => {
      const v = check((h) =>
        h.input.commandAudit.push({
          seq: 5,
          op: 'DELETE',
          commandId: 1,
          instanceId: 10,
          type: 'START_PROCESS',
        }),
      );
      expect(invariants(v)).toEqual(['1']);
      expect(v[0]?.message).toContain('consumed 2 time(s)');
    });

    it('1: an instance taken by a second master without a command', () => {
      const v = check((h) => {
        h.input.instanceAudit.splice(
          2,
          0,
          { seq: 2.1, instanceId: 10, host: null, epoch: 2, state: 'RUNNING_EXECUTION' },
          { seq: 2.2, instanceId: 10, host: M2, epoch: 3, state: 'RUNNING_EXECUTION' },
        );
        change(h.input.instanceAudit, 4, { host: M2, epoch: 3 });
      });
      expect(invariants(v)).toEqual(['1']);
      expect(v[0]?.message).toContain('taken 2 time(s) by a master for 1 command(s)');
    });

    it('1: a task that ran for an instance of no run', () => {
      const v = check((h) => h.witness.push('start 99 a 1 900 2000 1001', 'end 99 a 1 900 2001 1001'));
      expect(invariants(v)).toEqual(['1']);
    });

    it('2: a stale master writing with an older epoch', () => {
      const v = check((h) => {
        change(h.input.instanceAudit, 2, { epoch: 2 });
        h.input.instanceAudit.push({ seq: 99, instanceId: 10, host: M1, epoch: 1, state: 'SUCCESS' });
      });
      expect(v.map((x) => x.invariant)).toContain('2');
      expect(v.map((x) => x.message).join()).toContain('epoch went back from 2 to 1');
    });

    it('2: two masters writing the same instance at the same epoch', () => {
      const v = check((h) =>
        h.input.instanceAudit.splice(2, 0, {
          seq: 2.5,
          instanceId: 10,
          host: M2,
          epoch: 1,
          state: 'RUNNING_EXECUTION',
        }),
      );
      expect(v.map((x) => x.invariant)).toContain('2');
      expect(v.map((x) => x.message).join()).toContain('wrote over');
    });

    it('2: an instance changed after it ended', () => {
      const v = check((h) =>
        h.input.instanceAudit.push({
          seq: 99,
          instanceId: 11,
          host: M2,
          epoch: 1,
          state: 'RUNNING_EXECUTION',
        }),
      );
      expect(invariants(v)).toEqual(['2']);
    });

    it('2: a task attempt started twice', () => {
      const v = check((h) => h.witness.splice(1, 0, 'start 10 a 1 100 1005 1002'));
      expect(v.map((x) => x.invariant)).toContain('2');
      expect(v.map((x) => x.message).join()).toContain('attempt 1 started 2 times');
    });

    it('2: a task that ran on another worker than its row says', () => {
      const v = check(
        (h) =>
          (h.witness = h.witness.map((l) => l.replace(/^(start|end) (11 b 1 103 \d+) 1001/, '$1 $2 1002'))),
      );
      expect(v.map((x) => x.invariant)).toContain('2');
    });

    it('2: a SUCCESS task row written over', () => {
      const v = check((h) =>
        h.input.taskAudit.push({
          seq: 999,
          taskId: 103,
          instanceId: 11,
          name: 'b',
          attempt: 1,
          state: 'NEED_FAULT_TOLERANCE',
          host: W1,
          at: 5000,
        }),
      );
      expect(invariants(v)).toEqual(['2']);
    });

    it('2 and 3: a task run again, overlapping, while its worker was alive', () => {
      const v = check((h) => rerunOfA(h, true));
      expect(invariants(v)).toEqual(['2', '3']);
      expect(v.map((x) => x.message).join('\n')).toContain('ran again as attempt 2');
    });

    it('3: a re-run after a fault of another worker only', () => {
      const v = check((h) => {
        rerunOfA(h, false);
        h.input.faults.push({ at: 1040, address: W2, role: 'worker', kind: 'SIGKILL' } satisfies Fault);
      });
      expect(invariants(v)).toEqual(['2', '3']);
    });

    it('3: a re-run long after the worker was killed and came back', () => {
      const v = check((h) => {
        rerunOfA(h, true);
        h.input.faults.push({ at: -5000, address: W1, role: 'worker', kind: 'SIGKILL' });
      });
      expect(invariants(v)).toContain('3');
    });

    it('2: a superseded attempt that starts late on a worker woken from a stall', () => {
      const v = check((h) => {
        rerunOfA(h, false);
        // Attempt 1 only starts once attempt 2 ran: the frozen W1 ran a stale dispatch on waking.
        h.witness.splice(h.witness.indexOf('start 10 a 1 100 1000 1001'), 1);
        h.witness.splice(h.witness.indexOf('end 10 a 2 104 1120 1002') + 1, 0, 'start 10 a 1 100 1130 1001');
        h.input.faults.push({ at: 990, address: W1, role: 'worker', kind: 'SIGSTOP' });
        h.input.faults.push({ at: 1135, address: W1, role: 'worker', kind: 'session-lost' });
      });
      expect(invariants(v)).toEqual(['2']);
      expect(v[0]?.message).toContain(
        'attempt 1 started on 127.0.0.1:1001 80 ms after attempt 2 had started',
      );
    });

    it('4: a fault-tolerated task never run again', () => {
      const v = check((h) => {
        change(h.input.tasks, taskIndex(h, 103), { state: 'NEED_FAULT_TOLERANCE' });
        h.witness.pop();
        h.input.faults.push({ at: 1250, address: W1, role: 'worker', kind: 'SIGKILL' });
      });
      expect(invariants(v)).toEqual(['4']);
    });

    it('4: a task recorded SUCCESS that never reached its end', () => {
      const v = check((h) => h.witness.splice(h.witness.indexOf('end 11 b 1 103 1300 1001'), 1));
      expect(v.map((x) => x.invariant)).toContain('4');
    });

    it('4: a task still running after its instance ended', () => {
      const v = check((h) => {
        h.input.tasks.push({
          id: 106,
          instanceId: 11,
          name: 'b',
          state: 'RUNNING_EXECUTION',
          host: W2,
          attempt: 2,
          exitCode: null,
        });
      });
      expect(v.map((x) => x.invariant)).toContain('4');
    });

    it('6: a task started before its upstream ended', () => {
      const v = check((h) => {
        const i = h.witness.indexOf('start 11 b 1 103 1210 1001');
        h.witness.splice(i, 1);
        h.witness.splice(2, 0, 'start 11 b 1 103 1210 1001');
      });
      expect(invariants(v)).toEqual(['6']);
    });

    it('6: a task started although its upstream never succeeded', () => {
      const v = check((h) => {
        change(h.input.tasks, 0, { state: 'FAILURE', exitCode: 1 });
        change(h.input.instances, 0, { state: 'FAILURE' });
      });
      expect(v.map((x) => x.invariant)).toContain('6');
    });

    it('7: an instance that never finished; 5 after every master was killed', () => {
      const stuck = (h: { input: Mutable<CheckInput> }) => {
        change(h.input.instances, 1, { state: 'RUNNING_EXECUTION' });
        h.input.instanceAudit = h.input.instanceAudit.filter(
          (a) => !(a.instanceId === 11 && a.state === 'SUCCESS'),
        );
      };
      expect(invariants(check(stuck))).toEqual(['7']);
      expect(
        invariants(
          check((h) => {
            stuck(h);
            h.input.stuckInvariant = '5';
          }),
        ),
      ).toEqual(['5']);
    });

    it('3/4: a run failed by the cluster although no task failed', () => {
      const v = check((h) => change(h.input.instances, 0, { state: 'FAILURE' }));
      expect(invariants(v)).toEqual(['3/4']);
    });

    it('8: a node that exited on its own', () => {
      const v = check((h) => h.input.unexpectedExits.push({ node: 'master-2#1', code: 1, signal: null }));
      expect(invariants(v)).toEqual(['8']);
    });

    it('an unreadable witness line', () => {
      const v = check((h) => h.witness.push('start 10 a'));
      expect(invariants(v)).toEqual(['witness']);
    });
  });

  describe('master-side tasks (CONDITIONS, SUB_WORKFLOW)', () => {
    it('expects the branch the run param decides, and SKIPPED for all that is only reachable through the other', () => {
      const ok = expectedOutcome(BRANCH_DAG, new Set());
      const failing = expectedOutcome(BRANCH_DAG, new Set(['f']));
      expect(Object.fromEntries(ok.tasks)).toEqual({
        a: 'SUCCESS',
        sub: 'SUCCESS',
        e: 'SUCCESS',
        f: 'SUCCESS',
        cond: 'SUCCESS',
        g: 'SUCCESS',
        g2: 'SUCCESS',
        h: 'SKIPPED',
      });
      expect(Object.fromEntries(failing.tasks)).toMatchObject({
        f: 'FAILURE',
        g: 'SKIPPED',
        g2: 'SKIPPED',
        h: 'SUCCESS',
      });
      expect([ok.state, failing.state]).toEqual(['SUCCESS', 'SUCCESS']);
      // Without the CONDITIONS task below it, the same failure fails the run and stops what follows.
      const unhandled = expectedOutcome(
        { tasks: ['f', 'g'], edges: [{ from: 'f', to: 'g' }] },
        new Set(['f']),
      );
      expect(unhandled.state).toBe('FAILURE');
      expect(unhandled.tasks.get('g')).toBe('NOT_RUN');
    });

    it('accepts a run on the success branch, with its child instance', () => {
      expect(checkBranch(false, () => undefined)).toEqual([]);
    });

    it('accepts a run whose task fails on purpose: the failure branch runs, the other is SKIPPED, the run succeeds', () => {
      expect(checkBranch(true, () => undefined)).toEqual([]);
    });

    it("accepts a child's task re-run after its worker was killed", () => {
      const v = checkBranch(true, (h) => {
        change(h.input.tasks, taskIndex(h, 210), { state: 'NEED_FAULT_TOLERANCE', exitCode: null });
        h.input.tasks.push({
          id: 214,
          instanceId: 21,
          name: 'x',
          state: 'SUCCESS',
          host: W1,
          attempt: 2,
          exitCode: 0,
        });
        replaceLine(h, 'end 21 x 1 210', 'start 21 x 2 214 2150 1001', 'end 21 x 2 214 2200 1001');
        h.input.faults.push({ at: 2140, address: W2, role: 'worker', kind: 'SIGKILL' });
      });
      expect(v).toEqual([]);
    });

    it('6: a SKIPPED task that has a start line', () => {
      const v = checkBranch(true, (h) => h.witness.push('start 20 g 1 204 2500 1001'));
      expect(invariants(v)).toEqual(['6']);
      expect(v[0]?.message).toContain(
        'instance 20 task g started (attempt 1 on port 1001) although it is on a branch not taken',
      );
    });

    it('6: a SKIPPED attempt of a task that is not on a branch not taken, started', () => {
      const v = checkBranch(false, (h) => {
        change(h.input.tasks, taskIndex(h, 207), { state: 'SKIPPED', host: null });
      });
      expect(invariants(v)).toEqual(['6', '9']);
      expect(v.map((x) => x.message).join('\n')).toContain(
        'instance 20 task e attempt 1 is SKIPPED but started',
      );
    });

    it('6 and 9: the branch not taken ran', () => {
      const v = checkBranch(true, (h) => {
        change(h.input.tasks, taskIndex(h, 204), { state: 'SUCCESS', host: W1, exitCode: 0 });
        h.witness.push('start 20 g 1 204 2500 1001', 'end 20 g 1 204 2600 1001');
      });
      expect(invariants(v)).toEqual(['6', '9']);
      expect(v.map((x) => x.message).join('\n')).toContain(
        'instance 20 task g should be SKIPPED (f fails on purpose (FAIL_F=1): cond does not take g) but is SUCCESS',
      );
    });

    it('9: a task only reachable through the branch not taken recorded as run', () => {
      const v = checkBranch(false, (h) => change(h.input.tasks, taskIndex(h, 206), { state: 'SUCCESS' }));
      expect(invariants(v)).toEqual(['9']);
      expect(v[0]?.message).toContain('instance 20 task h should be SKIPPED');
    });

    it('9: the branch taken was SKIPPED', () => {
      const v = checkBranch(true, (h) => {
        change(h.input.tasks, taskIndex(h, 206), { state: 'SKIPPED', host: null, exitCode: null });
        h.witness = h.witness.filter((l) => !l.includes(' 20 h '));
      });
      expect(invariants(v)).toEqual(['9']);
      expect(v[0]?.message).toContain('instance 20 task h should run');
    });

    it('9: a failure handled by a CONDITIONS task failed the run', () => {
      const v = checkBranch(true, (h) => {
        change(h.input.instances, 0, { state: 'FAILURE' });
        change(h.input.instanceAudit, 2, { state: 'FAILURE' });
      });
      expect(invariants(v)).toEqual(['9']);
      expect(v[0]?.message).toContain('handled by a CONDITIONS task');
    });

    it('9: a task that its run asks to fail succeeded', () => {
      const v = checkBranch(true, (h) => {
        change(h.input.tasks, taskIndex(h, 202), { state: 'SUCCESS', exitCode: 0 });
        replaceLine(h, 'fail 20 f', 'end 20 f 1 202 2210 1001');
      });
      expect(invariants(v)).toEqual(['9']);
      expect(v[0]?.message).toContain('instance 20 task f should fail on purpose');
    });

    it('3 and 9: a task recorded FAILURE that never failed by itself (no fail line) on a worker never killed', () => {
      const v = checkBranch(true, (h) => h.witness.splice(h.witness.indexOf('fail 20 f 1 202 2210 1001'), 1));
      expect(invariants(v)).toEqual(['3', '9']);
    });

    it('6: the failure branch started before the failing task failed', () => {
      const v = checkBranch(true, (h) => moveLineBefore(h, 'start 20 h', 'fail 20 f'));
      expect(invariants(v)).toEqual(['6']);
      expect(v[0]?.message).toContain('before upstream cond');
    });

    it('1: two child instances for one SUB_WORKFLOW task attempt', () => {
      const v = checkBranch(false, (h) => addChild(h, 201));
      expect(invariants(v)).toEqual(['1']);
      expect(v[0]?.message).toContain(
        'instance 20 task sub attempt 1 (task row 201, SUCCESS) has 2 child instances (21, 22)',
      );
    });

    it('1: a child instance whose parent task row is not a SUB_WORKFLOW task', () => {
      const v = checkBranch(false, (h) => addChild(h, 200));
      expect(invariants(v)).toEqual(['1']);
      expect(v[0]?.message).toContain(
        'child instance 22 of instance 20 names parent task row 200, which is a of instance 20',
      );
    });

    it('1: a child instance whose parent is no run', () => {
      const v = checkBranch(false, (h) => {
        addChild(h, 201);
        change(h.input.instances, 2, { parentInstanceId: 99 });
      });
      expect(invariants(v)).toContain('1');
      expect(v.map((x) => x.message).join('\n')).toContain(
        'instance 22 belongs to no run (its parent instance 99',
      );
    });

    it('9 and 6: a SUB_WORKFLOW task that succeeded without a child instance', () => {
      const v = checkBranch(false, (h) => {
        h.input.instances.splice(1, 1);
        h.input.tasks = h.input.tasks.filter((t) => t.instanceId !== 21);
        h.input.commandAudit = h.input.commandAudit.filter((a) => a.instanceId !== 21);
        h.input.instanceAudit = h.input.instanceAudit.filter((a) => a.instanceId !== 21);
        h.witness = h.witness.filter((l) => !l.includes(' 21 '));
      });
      expect(invariants(v)).toEqual(['6', '9']);
      expect(v.map((x) => x.message).join('\n')).toContain('ended without a child instance');
    });

    it("9: the parent task ended SUCCESS although its child did not (the child's failure is 3/4)", () => {
      const v = checkBranch(false, (h) => {
        change(h.input.instances, 1, { state: 'FAILURE' });
        change(h.input.instanceAudit, 5, { state: 'FAILURE' });
      });
      expect(invariants(v)).toEqual(['3/4', '9']);
      expect(v.map((x) => x.message).join('\n')).toContain(
        'ended SUCCESS but its child instance 21 is FAILURE',
      );
    });

    it('7: a child instance that never finished', () => {
      const v = checkBranch(false, (h) => {
        change(h.input.instances, 1, { state: 'RUNNING_EXECUTION' });
        h.input.instanceAudit.splice(5, 1);
        change(h.input.tasks, taskIndex(h, 201), { state: 'RUNNING_EXECUTION' });
      });
      expect(invariants(v)).toContain('7');
      expect(v.map((x) => x.message).join('\n')).toContain(
        'child instance 21 (of instance 20 sub attempt 1) is stuck',
      );
    });

    it("6: a child's first task started before its parent task's upstream ended", () => {
      const v = checkBranch(false, (h) => moveLineBefore(h, 'start 21 x', 'end 20 a'));
      expect(invariants(v)).toEqual(['6']);
      expect(v[0]?.message).toContain('its parent task sub (instance 20)');
    });

    it("6: the task after a SUB_WORKFLOW task started before the child's tasks ended", () => {
      const v = checkBranch(false, (h) => moveLineBefore(h, 'start 20 e', 'end 21 y'));
      expect(invariants(v)).toEqual(['6']);
      expect(v[0]?.message).toContain(
        'before upstream sub (attempt 1) ended (instance 21 y attempt 1 ended after it)',
      );
    });

    it("2: a child's task attempt started twice", () => {
      const v = checkBranch(false, (h) => h.witness.splice(4, 0, 'start 21 x 1 210 2130 1001'));
      expect(invariants(v)).toContain('2');
      expect(v.map((x) => x.message).join('\n')).toContain('instance 21 task x attempt 1 started 2 times');
    });

    it("3: a child's task run again on a worker never killed", () => {
      const v = checkBranch(false, (h) => {
        change(h.input.tasks, taskIndex(h, 211), { state: 'NEED_FAULT_TOLERANCE', exitCode: null });
        h.input.tasks.push({
          id: 215,
          instanceId: 21,
          name: 'y',
          state: 'SUCCESS',
          host: W1,
          attempt: 2,
          exitCode: 0,
        });
        replaceLine(h, 'end 21 y 1 211', 'start 21 y 2 215 2290 1001', 'end 21 y 2 215 2300 1001');
      });
      expect(invariants(v)).toContain('3');
    });
  });

  it('writes a fail line instead of the end line, and exits 1, when the run param says so', () => {
    const command = witnessCommand('/tmp/w.txt', '0', 'FAIL_F');
    expect(command).toBe(
      'echo "start $PORPOISE_WORKFLOW_INSTANCE_ID $PORPOISE_TASK_NAME $PORPOISE_ATTEMPT $PORPOISE_TASK_INSTANCE_ID $(date +%s%3N) $CHAOS_WORKER_PORT" >> /tmp/w.txt; ' +
        'if [ "$PORPOISE_PARAM_FAIL_F" = 1 ]; then ' +
        'echo "fail $PORPOISE_WORKFLOW_INSTANCE_ID $PORPOISE_TASK_NAME $PORPOISE_ATTEMPT $PORPOISE_TASK_INSTANCE_ID $(date +%s%3N) $CHAOS_WORKER_PORT" >> /tmp/w.txt; exit 1; fi; ' +
        'echo "end $PORPOISE_WORKFLOW_INSTANCE_ID $PORPOISE_TASK_NAME $PORPOISE_ATTEMPT $PORPOISE_TASK_INSTANCE_ID $(date +%s%3N) $CHAOS_WORKER_PORT" >> /tmp/w.txt',
    );
    const w = parseWitness('fail 1 f 1 3 1700000000000 1234\nfailed 1 f 1 3 1700000000000 1234\n');
    expect(w.lines.map((l) => l.kind)).toEqual(['fail']);
    expect(w.malformed).toEqual(['failed 1 f 1 3 1700000000000 1234']);
  });

  it('formats violations grouped by invariant', () => {
    const text = formatViolations([
      { invariant: '3', message: 'x' },
      { invariant: '3', message: 'y' },
      { invariant: '6', message: 'z' },
    ]);
    expect(text).toBe('3 violation(s):\n  invariant 3: 2\n    - x\n    - y\n  invariant 6: 1\n    - z');
  });

  it('writes witness lines the parser reads back', () => {
    const command = witnessCommand('/tmp/w.txt', '$PORPOISE_PARAM_SLEEP_A');
    expect(command).toBe(
      'echo "start $PORPOISE_WORKFLOW_INSTANCE_ID $PORPOISE_TASK_NAME $PORPOISE_ATTEMPT $PORPOISE_TASK_INSTANCE_ID $(date +%s%3N) $CHAOS_WORKER_PORT" >> /tmp/w.txt; ' +
        'sleep $PORPOISE_PARAM_SLEEP_A; ' +
        'echo "end $PORPOISE_WORKFLOW_INSTANCE_ID $PORPOISE_TASK_NAME $PORPOISE_ATTEMPT $PORPOISE_TASK_INSTANCE_ID $(date +%s%3N) $CHAOS_WORKER_PORT" >> /tmp/w.txt',
    );
    expect(
      parseWitness('start 1 a 2 3 1700000000000 1234\n\nend 1 a 2 3 1700000000500 1234\n').lines,
    ).toEqual([
      {
        index: 0,
        kind: 'start',
        instance: 1,
        task: 'a',
        attempt: 2,
        taskInstanceId: 3,
        ms: 1700000000000,
        workerPort: 1234,
      },
      {
        index: 1,
        kind: 'end',
        instance: 1,
        task: 'a',
        attempt: 2,
        taskInstanceId: 3,
        ms: 1700000000500,
        workerPort: 1234,
      },
    ]);
  });
});

describe('chaos checker: a re-run is excused only by a fault of the process that ran it, in its window', () => {
  /** W1 served by pid 500 until it was killed at 990 and by pid 501 from 995 on; W2 by pid 600. */
  const processes = (h: History) => {
    h.input.processes = [
      { address: W1, role: 'worker', pid: 500, startedAt: -10_000 },
      { address: W1, role: 'worker', pid: 501, startedAt: 995 },
      { address: W2, role: 'worker', pid: 600, startedAt: -10_000 },
    ];
  };

  it('accepts a re-run after the process that ran the attempt was killed', () => {
    const v = check((h) => {
      processes(h);
      rerunOfA(h, true);
      h.input.faults.push({ at: 1040, address: W1, role: 'worker', kind: 'SIGKILL', pid: 501 });
    });
    expect(v).toEqual([]);
  });

  it('accepts a re-run after that process lost its session while the attempt ran', () => {
    const v = check((h) => {
      processes(h);
      rerunOfA(h, false);
      h.input.faults.push({ at: 1030, address: W1, role: 'worker', kind: 'session-lost', pid: 501 });
    });
    expect(v).toEqual([]);
  });

  it('3: a re-run excused only by the kill of the previous process on the same address', () => {
    const v = check((h) => {
      processes(h);
      rerunOfA(h, false);
      // Within FAULT_SLACK_MS of the start: the address-only match of old excused it.
      h.input.faults.push({ at: 990, address: W1, role: 'worker', kind: 'SIGKILL', pid: 500 });
    });
    expect(invariants(v)).toContain('3');
    expect(v.map((x) => x.message).join('\n')).toContain('ran again as attempt 2');
  });

  it("3: a re-run excused only by a lost session of the worker's next process", () => {
    const v = check((h) => {
      processes(h);
      h.input.processes = [
        ...(h.input.processes ?? []),
        { address: W1, role: 'worker', pid: 502, startedAt: 1020 },
      ];
      rerunOfA(h, false);
      h.input.faults.push({ at: 1030, address: W1, role: 'worker', kind: 'session-lost', pid: 502 });
    });
    expect(invariants(v)).toContain('3');
  });

  it('3: a re-run excused only by a lost session of the right process, but after the window', () => {
    const v = check((h) => {
      processes(h);
      rerunOfA(h, false);
      h.input.faults.push({ at: 9000, address: W1, role: 'worker', kind: 'session-lost', pid: 501 });
    });
    expect(invariants(v)).toContain('3');
  });

  it('3: a fault without a process id does not excuse a re-run when the processes are known', () => {
    const v = check((h) => {
      processes(h);
      rerunOfA(h, false);
      h.input.faults.push({ at: 1040, address: W1, role: 'worker', kind: 'SIGKILL' });
    });
    expect(invariants(v)).toContain('3');
  });
});

describe('chaos checker: a task row written by a stale master', () => {
  it('accepts writes stamped with the owner epoch, and writes outside a fence (no epoch)', () => {
    const v = check((h) => {
      h.input.taskAudit = h.input.taskAudit.map((r, i) => ({
        ...r,
        writerEpoch: i % 3 === 0 ? null : 1,
        ownerEpoch: 1,
      }));
    });
    expect(v).toEqual([]);
  });

  it('2: a write by a master at an older epoch than the instance had then', () => {
    const v = check((h) => {
      h.input.taskAudit = h.input.taskAudit.map((r) => ({ ...r, writerEpoch: 1, ownerEpoch: 1 }));
      change(h.input.taskAudit, 2, { writerEpoch: 1, ownerEpoch: 2 });
    });
    expect(invariants(v)).toEqual(['2']);
    expect(v[0]?.message).toContain('by a master at epoch 1 while the instance was at epoch 2');
  });
});

describe('chaos checker: the faults hit work (countHits, checkHits)', () => {
  const ALL = { takeover: true, workerRerun: true, staleFenced: true } as const;
  /** Instance 10 RUNNING on M1 (epoch 1) from t=100, taken by M2 (epoch 2) at t=4000. */
  const takenOver = (h: History, taker = M2): void => {
    h.input.instanceAudit = [
      { seq: 1, instanceId: 10, host: null, epoch: 0, state: 'SUBMITTED_SUCCESS', at: 50 },
      { seq: 2, instanceId: 10, host: M1, epoch: 1, state: 'RUNNING_EXECUTION', at: 100 },
      { seq: 3, instanceId: 10, host: null, epoch: 1, state: 'RUNNING_EXECUTION', at: 3900 },
      { seq: 4, instanceId: 10, host: taker, epoch: 2, state: 'RUNNING_EXECUTION', at: 4000 },
      { seq: 5, instanceId: 10, host: taker, epoch: 2, state: 'SUCCESS', at: 5000 },
    ] satisfies InstanceAuditRow[];
  };
  const hitsOf = (mutate: (h: History) => void) => {
    const h = cleanHistory();
    mutate(h);
    h.input.witness = parseWitness(h.witness.join('\n'));
    return countHits(h.input);
  };
  /** Every kind of hit: M1 killed while it ran instance 10, W1 killed under a, M1 frozen and fenced. */
  const everything = (h: History) => {
    h.input.processes = [
      { address: W1, role: 'worker', pid: 500, startedAt: 0 },
      { address: M1, role: 'master', pid: 700, startedAt: 0 },
    ];
    takenOver(h);
    rerunOfA(h, true);
    h.input.faults.push(
      { at: 1040, address: W1, role: 'worker', kind: 'SIGKILL', pid: 500 },
      { at: 600, address: M1, role: 'master', kind: 'SIGSTOP', pid: 700, until: 4500 },
      { at: 2000, address: M1, role: 'master', kind: 'SIGKILL', pid: 700 },
    );
    // On waking, its session lost, M1 finds what it dropped taken over (the line has no ids).
    h.input.fenced = [{ at: 4510, address: M1, pid: 700 }];
  };

  it('counts a takeover, a re-run after a worker kill and a fenced stale master', () => {
    const hits = hitsOf(everything);
    expect([hits.takeovers.length, hits.workerReruns.length, hits.staleFenced.length]).toEqual([1, 1, 1]);
    expect(checkHits(hits, ALL)).toEqual([]);
  });

  it('hits: no takeover when the master was killed after its instance had moved on, or by itself', () => {
    const late = hitsOf((h) => {
      everything(h);
      h.input.faults = h.input.faults.map((f) =>
        f.role === 'master' && f.kind === 'SIGKILL' ? { ...f, at: 4500 } : f,
      );
    });
    expect(late.takeovers).toEqual([]);
    expect(checkHits(late, ALL).map((x) => x.message)).toEqual([
      'no master was SIGKILLed while it drove a RUNNING instance that another master then took over',
    ]);
    // Taken again by a master on the killed one's own address: no other master took it over.
    const self = hitsOf((h) => {
      everything(h);
      takenOver(h, M1);
    });
    expect(self.takeovers).toEqual([]);
  });

  it('hits: no re-run after a worker fault when the re-run followed a lost session only, or a fault of another process', () => {
    const lost = hitsOf((h) => {
      everything(h);
      h.input.faults = h.input.faults.map((f) => (f.role === 'worker' ? { ...f, kind: 'session-lost' } : f));
    });
    expect(lost.workerReruns).toEqual([]);
    expect(checkHits(lost, ALL).map((x) => x.message)).toEqual([
      'no task ran again after the worker process of its previous attempt was SIGKILLed or frozen',
    ]);
    const other = hitsOf((h) => {
      everything(h);
      h.input.faults = h.input.faults.map((f) => (f.role === 'worker' ? { ...f, pid: 499 } : f));
    });
    expect(other.workerReruns).toEqual([]);
  });

  it('hits: no stale master fenced when the master was never frozen, woke before the takeover, or never stood down', () => {
    const awake = hitsOf((h) => {
      everything(h);
      h.input.faults = h.input.faults.filter((f) => f.kind !== 'SIGSTOP');
    });
    expect(awake.staleFenced).toEqual([]);
    expect(checkHits(awake, ALL).map((x) => x.message)).toEqual([
      'no master frozen while it drove a RUNNING instance woke up after another master took it over and stood down (no stale master was fenced)',
    ]);
    const early = hitsOf((h) => {
      everything(h);
      h.input.faults = h.input.faults.map((f) => (f.kind === 'SIGSTOP' ? { ...f, until: 3000 } : f));
    });
    expect(early.staleFenced).toEqual([]);
    const silent = hitsOf((h) => {
      everything(h);
      h.input.fenced = [];
    });
    expect(silent.staleFenced).toEqual([]);
    const other = hitsOf((h) => {
      everything(h);
      h.input.fenced = [{ at: 4510, address: M1, pid: 701 }];
    });
    expect(other.staleFenced).toEqual([]);
  });

  it('requires only the hits asked for', () => {
    expect(checkHits({ takeovers: [], workerReruns: [], staleFenced: [] }, {})).toEqual([]);
    expect(checkHits({ takeovers: [], workerReruns: [], staleFenced: [] }, ALL)).toHaveLength(3);
  });
});
