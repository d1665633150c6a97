import { nth } from '@porpoise/test-harness/defined';
/**
 * The master against a real Postgres and the JDBC registry on it, booted in-process with
 * MasterModule.forRoot(config). The worker process is played by FakeWorker (real registry key,
 * real gRPC service, real MasterEventClient); the master code is the real one. Rows are written
 * the way the API server writes them. Nothing here asserts timings.
 */
import { status } from '@grpc/grpc-js';
import { createDataSource, runMigrations, WorkflowRunRepository } from '@porpoise/dao';
import { MasterEventClient, RpcCallError, TASK_RESULT_MESSAGES, type TaskFinishedEvent } from '@porpoise/rpc';
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { WorkflowEngineService } from '../src/engine/workflow-engine.service';
import { WorkerDirectoryService } from '../src/registry/worker-directory.service';
import type {
  ConditionsTaskDefinition,
  SubWorkflowTaskDefinition,
  SwitchTaskDefinition,
} from '@porpoise/common';
import { FakeWorker, Journal } from './support/fake-worker';
import { typedTask } from './support/tasks';
import { Db, SECRET, bootMaster, task, waitForMembership, type RunningMaster } from './support/fixtures';

describe('master', () => {
  let pg: TestServer;
  let db: Db;
  let journal: Journal;
  let worker: FakeWorker;
  let a: RunningMaster;
  let events: MasterEventClient;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    db = new Db(pg.endpoint);
    journal = new Journal();
    worker = await FakeWorker.start({ databaseUrl: pg.endpoint, secret: SECRET, journal });
    a = await bootMaster(pg.endpoint);
    await waitForMembership([a]);
    events = new MasterEventClient(SECRET);
  });

  afterAll(async () => {
    events?.close();
    await a?.app.close();
    await worker?.close();
    await db?.close();
    await pg?.dispose();
  });

  afterEach(() => {
    worker.behaviour = () => ({ kind: 'succeed' });
  });

  it('runs a diamond DAG (a → b, a → c, b + c → d) in dependency order and ends SUCCESS', async () => {
    const code = await db.createWorkflow(
      [task('a'), task('b'), task('c'), task('d')],
      [
        { from: 'a', to: 'b' },
        { from: 'a', to: 'c' },
        { from: 'b', to: 'd' },
        { from: 'c', to: 'd' },
      ],
    );
    const id = await db.trigger(code, { who: 'test' });
    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(done.state).toBe('SUCCESS');
    expect(done.host).toBe(a.address);
    expect(done.epoch).toBe(1);
    expect(done.end_time).not.toBeNull();

    const tasks = await db.tasks(id);
    expect(tasks.map((t) => [t.name, t.state, t.attempt, t.host])).toEqual([
      ['a', 'SUCCESS', 1, worker.address],
      ['b', 'SUCCESS', 1, worker.address],
      ['c', 'SUCCESS', 1, worker.address],
      ['d', 'SUCCESS', 1, worker.address],
    ]);
    const ids = new Set(tasks.map((t) => t.id));
    const mine = (e: { taskInstanceId: number }) => ids.has(e.taskInstanceId);
    const dispatched = (n: string) => journal.indexOf('dispatch', n, mine);
    const finishedAccepted = (n: string) =>
      journal.indexOf('finished', n, (e) => mine(e) && e.ack?.status === 'ACCEPTED');
    // Each task was dispatched once, and only after all its upstream tasks' results were accepted.
    expect(journal.dispatches().filter(mine)).toHaveLength(4);
    expect(dispatched('b')).toBeGreaterThan(finishedAccepted('a'));
    expect(dispatched('c')).toBeGreaterThan(finishedAccepted('a'));
    expect(dispatched('d')).toBeGreaterThan(finishedAccepted('b'));
    expect(dispatched('d')).toBeGreaterThan(finishedAccepted('c'));
    // The params reached the TaskSpec unchanged (checked through the worker's view of the run).
    expect(
      journal.entries
        .filter((e) => mine(e) && e.what === 'started')
        .every((e) => e.ack?.status === 'ACCEPTED'),
    ).toBe(true);
  });

  it('fails the instance on a failed task: its downstream tasks are never created, running branches finish, nothing new starts', async () => {
    const code = await db.createWorkflow(
      [task('bad'), task('slow'), task('after_bad'), task('after_slow')],
      [
        { from: 'bad', to: 'after_bad' },
        { from: 'slow', to: 'after_slow' },
      ],
    );
    worker.behaviour = (spec) =>
      spec.taskName === 'bad'
        ? { kind: 'fail', exitCode: 3 }
        : spec.taskName === 'slow'
          ? { kind: 'hold', then: 'SUCCESS' }
          : { kind: 'succeed' };
    const id = await db.trigger(code);
    await db.waitForTask(id, 'bad', 'FAILURE');
    const slow = await db.waitForTask(id, 'slow', 'RUNNING_EXECUTION');
    // The instance waits for the branch that is still running.
    expect((await db.instance(id)).state).toBe('RUNNING_EXECUTION');
    worker.release(slow.id);

    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(done.state).toBe('FAILURE');
    const tasks = await db.tasks(id);
    expect(tasks.map((t) => [t.name, t.state, t.exit_code])).toEqual([
      ['bad', 'FAILURE', 3],
      ['slow', 'SUCCESS', 0],
    ]);
    expect(journal.dispatches('after_bad')).toHaveLength(0);
    expect(journal.dispatches('after_slow')).toHaveLength(0);
  });

  it('retries a failed task: attempt 1 waits in DELAY_EXECUTION, attempt 2 runs and succeeds', async () => {
    const code = await db.createWorkflow([task('flaky', { retries: 2, retryIntervalMs: 1500 })]);
    worker.behaviour = (spec) => (spec.attempt === 1 ? { kind: 'fail', exitCode: 7 } : { kind: 'succeed' });
    const id = await db.trigger(code);
    await db.waitForTask(id, 'flaky', 'DELAY_EXECUTION', 1);
    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(done.state).toBe('SUCCESS');
    const tasks = await db.tasks(id);
    expect(tasks.map((t) => [t.name, t.attempt, t.state, t.exit_code])).toEqual([
      ['flaky', 1, 'FAILURE', 7],
      ['flaky', 2, 'SUCCESS', 0],
    ]);
    const spec2 = journal.dispatches('flaky').find((e) => e.taskInstanceId === nth(tasks, 1).id);
    expect(spec2?.attempt).toBe(2);
  });

  it('a failed task with no retries left fails the instance after its last attempt', async () => {
    const code = await db.createWorkflow(
      [task('always', { retries: 1, retryIntervalMs: 200 }), task('next')],
      [{ from: 'always', to: 'next' }],
    );
    worker.behaviour = () => ({ kind: 'fail' });
    const id = await db.trigger(code);
    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(done.state).toBe('FAILURE');
    expect((await db.tasks(id)).map((t) => [t.name, t.attempt, t.state])).toEqual([
      ['always', 1, 'FAILURE'],
      ['always', 2, 'FAILURE'],
    ]);
  });

  it('stops a running instance: kills its running task, marks it KILL and ends STOP', async () => {
    const code = await db.createWorkflow([task('long'), task('never')], [{ from: 'long', to: 'never' }]);
    worker.behaviour = () => ({ kind: 'hang' });
    const id = await db.trigger(code);
    const long = await db.waitForTask(id, 'long', 'RUNNING_EXECUTION');
    // What the API does for POST /workflow-instances/{id}/stop.
    await db.pool.query(
      `WITH u AS (UPDATE workflow_instance SET state = 'READY_STOP' WHERE id = $1 AND state = 'RUNNING_EXECUTION' RETURNING id)
       SELECT pg_notify('porpoise_instance_control', id::text) FROM u`,
      [id],
    );
    const done = await db.waitForState(id, ['STOP', 'SUCCESS', 'FAILURE']);
    expect(done.state).toBe('STOP');
    expect(done.end_time).not.toBeNull();
    expect(journal.entries.some((e) => e.what === 'kill' && e.taskInstanceId === long.id)).toBe(true);
    expect((await db.tasks(id)).map((t) => [t.name, t.state])).toEqual([['long', 'KILL']]);
  });

  it('a workflow timeout (settings.timeoutMs) stops the instance, kills its running task and ends FAILURE with a message', async () => {
    const code = await db.createWorkflow([task('long'), task('never')], [{ from: 'long', to: 'never' }], {
      timeoutMs: 1500,
    });
    worker.behaviour = () => ({ kind: 'hang' });
    const id = await db.trigger(code);
    const long = await db.waitForTask(id, 'long', 'RUNNING_EXECUTION');
    const done = await db.waitForState(id, ['STOP', 'SUCCESS', 'FAILURE']);
    expect(done.state).toBe('FAILURE');
    expect(done.message).toContain('timed out');
    expect(journal.entries.some((e) => e.what === 'kill' && e.taskInstanceId === long.id)).toBe(true);
    expect((await db.tasks(id)).map((t) => [t.name, t.state])).toEqual([['long', 'KILL']]);
  });

  it('a re-run clears the message of the run before (resubmit)', async () => {
    const code = await db.createWorkflow([task('long')]);
    worker.behaviour = () => ({ kind: 'hang' });
    const { rows } = await db.pool.query<{ id: string }>(
      `INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type, start_time, end_time, message)
       VALUES ($1, 1, 'FAILURE', NULL, 1, 'START_PROCESS', now(), now(), 'the workflow timed out') RETURNING id`,
      [code],
    );
    const id = Number(nth(rows, 0).id);
    const source = createDataSource(pg.endpoint, 'master-test-resubmit');
    await source.initialize();
    try {
      expect(
        await new WorkflowRunRepository(source).resubmit(id, ['FAILURE'], 'REPEAT_RUNNING'),
      ).not.toBeNull();
    } finally {
      await source.destroy();
    }
    // The task hangs: nothing but the resubmit wrote the message.
    expect((await db.instance(id)).message).toBeNull();
    await db.waitForTask(id, 'long', 'RUNNING_EXECUTION');
    expect((await db.instance(id)).message).toBeNull();
    await db.pool.query(
      `WITH u AS (UPDATE workflow_instance SET state = 'READY_STOP' WHERE id = $1 AND state = 'RUNNING_EXECUTION' RETURNING id)
       SELECT pg_notify('porpoise_instance_control', id::text) FROM u`,
      [id],
    );
    expect((await db.waitForState(id, ['STOP', 'SUCCESS', 'FAILURE'])).state).toBe('STOP');
  });

  it('a stored definition the shared model rejects fails the instance at once, with the reason as its message', async () => {
    // A SWITCH target that is not a direct downstream task: parseStoredDefinition refuses it.
    const bad = {
      ...task('s'),
      type: 'SWITCH',
      command: undefined,
      switch: { cases: [{ when: '1 == 1', then: 'elsewhere' }] },
    } as unknown as Parameters<Db['createWorkflow']>[0][number];
    const code = await db.createWorkflow([bad, task('elsewhere')]);
    const id = await db.trigger(code);
    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(done.state).toBe('FAILURE');
    expect(done.message).toMatch(/^cannot run: .*elsewhere/);
    expect(await db.tasks(id)).toEqual([]);
  });

  it('CONDITIONS: waits for its failed upstream task, runs its failure branch, SKIPs the success branch; the handled failure does not fail the instance', async () => {
    const code = await db.createWorkflow(
      [
        task('up'),
        typedTask<ConditionsTaskDefinition>({
          name: 'cond',
          type: 'CONDITIONS',
          conditions: { success: ['ok'], failure: ['bad'] },
        }),
        task('ok'),
        task('bad'),
      ],
      [
        { from: 'up', to: 'cond' },
        { from: 'cond', to: 'ok' },
        { from: 'cond', to: 'bad' },
      ],
    );
    worker.behaviour = (spec) => (spec.taskName === 'up' ? { kind: 'fail' } : { kind: 'succeed' });
    const id = await db.trigger(code);
    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect((await db.tasks(id)).map((t) => [t.name, t.state, t.host])).toEqual([
      ['bad', 'SUCCESS', worker.address],
      ['cond', 'SUCCESS', null],
      ['ok', 'SKIPPED', null],
      ['up', 'FAILURE', worker.address],
    ]);
    expect(done.state).toBe('SUCCESS');
    expect(journal.dispatches('cond')).toEqual([]);
  });

  it('SWITCH: the case that holds over the run params picks its task; the other branches are SKIPPED', async () => {
    const code = await db.createWorkflow(
      [
        typedTask<SwitchTaskDefinition>({
          name: 'sw',
          type: 'SWITCH',
          switch: {
            cases: [
              { when: "${x} == 'a'", then: 'A' },
              { when: "${x} == 'b'", then: 'B' },
            ],
            default: 'D',
          },
        }),
        task('A'),
        task('B'),
        task('D'),
      ],
      [
        { from: 'sw', to: 'A' },
        { from: 'sw', to: 'B' },
        { from: 'sw', to: 'D' },
      ],
      { params: { x: 'a' } },
    );
    const id = await db.trigger(code, { x: 'b' });
    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(done.state).toBe('SUCCESS');
    expect((await db.tasks(id)).map((t) => [t.name, t.state])).toEqual([
      ['A', 'SKIPPED'],
      ['B', 'SUCCESS'],
      ['D', 'SKIPPED'],
      ['sw', 'SUCCESS'],
    ]);
    expect(journal.dispatches('sw')).toEqual([]);
  });

  it('failureStrategy CONTINUE: tasks not downstream of the failure still run; the instance ends FAILURE', async () => {
    const code = await db.createWorkflow(
      [task('bad'), task('afterBad'), task('other'), task('afterOther')],
      [
        { from: 'bad', to: 'afterBad' },
        { from: 'other', to: 'afterOther' },
      ],
      { failureStrategy: 'CONTINUE' },
    );
    // `other` ends after `bad` failed: under END its downstream task would never start.
    worker.behaviour = (spec) =>
      spec.taskName === 'bad'
        ? { kind: 'fail' }
        : spec.taskName === 'other'
          ? { kind: 'hold', then: 'SUCCESS' }
          : { kind: 'succeed' };
    const id = await db.trigger(code);
    const other = await db.waitForTask(id, 'other', 'RUNNING_EXECUTION');
    await db.waitForTask(id, 'bad', 'FAILURE');
    worker.release(other.id);
    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(done.state).toBe('FAILURE');
    expect((await db.tasks(id)).map((t) => [t.name, t.state])).toEqual([
      ['afterOther', 'SUCCESS'],
      ['bad', 'FAILURE'],
      ['other', 'SUCCESS'],
    ]);
  });

  it('SUB_WORKFLOW: starts one child instance (params substituted), waits for it, and ends with its state', async () => {
    const child = await db.createWorkflow([task('inner')]);
    const code = await db.createWorkflow(
      [
        typedTask<SubWorkflowTaskDefinition>({
          name: 'sub',
          type: 'SUB_WORKFLOW',
          subWorkflow: { workflowCode: child, params: { from: 'parent ${who}' } },
        }),
        task('after'),
      ],
      [{ from: 'sub', to: 'after' }],
    );
    const id = await db.trigger(code, { who: 'p1' });
    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(done.state).toBe('SUCCESS');
    const { rows } = await db.pool.query<{
      id: string;
      state: string;
      params: unknown;
      parent_task_instance_id: string;
    }>(
      'SELECT id, state, params, parent_task_instance_id FROM workflow_instance WHERE parent_instance_id = $1',
      [id],
    );
    const subRow = (await db.tasks(id)).find((t) => t.name === 'sub');
    expect(rows.map((r) => [r.state, r.params, Number(r.parent_task_instance_id)])).toEqual([
      ['SUCCESS', { from: 'parent p1' }, subRow?.id],
    ]);
    expect(subRow).toMatchObject({ state: 'SUCCESS', host: null });
    expect(subRow?.message).toContain(`child workflow instance ${rows[0]?.id} succeeded`);
    expect(journal.dispatches('sub')).toEqual([]);
    expect(journal.dispatches('after')).toHaveLength(1);
  });

  it('pauses a running instance: the running task finishes, nothing new starts, the instance ends PAUSE', async () => {
    const code = await db.createWorkflow([task('first'), task('second')], [{ from: 'first', to: 'second' }]);
    worker.behaviour = () => ({ kind: 'hold', then: 'SUCCESS' });
    const id = await db.trigger(code);
    const first = await db.waitForTask(id, 'first', 'RUNNING_EXECUTION');
    await db.pool.query(
      `WITH u AS (UPDATE workflow_instance SET state = 'READY_PAUSE' WHERE id = $1 AND state = 'RUNNING_EXECUTION' RETURNING id)
       SELECT pg_notify('porpoise_instance_control', id::text) FROM u`,
      [id],
    );
    await waitFor(
      'the master to start pausing',
      () => a.app.get(WorkflowEngineService).inspect(id)?.mode === 'pausing',
    );
    worker.release(first.id);
    const done = await db.waitForState(id, ['PAUSE', 'SUCCESS', 'FAILURE', 'STOP']);
    expect(done.state).toBe('PAUSE');
    expect((await db.tasks(id)).map((t) => [t.name, t.state])).toEqual([['first', 'SUCCESS']]);

    // Resume (what the API does): the instance goes back to SUBMITTED_SUCCESS with a command.
    worker.behaviour = () => ({ kind: 'succeed' });
    await db.pool.query(
      `WITH u AS (UPDATE workflow_instance SET state = 'SUBMITTED_SUCCESS', host = NULL WHERE id = $1 AND state = 'PAUSE'
                  RETURNING id, workflow_code, workflow_version)
       INSERT INTO command (type, workflow_code, workflow_version, workflow_instance_id)
       SELECT 'RECOVER_SUSPENDED_PROCESS', workflow_code, workflow_version, id FROM u`,
      [id],
    );
    const resumed = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(resumed.state).toBe('SUCCESS');
    expect(resumed.epoch).toBe(2);
    expect((await db.tasks(id)).map((t) => [t.name, t.attempt, t.state])).toEqual([
      ['first', 1, 'SUCCESS'],
      ['second', 1, 'SUCCESS'],
    ]);
  });

  it('re-runs the tasks of a lost worker elsewhere as a new attempt without using a retry', async () => {
    const doomed = await FakeWorker.start({
      databaseUrl: pg.endpoint,
      secret: SECRET,
      journal,
      group: 'solo',
      behaviour: () => ({ kind: 'hang' }),
    });
    let rescuer: FakeWorker | undefined;
    try {
      const code = await db.createWorkflow([task('only', { workerGroup: 'solo', retries: 0 })]);
      const id = await db.trigger(code);
      const first = await db.waitForTask(id, 'only', 'RUNNING_EXECUTION');
      expect(first.host).toBe(doomed.address);
      // A second worker of the group, then the first one dies.
      rescuer = await FakeWorker.start({ databaseUrl: pg.endpoint, secret: SECRET, journal, group: 'solo' });
      await doomed.close();
      const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
      expect(done.state).toBe('SUCCESS');
      expect((await db.tasks(id)).map((t) => [t.attempt, t.state, t.host])).toEqual([
        [1, 'NEED_FAULT_TOLERANCE', doomed.address],
        [2, 'SUCCESS', rescuer.address],
      ]);
    } finally {
      await doomed.close();
      await rescuer?.close();
    }
  });

  it('re-runs a task its worker killed on its own (stopping) as a new attempt elsewhere, without using a retry or failing the instance', async () => {
    const quitter = await FakeWorker.start({
      databaseUrl: pg.endpoint,
      secret: SECRET,
      journal,
      group: 'quit',
      behaviour: () => ({ kind: 'selfKill', message: TASK_RESULT_MESSAGES.stopping }),
    });
    let other: FakeWorker | undefined;
    try {
      // The quitter is the only worker when attempt 1 is dispatched.
      const code = await db.createWorkflow([task('only', { workerGroup: 'quit', retries: 0 })]);
      const directory = a.app.get(WorkerDirectoryService);
      await waitFor('the master to see the quitter', () => directory.candidates('quit').length === 1);
      other = await FakeWorker.start({ databaseUrl: pg.endpoint, secret: SECRET, journal, group: 'quit' });
      await waitFor('the master to see both', () => directory.candidates('quit').length === 2);
      // Make the quitter look idlest so attempt 1 goes there.
      const gone: string[] = [];
      const stopListening = directory.addListener({
        available: () => undefined,
        removed: (address) => gone.push(address),
      });
      await other.beat({ runningTasks: 10 });
      await waitFor(
        'the load to be seen',
        () => directory.candidates('quit').find((c) => c.address === other!.address)?.runningTasks === 10,
      );
      // The same incarnation's heartbeat: not read as a restart (its tasks would be lost).
      stopListening();
      expect(gone).toEqual([]);
      const id = await db.trigger(code);
      const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
      expect(done.state).toBe('SUCCESS');
      expect((await db.tasks(id)).map((t) => [t.attempt, t.state, t.host, t.message])).toEqual([
        [1, 'NEED_FAULT_TOLERANCE', quitter.address, TASK_RESULT_MESSAGES.stopping],
        [2, 'SUCCESS', other.address, null],
      ]);
    } finally {
      await quitter.close();
      await other?.close();
    }
  });

  it('waits for a worker of the group when none is live, then dispatches to the one that appears', async () => {
    const code = await db.createWorkflow([task('later', { workerGroup: 'late' })]);
    const id = await db.trigger(code);
    await db.waitForTask(id, 'later', 'SUBMITTED_SUCCESS');
    const late = await FakeWorker.start({ databaseUrl: pg.endpoint, secret: SECRET, journal, group: 'late' });
    try {
      expect((await db.waitForState(id, ['SUCCESS', 'FAILURE'])).state).toBe('SUCCESS');
      expect(nth(await db.tasks(id), 0).host).toBe(late.address);
    } finally {
      await late.close();
    }
  });

  it('tries another worker when one refuses the dispatch', async () => {
    const picky = await FakeWorker.start({
      databaseUrl: pg.endpoint,
      secret: SECRET,
      journal,
      group: 'pair',
      behaviour: () => ({ kind: 'refuse', reason: 'over capacity' }),
    });
    const willing = await FakeWorker.start({
      databaseUrl: pg.endpoint,
      secret: SECRET,
      journal,
      group: 'pair',
    });
    try {
      // The refusing worker looks idlest, so it is asked first.
      await willing.beat({ runningTasks: 50 });
      const directory = a.app.get(WorkerDirectoryService);
      await waitFor('the master to see both workers and their load', () => {
        const c = directory.candidates('pair');
        return c.length === 2 && c.find((w) => w.address === willing.address)?.runningTasks === 50;
      });
      const code = await db.createWorkflow([task('one', { workerGroup: 'pair' })]);
      const id = await db.trigger(code);
      expect((await db.waitForState(id, ['SUCCESS', 'FAILURE'])).state).toBe('SUCCESS');
      const row = nth(await db.tasks(id), 0);
      expect(row.host).toBe(willing.address);
      expect(
        journal
          .dispatches('one')
          .filter((e) => e.taskInstanceId === row.id)
          .map((e) => e.worker),
      ).toEqual([picky.address, willing.address]);
    } finally {
      await picky.close();
      await willing.close();
    }
  });

  it('a Dispatch that fails after the worker started the task is settled with TakeOver on that worker, never sent to another', async () => {
    const flaky = await FakeWorker.start({
      databaseUrl: pg.endpoint,
      secret: SECRET,
      journal,
      group: 'flaky',
      behaviour: () => ({ kind: 'startThenError', then: 'SUCCESS' }),
    });
    // Like the real worker: RUNNING for a task it runs, UNKNOWN otherwise.
    flaky.takeOverAnswer = (id) =>
      flaky.started(id)
        ? { status: 'RUNNING', result: null, startTimeMs: Date.now() }
        : { status: 'UNKNOWN', result: null, startTimeMs: 0 };
    const other = await FakeWorker.start({
      databaseUrl: pg.endpoint,
      secret: SECRET,
      journal,
      group: 'flaky',
    });
    try {
      // The failing worker looks idlest, so it is asked first.
      await other.beat({ runningTasks: 50 });
      const directory = a.app.get(WorkerDirectoryService);
      await waitFor('the master to see both workers and their load', () => {
        const c = directory.candidates('flaky');
        return c.length === 2 && c.find((w) => w.address === other.address)?.runningTasks === 50;
      });
      const code = await db.createWorkflow([task('dropped', { workerGroup: 'flaky' })]);
      const id = await db.trigger(code);
      await waitFor('the task to run on the flaky worker', () => flaky.heldTasks().length === 1);
      const taskId = nth(flaky.heldTasks(), 0);
      await db.waitForTask(id, 'dropped', 'RUNNING_EXECUTION');
      flaky.release(taskId);
      expect((await db.waitForState(id, ['SUCCESS', 'FAILURE'])).state).toBe('SUCCESS');
      const rows = await db.tasks(id);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ id: taskId, host: flaky.address, state: 'SUCCESS' });
      expect(journal.dispatches('dropped').map((e) => e.worker)).toEqual([flaky.address]);
      expect(other.started(taskId)).toBe(false);
    } finally {
      await flaky.close();
      await other.close();
    }
  });

  it('recovers a fault-tolerance command: keeps finished tasks and applies a result the worker still holds', async () => {
    const code = await db.createWorkflow(
      [task('done'), task('held'), task('tail')],
      [
        { from: 'done', to: 'held' },
        { from: 'held', to: 'tail' },
      ],
    );
    // An instance a dead master left behind, handed back by failover: host NULL, epoch bumped.
    const { rows } = await db.pool.query<{ id: string }>(
      `INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type, start_time)
       VALUES ($1, 1, 'RUNNING_EXECUTION', NULL, 4, 'START_PROCESS', now()) RETURNING id`,
      [code],
    );
    const id = Number(nth(rows, 0).id);
    const t = await db.pool.query<{ id: string; name: string }>(
      `INSERT INTO task_instance (workflow_instance_id, name, state, host, attempt) VALUES
       ($1, 'done', 'SUCCESS', $2, 1), ($1, 'held', 'RUNNING_EXECUTION', $2, 1) RETURNING id, name`,
      [id, worker.address],
    );
    const heldId = Number(t.rows.find((r) => r.name === 'held')!.id);
    worker.takeOverAnswer = (taskInstanceId) =>
      taskInstanceId === heldId
        ? {
            status: 'FINISHED',
            startTimeMs: Date.now() - 10,
            result: {
              taskInstanceId: heldId,
              workflowInstanceId: id,
              attempt: 1,
              state: 'SUCCESS',
              exitCode: 0,
              startTimeMs: Date.now() - 10,
              endTimeMs: Date.now(),
              workerAddress: worker.address,
              epoch: 4,
              message: '',
              outputs: {},
            },
          }
        : { status: 'UNKNOWN', result: null, startTimeMs: 0 };
    await db.pool.query(
      `INSERT INTO command (type, workflow_code, workflow_version, workflow_instance_id)
       VALUES ('RECOVER_TOLERANCE_FAULT_PROCESS', $1, 1, $2)`,
      [code, id],
    );
    const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
    expect(done.state).toBe('SUCCESS');
    expect(done.epoch).toBe(5);
    expect((await db.tasks(id)).map((r) => [r.name, r.attempt, r.state])).toEqual([
      ['done', 1, 'SUCCESS'],
      ['held', 1, 'SUCCESS'],
      ['tail', 1, 'SUCCESS'],
    ]);
    // Only the task that had not run yet was dispatched; the held result was taken over.
    const rowIds = new Set((await db.tasks(id)).map((r) => r.id));
    expect(
      journal
        .dispatches()
        .filter((e) => rowIds.has(e.taskInstanceId))
        .map((e) => e.taskName),
    ).toEqual(['tail']);
    expect(journal.entries.some((e) => e.what === 'takeOver' && e.taskInstanceId === heldId)).toBe(true);
  });

  it('on a LOST registry session drops its runners, re-registers, and hands the instances back for recovery', async () => {
    const code = await db.createWorkflow(
      [task('survivor'), task('tail')],
      [{ from: 'survivor', to: 'tail' }],
    );
    worker.behaviour = (spec) =>
      spec.taskName === 'survivor' ? { kind: 'hold', then: 'SUCCESS' } : { kind: 'succeed' };
    const id = await db.trigger(code);
    const survivor = await db.waitForTask(id, 'survivor', 'RUNNING_EXECUTION');
    worker.takeOverAnswer = (taskInstanceId) =>
      taskInstanceId === survivor.id
        ? { status: 'RUNNING', result: null, startTimeMs: Date.now() }
        : { status: 'UNKNOWN', result: null, startTimeMs: 0 };
    try {
      // The database expires the master's registry session (as after a long pause or partition).
      await db.pool.query(
        `SELECT registry_remove_client(owner_client_id) FROM registry_data WHERE key = $1`,
        [`/nodes/master/${a.address}`],
      );
      // Dropped (epoch 1), handed back (epoch 2), re-consumed by the new session (epoch 3).
      const engine = a.app.get(WorkflowEngineService);
      await waitFor('the instance to be recovered', () => engine.inspect(id)?.epoch === 3);
      await waitFor('the running task to be re-attached', () =>
        journal.entries.some((e) => e.what === 'takeOver' && e.taskInstanceId === survivor.id),
      );
      await waitForMembership([a]);
      worker.release(survivor.id);
      const done = await db.waitForState(id, ['SUCCESS', 'FAILURE']);
      expect(done.state).toBe('SUCCESS');
      expect(done.epoch).toBe(3);
      expect(done.host).toBe(a.address);
      // Not run again: the same attempt finished on the same worker.
      expect((await db.tasks(id)).map((t) => [t.name, t.attempt, t.state])).toEqual([
        ['survivor', 1, 'SUCCESS'],
        ['tail', 1, 'SUCCESS'],
      ]);
      expect(journal.dispatches('survivor').filter((e) => e.taskInstanceId === survivor.id)).toHaveLength(1);
    } finally {
      worker.takeOverAnswer = () => ({ status: 'UNKNOWN', result: null, startTimeMs: 0 });
    }
  });

  describe('task events', () => {
    const finished = (over: Partial<TaskFinishedEvent>): TaskFinishedEvent => ({
      taskInstanceId: 1,
      workflowInstanceId: 1,
      attempt: 1,
      state: 'SUCCESS',
      exitCode: 0,
      startTimeMs: Date.now() - 5,
      endTimeMs: Date.now(),
      workerAddress: '127.0.0.1:1',
      epoch: 1,
      message: '',
      outputs: {},
      ...over,
    });

    it('answers NOT_OWNER for an instance another master drives, OBSOLETE for a finished one or an attempt no longer active', async () => {
      const code = await db.createWorkflow([task('x'), task('y')]);
      const { rows } = await db.pool.query<{ id: string }>(
        `INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type)
         VALUES ($1, 1, 'RUNNING_EXECUTION', '10.9.9.9:5678', 3, 'START_PROCESS'),
                ($1, 1, 'SUCCESS', '10.9.9.9:5678', 3, 'START_PROCESS') RETURNING id`,
        [code],
      );
      const foreign = Number(nth(rows, 0).id);
      const finishedOne = Number(nth(rows, 1).id);
      const t = await db.pool.query<{ id: string; name: string }>(
        `INSERT INTO task_instance (workflow_instance_id, name, state, host, attempt) VALUES
         ($1, 'x', 'RUNNING_EXECUTION', '127.0.0.1:1', 1), ($1, 'y', 'NEED_FAULT_TOLERANCE', '127.0.0.1:1', 1)
         RETURNING id, name`,
        [foreign],
      );
      const running = Number(t.rows.find((r) => r.name === 'x')!.id);
      const superseded = Number(t.rows.find((r) => r.name === 'y')!.id);
      try {
        const ack = await events.taskFinished(
          a.address,
          finished({ workflowInstanceId: foreign, taskInstanceId: running, epoch: 3 }),
        );
        expect(ack.status).toBe('NOT_OWNER');
        expect(ack.reason).toContain('10.9.9.9:5678');
        const ack2 = await events.taskFinished(
          a.address,
          finished({ workflowInstanceId: finishedOne, epoch: 3 }),
        );
        expect(ack2.status).toBe('OBSOLETE');
        const started = (taskInstanceId: number) =>
          events.taskStarted(a.address, {
            taskInstanceId,
            workflowInstanceId: foreign,
            attempt: 1,
            startTimeMs: Date.now(),
            workerAddress: '127.0.0.1:1',
            epoch: 3,
          });
        expect((await started(running)).status).toBe('NOT_OWNER');
        // Re-run after a failover: a late run of the old attempt is told to stop (OBSOLETE).
        const late = await started(superseded);
        expect(late.status).toBe('OBSOLETE');
        expect(late.reason).toContain('NEED_FAULT_TOLERANCE');
        // Not a task of this instance at all.
        expect((await started(999_999)).status).toBe('OBSOLETE');
        // Reported by a worker the attempt is not assigned to.
        const elsewhere = await events.taskFinished(
          a.address,
          finished({
            workflowInstanceId: foreign,
            taskInstanceId: running,
            epoch: 3,
            workerAddress: '127.0.0.1:2',
          }),
        );
        expect(elsewhere.status).toBe('OBSOLETE');
      } finally {
        // Not left for the failover sweeps of later tests (10.9.9.9 is no live master).
        await db.pool.query(`UPDATE workflow_instance SET state = 'FAILURE' WHERE id = $1`, [foreign]);
      }
    });

    it.each([
      ['taskInstanceId', { taskInstanceId: 0 }],
      ['workflowInstanceId', { workflowInstanceId: -4 }],
      ['attempt', { attempt: 0 }],
      ['state', { state: 'DONE' as never }],
      ['workerAddress', { workerAddress: 'nowhere' }],
      ['epoch', { epoch: 0 }],
    ])('answers INVALID_ARGUMENT naming %s', async (field, over) => {
      const err = await events.taskFinished(a.address, finished(over)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RpcCallError);
      expect((err as RpcCallError).code).toBe(status.INVALID_ARGUMENT);
      expect((err as RpcCallError).message).toContain(`${field}:`);
    });

    it('refuses a call without the cluster secret', async () => {
      const stranger = new MasterEventClient('not-the-secret-at-all');
      try {
        const err = await stranger.taskFinished(a.address, finished({})).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect((err as RpcCallError).code).toBe(status.UNAUTHENTICATED);
      } finally {
        stranger.close();
      }
    });
  });

  describe('with two masters', () => {
    let b: RunningMaster;
    let bClosed = false;

    beforeAll(async () => {
      b = await bootMaster(pg.endpoint);
      await waitForMembership([a, b]);
    });

    afterAll(async () => {
      if (!bClosed) await b?.app.close();
    });

    it('consumes each of 50 commands exactly once, both masters taking their slot', async () => {
      const code = await db.createWorkflow([task('one')]);
      const ids = await Promise.all(Array.from({ length: 50 }, () => db.trigger(code)));
      await waitFor(
        'all 50 instances to finish',
        async () => {
          const { rows } = await db.pool.query<{ n: string }>(
            `SELECT count(*) AS n FROM workflow_instance WHERE id = ANY($1::bigint[]) AND state = 'SUCCESS'`,
            [ids],
          );
          return Number(nth(rows, 0).n) === 50;
        },
        60_000,
        100,
      );
      const { rows } = await db.pool.query<{ host: string; epoch: string; n: string }>(
        `SELECT host, epoch, count(*) AS n FROM workflow_instance WHERE id = ANY($1::bigint[]) GROUP BY host, epoch`,
        [ids],
      );
      // epoch 1 everywhere: each instance was taken by exactly one consume transaction.
      expect(rows.every((r) => Number(r.epoch) === 1)).toBe(true);
      expect(rows.map((r) => r.host).sort()).toEqual([a.address, b.address].sort());
      expect(rows.reduce((s, r) => s + Number(r.n), 0)).toBe(50);
      const left = await db.pool.query(
        `SELECT 1 FROM command WHERE workflow_instance_id = ANY($1::bigint[])`,
        [ids],
      );
      expect(left.rowCount).toBe(0);
      const taskRows = await db.pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM task_instance WHERE workflow_instance_id = ANY($1::bigint[])`,
        [ids],
      );
      expect(Number(nth(taskRows.rows, 0).n)).toBe(50);
    });

    it('fires a due schedule once', async () => {
      const code = await db.createWorkflow([task('cron')]);
      // Due now; the next fire is next New Year, so the only possible fire is this one.
      const { rows } = await db.pool.query<{ id: string }>(
        `INSERT INTO schedule (workflow_code, cron, timezone, next_fire_time)
         VALUES ($1, '0 0 1 1 *', 'Europe/Berlin', now() - interval '1 second') RETURNING id`,
        [code],
      );
      const scheduleId = Number(nth(rows, 0).id);
      const instance = await waitFor(
        'the schedule to fire',
        async () => {
          const r = await db.pool.query<{ id: string }>(
            `SELECT id FROM workflow_instance WHERE workflow_code = $1`,
            [code],
          );
          return r.rows[0] ? Number(nth(r.rows, 0).id) : undefined;
        },
        30_000,
      );
      expect((await db.waitForState(instance, ['SUCCESS', 'FAILURE'])).state).toBe('SUCCESS');
      const all = await db.pool.query<{ command_type: string; schedule_time: Date | null; timezone: string }>(
        `SELECT command_type, schedule_time, timezone FROM workflow_instance WHERE workflow_code = $1`,
        [code],
      );
      expect(all.rows).toHaveLength(1);
      expect(nth(all.rows, 0).command_type).toBe('SCHEDULER');
      // The run's date built-ins are computed in its schedule's time zone.
      expect(nth(all.rows, 0).timezone).toBe('Europe/Berlin');
      expect(nth(all.rows, 0).schedule_time).not.toBeNull();
      const next = await db.pool.query<{ next: Date }>(
        `SELECT next_fire_time AS next FROM schedule WHERE id = $1`,
        [scheduleId],
      );
      expect(nth(next.rows, 0).next.getTime()).toBeGreaterThan(Date.now());
    });

    it('a master that is closed deregisters at once and the other one takes every slot', async () => {
      bClosed = true;
      await b.app.close();
      const key = await db.pool.query(`SELECT 1 FROM registry_data WHERE key = $1`, [
        `/nodes/master/${b.address}`,
      ]);
      expect(key.rowCount).toBe(0);
      await waitForMembership([a]);
      expect(a.membership.slot()).toEqual({ slot: 0, count: 1 });
      const code = await db.createWorkflow([task('after')]);
      const id = await db.trigger(code);
      expect((await db.waitForState(id, ['SUCCESS', 'FAILURE'])).host).toBe(a.address);
    });
  });
});
