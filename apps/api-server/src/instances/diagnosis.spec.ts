import {
  buildWorkflowGraph,
  type DependentTaskDefinition,
  type TaskDefinition,
  type TaskState,
  type WorkflowState,
} from '@porpoise/common';
import type { DiagnosisTaskRow } from '@porpoise/dao';
import { clusterNeeded, diagnose, type ClusterView, type DiagnosisInput } from './diagnosis';

const at = (s: number) => new Date(Date.UTC(2026, 11, 1, 12, 0, s));
const iso = (s: number) => at(s).toISOString();
const MASTER = '10.0.0.1:5678';

const shell = (name: string, workerGroup = 'default'): TaskDefinition => ({
  name,
  type: 'SHELL',
  command: 'true',
  retries: 0,
  retryIntervalMs: 1000,
  timeoutMs: 0,
  workerGroup,
});

//  extract -> load -> report      train (gpu)    crunch (busy)    flaky
const graph = buildWorkflowGraph(
  [
    shell('extract'),
    shell('load'),
    shell('report'),
    shell('train', 'gpu'),
    shell('crunch', 'busy'),
    shell('flaky'),
  ],
  [
    { from: 'extract', to: 'load' },
    { from: 'load', to: 'report' },
  ],
);

let nextId = 1;
const row = (name: string, state: TaskState, over: Partial<DiagnosisTaskRow> = {}): DiagnosisTaskRow => ({
  id: nextId++,
  name,
  state,
  host: null,
  attempt: 1,
  createdAt: at(10),
  updatedAt: at(11),
  startTime: null,
  endTime: null,
  retryDueAt: null,
  ...over,
});

const cluster: ClusterView = {
  masters: [{ address: MASTER }],
  workers: [
    { group: 'default', serving: true, runningTasks: 1, capacity: 4 },
    { group: 'busy', serving: true, runningTasks: 2, capacity: 2 },
    { group: 'busy', serving: false, runningTasks: 0, capacity: 2 },
    { group: 'gpu', serving: false, runningTasks: 0, capacity: 2 },
  ],
};

function input(
  state: WorkflowState,
  tasks: DiagnosisTaskRow[],
  over: Partial<DiagnosisInput> = {},
): DiagnosisInput {
  return {
    instance: {
      id: 42,
      state,
      host: MASTER,
      workflowCode: 'wf',
      workflowVersion: 1,
      startTime: at(5),
      endTime: null,
      createdAt: at(1),
      updatedAt: at(20),
    },
    command: null,
    tasks,
    now: at(30),
    graph,
    cluster,
    ...over,
  };
}

/** Tasks come in the DAG's topological order; these tests compare them by name. */
const byName = <T extends { name: string }>(xs: readonly T[]): T[] =>
  [...xs].sort((a, b) => a.name.localeCompare(b.name));
const named = (xs: ReadonlyArray<{ name: string }>, name: string) => xs.find((t) => t.name === name);

describe('diagnose', () => {
  it('a ready attempt waiting for a slot of its task group: task-group, with the group, since it asked', () => {
    const train = row('train', 'SUBMITTED_SUCCESS', { createdAt: at(13) });
    const flaky = row('flaky', 'SUBMITTED_SUCCESS', { createdAt: at(14) });
    const result = diagnose(
      input('RUNNING_EXECUTION', [train, flaky], {
        taskGroupQueue: [
          { taskInstanceId: train.id, taskGroup: 'etl', slotNo: null, requestedAt: at(16) },
          // Granted: it is being dispatched, not waiting for its group.
          { taskInstanceId: flaky.id, taskGroup: 'etl', slotNo: 0, requestedAt: at(15) },
        ],
      }),
    );
    expect(named(result, 'train')).toEqual({
      name: 'train',
      state: 'SUBMITTED_SUCCESS',
      waitingFor: 'task-group',
      since: iso(16),
      detail: 'waits for a slot of task group etl (all its slots are held; first come first served)',
      taskGroup: 'etl',
    });
    expect(named(result, 'flaky')).toMatchObject({
      waitingFor: null,
      detail: 'being dispatched to a worker of group default',
    });
  });

  it('names what holds each unfinished task of a running instance, and since when', () => {
    const result = diagnose(
      input('RUNNING_EXECUTION', [
        row('extract', 'RUNNING_EXECUTION', { host: '10.0.0.9:1234', startTime: at(12) }),
        row('train', 'SUBMITTED_SUCCESS', { createdAt: at(13) }),
        row('crunch', 'SUBMITTED_SUCCESS', { createdAt: at(14) }),
        row('flaky', 'DELAY_EXECUTION', { attempt: 2, endTime: at(15), retryDueAt: at(75) }),
      ]),
    );
    expect(result.map((t) => t.name)).toEqual(graph.order);
    expect(byName(result)).toEqual(
      byName([
        {
          name: 'extract',
          state: 'RUNNING_EXECUTION',
          waitingFor: null,
          since: iso(12),
          detail: 'running on 10.0.0.9:1234',
          host: '10.0.0.9:1234',
        },
        {
          name: 'load',
          state: null,
          waitingFor: 'upstream',
          since: iso(5),
          detail: 'waits for extract to succeed',
          upstream: ['extract'],
        },
        {
          name: 'report',
          state: null,
          waitingFor: 'upstream',
          since: iso(5),
          detail: 'waits for load to succeed',
          upstream: ['load'],
        },
        {
          name: 'train',
          state: 'SUBMITTED_SUCCESS',
          waitingFor: 'worker-group',
          since: iso(13),
          detail: 'no live worker in group gpu',
          workerGroup: 'gpu',
        },
        {
          name: 'crunch',
          state: 'SUBMITTED_SUCCESS',
          waitingFor: 'worker-capacity',
          since: iso(14),
          detail: 'every live worker of group busy runs as many tasks as its capacity',
          workerGroup: 'busy',
        },
        {
          name: 'flaky',
          state: 'DELAY_EXECUTION',
          waitingFor: 'retry-delay',
          since: iso(15),
          detail: `attempt 2 failed; the next one starts at ${iso(75)}`,
          retryAt: iso(75),
        },
      ]),
    );
  });

  it('leaves out finished tasks; a SKIPPED upstream counts as done; a ready task with a free worker is held by nothing', () => {
    const result = diagnose(
      input('RUNNING_EXECUTION', [
        row('extract', 'SUCCESS'),
        row('load', 'SKIPPED'),
        row('train', 'FAILURE'),
        row('crunch', 'KILL'),
        row('flaky', 'SUBMITTED_SUCCESS', { createdAt: at(16) }),
      ]),
    );
    expect(result.map((t) => [t.name, t.waitingFor, t.detail])).toEqual([
      ['flaky', null, 'being dispatched to a worker of group default'],
      ['report', null, 'ready: its master is creating its attempt'],
    ]);
  });

  it('a worker that lost its task: NEED_FAULT_TOLERANCE waits for a live worker of its group since the loss', () => {
    const result = diagnose(
      input('RUNNING_EXECUTION', [
        row('extract', 'SUCCESS'),
        row('train', 'NEED_FAULT_TOLERANCE', { updatedAt: at(17) }),
      ]),
    );
    expect(result.find((t) => t.name === 'train')).toMatchObject({
      waitingFor: 'worker-group',
      since: iso(17),
      workerGroup: 'gpu',
    });
  });

  it('a command not taken yet: every task waits for a master since the command was written', () => {
    const result = diagnose(
      input('SUBMITTED_SUCCESS', [], {
        instance: { ...input('SUBMITTED_SUCCESS', []).instance, host: null, startTime: null },
        command: { id: 9, type: 'START_PROCESS', createdAt: at(2) },
        cluster: undefined,
      }),
    );
    expect(result).toHaveLength(6);
    for (const t of result) {
      expect(t).toEqual({
        name: t.name,
        state: null,
        waitingFor: 'master',
        since: iso(2),
        detail: 'its START_PROCESS command 9 waits for a master to take it',
        command: { id: 9, type: 'START_PROCESS' },
      });
    }
  });

  it('a master gone from the registry: the tasks not running wait for a master (failover)', () => {
    const result = diagnose(
      input('RUNNING_EXECUTION', [row('extract', 'RUNNING_EXECUTION', { host: 'w:1', startTime: at(12) })], {
        cluster: { ...cluster, masters: [] },
      }),
    );
    expect(named(result, 'extract')).toMatchObject({ waitingFor: null });
    expect(named(result, 'load')).toMatchObject({
      waitingFor: 'master',
      since: iso(20),
      detail: `its master ${MASTER} is not in the registry; failover hands the run to a live master`,
    });
  });

  it('a paused run: every task not succeeded is paused since the pause; a pausing one lets running tasks finish', () => {
    const paused = diagnose(
      input(
        'PAUSE',
        [
          row('extract', 'PAUSE'),
          row('train', 'SUBMITTED_SUCCESS'),
          row('flaky', 'FAILURE'),
          row('crunch', 'SUCCESS'),
        ],
        {
          instance: { ...input('PAUSE', []).instance, host: null, endTime: at(25) },
          cluster: undefined,
        },
      ),
    );
    // A resume runs the failed task again: only the succeeded one is done.
    expect(paused.map((t) => t.name).sort()).toEqual(['extract', 'flaky', 'load', 'report', 'train']);
    for (const t of paused) {
      expect(t).toMatchObject({ waitingFor: 'paused', since: iso(25), detail: 'the run is paused' });
    }
    expect(paused[0]).toMatchObject({ name: 'extract', state: 'PAUSE' });

    const pausing = diagnose(input('READY_PAUSE', [row('extract', 'RUNNING_EXECUTION', { host: 'w:1' })]));
    expect(pausing[0]).toMatchObject({ name: 'extract', waitingFor: null });
    expect(pausing.slice(1).every((t) => t.waitingFor === 'paused')).toBe(true);
  });

  it('a run waiting at its run gate (SERIAL_WAIT): every task not succeeded waits for serial-wait', () => {
    const waiting = diagnose(
      input('SERIAL_WAIT', [], {
        instance: { ...input('SERIAL_WAIT', []).instance, host: null, startTime: null, updatedAt: at(30) },
        cluster: undefined,
      }),
    );
    expect(waiting.map((t) => t.name)).toEqual(graph.order);
    for (const t of waiting) {
      expect(t).toMatchObject({ state: null, waitingFor: 'serial-wait', since: iso(30) });
      expect(t.detail).toMatch(/concurrency limit/);
    }
    // A resume-failed waiting at the gate: the succeeded task is done, the failed one waits too.
    const resumed = diagnose(
      input('SERIAL_WAIT', [row('extract', 'SUCCESS'), row('flaky', 'FAILURE')], {
        instance: { ...input('SERIAL_WAIT', []).instance, host: null },
        cluster: undefined,
      }),
    );
    expect(resumed.map((t) => t.name).sort()).toEqual(['crunch', 'flaky', 'load', 'report', 'train']);
    expect(resumed.every((t) => t.waitingFor === 'serial-wait')).toBe(true);
    expect(
      clusterNeeded({
        instance: { ...input('SERIAL_WAIT', []).instance, host: null },
        command: null,
        tasks: [],
      }),
    ).toBe(false);
  });

  it('has nothing to say of an ended run', () => {
    for (const state of ['SUCCESS', 'FAILURE', 'STOP'] as const) {
      expect(diagnose(input(state, [row('extract', 'FAILURE')]))).toEqual([]);
    }
  });

  it('without a readable definition, reports the rows it has', () => {
    const result = diagnose(
      input(
        'RUNNING_EXECUTION',
        [row('extract', 'SUCCESS'), row('old', 'DELAY_EXECUTION', { retryDueAt: null })],
        {
          graph: new Error('workflow wf version 1 does not exist'),
        },
      ),
    );
    expect(result).toEqual([
      {
        name: 'old',
        state: 'DELAY_EXECUTION',
        waitingFor: 'retry-delay',
        since: iso(11),
        detail: 'attempt 1 failed; the next one starts once its retry delay is over',
      },
    ]);
  });
});

describe('diagnose a DEPENDENT task', () => {
  const dependent = (spec: Partial<DependentTaskDefinition['dependent']> = {}): TaskDefinition => ({
    name: 'wait',
    type: 'DEPENDENT',
    dependent: { workflowCode: 'wf_up', interval: 'day', offset: -1, checkIntervalMs: 10_000, ...spec },
    retries: 0,
    retryIntervalMs: 1000,
    timeoutMs: 0,
    workerGroup: 'default',
  });

  it('waiting: nothing holds it (waitingFor null, running on its master), the detail names what it waits for', () => {
    const waiting = (spec: Partial<DependentTaskDefinition['dependent']>, scheduleTime: Date | null) =>
      diagnose(
        input('RUNNING_EXECUTION', [row('wait', 'RUNNING_EXECUTION', { startTime: at(12) })], {
          graph: buildWorkflowGraph([dependent(spec)], []),
          instance: { ...input('RUNNING_EXECUTION', []).instance, scheduleTime, timezone: 'Asia/Tokyo' },
        }),
      );
    expect(waiting({}, at(0))).toEqual([
      {
        name: 'wait',
        state: 'RUNNING_EXECUTION',
        waitingFor: null,
        since: iso(12),
        detail:
          'waits on its master for a SUCCESS run of workflow wf_up scheduled in' +
          ' [2026-11-29T15:00:00.000Z, 2026-11-30T15:00:00.000Z) (checked every 10000 ms and when a run of it ends)',
      },
    ]);
    expect(waiting({ taskName: 'load', interval: 'week', offset: 0 }, null)[0]?.detail).toBe(
      "waits on its master for task load of workflow wf_up to succeed in a run in the week of this run's" +
        ' schedule time shifted by 0 (checked every 10000 ms and when a run of it ends)',
    );
  });
});

describe('clusterNeeded', () => {
  it('reads the registry only for a run a master drives', () => {
    const facts = (state: WorkflowState, host: string | null, command = false) => ({
      instance: { ...input(state, []).instance, host },
      command: command ? { id: 1, type: 'START_PROCESS' as const, createdAt: at(1) } : null,
      tasks: [],
    });
    expect(clusterNeeded(facts('RUNNING_EXECUTION', MASTER))).toBe(true);
    expect(clusterNeeded(facts('READY_PAUSE', MASTER))).toBe(true);
    expect(clusterNeeded(facts('SUBMITTED_SUCCESS', null, true))).toBe(false);
    expect(clusterNeeded(facts('RUNNING_EXECUTION', null, true))).toBe(false);
    expect(clusterNeeded(facts('PAUSE', null))).toBe(false);
    expect(clusterNeeded(facts('SUCCESS', MASTER))).toBe(false);
  });
});
