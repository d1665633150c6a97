import type { WorkflowState } from '@porpoise/common';
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { nth } from '@porpoise/test-harness/defined';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import {
  createDataSource,
  firstRow,
  queryRows,
  runMigrations,
  STOPPED_WHILE_PAUSED,
  SubWorkflowRepository,
  WorkflowRunRepository,
  type InstanceFence,
  type StartChildOutcome,
} from '../src';

/**
 * SUB_WORKFLOW support in the database (DESIGN.md section 9): exactly one child per parent task
 * attempt whatever races, every start fenced on the parent, the parent's master woken when a
 * child ends, and stop/pause reaching the whole tree (stop also ends a paused instance).
 */
describe('sub-workflows', () => {
  const ME = '127.0.0.1:5690';
  const OTHER = '127.0.0.1:5691';
  let pg: TestServer;
  let source: DataSource;
  let listener: Client;
  /** Polls pg_stat_activity outside the pool (the pool may be all busy waiting). */
  let watcher: Client;
  let subs: SubWorkflowRepository;
  let runs: WorkflowRunRepository;
  const notified: string[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    source = await createDataSource(pg.endpoint, 'sub-workflow-test').initialize();
    subs = new SubWorkflowRepository(source);
    runs = new WorkflowRunRepository(source);
    listener = new Client({ connectionString: pg.endpoint });
    await listener.connect();
    listener.on('notification', (n) => {
      if (n.channel === 'porpoise_instance_control' && n.payload !== undefined) notified.push(n.payload);
    });
    await listener.query('LISTEN porpoise_instance_control');
    watcher = new Client({ connectionString: pg.endpoint });
    await watcher.connect();
    await define('parent_wf', 1);
    // The child's workflow is at version 3: a child starts at the current version.
    await define('child_wf', 3);
  });

  afterAll(async () => {
    await listener?.end();
    await watcher?.end();
    await source?.destroy();
    await pg?.dispose();
  });

  async function define(code: string, version: number): Promise<void> {
    await source.query(`INSERT INTO workflow_definition (code, name, version) VALUES ($1, $1, $2)`, [
      code,
      version,
    ]);
    for (let v = 1; v <= version; v++) {
      await source.query(
        `INSERT INTO workflow_definition_version (code, version, name, tasks, edges) VALUES ($1, $2, $1, '[]', '[]')`,
        [code, v],
      );
    }
  }

  interface InstanceSpec {
    state: WorkflowState;
    host?: string | null;
    parent?: { instanceId: number; taskId: number };
  }

  /** An instance row as a master or the API leaves it (no command unless SUBMITTED_SUCCESS). */
  async function instance(spec: InstanceSpec, code = 'parent_wf'): Promise<number> {
    const rows = await queryRows<{ id: string }>(
      source,
      `WITH i AS (
         INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type,
           parent_instance_id, parent_task_instance_id)
         VALUES ($1, 1, $2, $3, 1, 'START_PROCESS', $4, $5) RETURNING id, state),
       c AS (
         INSERT INTO command (type, workflow_code, workflow_version, workflow_instance_id)
         SELECT 'START_PROCESS', $1, 1, id FROM i WHERE state = 'SUBMITTED_SUCCESS')
       SELECT id FROM i`,
      [
        code,
        spec.state,
        spec.host === undefined ? (spec.state === 'SUBMITTED_SUCCESS' ? null : ME) : spec.host,
        spec.parent?.instanceId ?? null,
        spec.parent?.taskId ?? null,
      ],
    );
    return Number(firstRow(rows, 'instance').id);
  }

  /** A RUNNING_EXECUTION instance this test's master owns at epoch 1. */
  async function ownedParent(): Promise<InstanceFence> {
    return { instanceId: await instance({ state: 'RUNNING_EXECUTION' }), host: ME, epoch: 1 };
  }

  async function task(instanceId: number, name: string, state: string): Promise<number> {
    const rows = await queryRows<{ id: string }>(
      source,
      `INSERT INTO task_instance (workflow_instance_id, name, state) VALUES ($1, $2, $3) RETURNING id`,
      [instanceId, name, state],
    );
    return Number(firstRow(rows, 'task').id);
  }

  async function row(id: number): Promise<{ state: WorkflowState; end_time: Date | null }> {
    const rows = await queryRows<{ state: WorkflowState; end_time: Date | null }>(
      source,
      'SELECT state, end_time FROM workflow_instance WHERE id = $1',
      [id],
    );
    return firstRow(rows, `instance ${id}`);
  }

  const stateOf = async (id: number): Promise<WorkflowState> => (await row(id)).state;

  async function tasksOf(
    id: number,
  ): Promise<Array<{ name: string; state: string; message: string | null }>> {
    return queryRows(
      source,
      'SELECT name, state, message FROM task_instance WHERE workflow_instance_id = $1 ORDER BY id',
      [id],
    );
  }

  async function commandsOf(id: number): Promise<string[]> {
    const rows = await queryRows<{ type: string }>(
      source,
      'SELECT type FROM command WHERE workflow_instance_id = $1 ORDER BY id',
      [id],
    );
    return rows.map((r) => r.type);
  }

  async function childrenOfTask(taskId: number): Promise<Array<Record<string, unknown>>> {
    return queryRows(
      source,
      `SELECT id, workflow_code, workflow_version, state, host, command_type, params, schedule_time,
              parent_instance_id, parent_task_instance_id
       FROM workflow_instance WHERE parent_task_instance_id = $1`,
      [taskId],
    );
  }

  /** How many sessions wait for a lock while running a statement that starts with prefix (LIKE). */
  async function waiters(prefix: string): Promise<number> {
    const res = await watcher.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
      [prefix],
    );
    return Number(nth(res.rows, 0).n);
  }

  /** Waits until every id was notified (NOTIFYs arrive in commit order, after the commit). */
  const notifiedAll = (ids: number[]): Promise<boolean> =>
    waitFor(
      `notifications for ${ids.join(', ')}`,
      () => ids.every((id) => notified.includes(String(id))),
      10_000,
    );

  describe('startChild', () => {
    it('starts exactly one child per parent task attempt under 10 concurrent calls, and every answer names it', async () => {
      const fence = await ownedParent();
      const taskId = await task(fence.instanceId, 'sub', 'RUNNING_EXECUTION');
      const input = {
        parentTaskInstanceId: taskId,
        workflowCode: 'child_wf',
        params: { region: 'eu' },
        scheduleTime: new Date('2030-01-02T03:04:05Z'),
      };
      // All ten statements start before any commits: a session locks the parent row, so each
      // waits (after taking its snapshot) for the fence's FOR SHARE; then it lets them all go.
      const blocker = new Client({ connectionString: pg.endpoint });
      await blocker.connect();
      let outcomes: StartChildOutcome[];
      try {
        await blocker.query('BEGIN');
        await blocker.query('SELECT id FROM workflow_instance WHERE id = $1 FOR UPDATE', [fence.instanceId]);
        const pending = Promise.all(Array.from({ length: 10 }, () => subs.startChild(fence, input)));
        await waitFor(
          'ten startChild statements waiting',
          async () => (await waiters('WITH own AS%')) === 10,
        );
        await blocker.query('ROLLBACK');
        outcomes = await pending;
      } finally {
        await blocker.end();
      }

      const children = await childrenOfTask(taskId);
      expect(children).toHaveLength(1);
      const child = nth(children, 0);
      const childId = Number(child.id);
      expect(outcomes.filter((o) => o.created)).toHaveLength(1);
      for (const o of outcomes) expect(o).toMatchObject({ owned: true, childInstanceId: childId });
      expect(child).toMatchObject({
        workflow_code: 'child_wf',
        workflow_version: 3,
        state: 'SUBMITTED_SUCCESS',
        host: null,
        command_type: 'START_PROCESS',
        params: { region: 'eu' },
        schedule_time: new Date('2030-01-02T03:04:05Z'),
        parent_instance_id: String(fence.instanceId),
        parent_task_instance_id: String(taskId),
      });
      expect(await commandsOf(childId)).toEqual(['START_PROCESS']);

      // Asked again later (a successor master re-adopting the parent): the same child, nothing new.
      const again = await subs.startChild(fence, input);
      expect(again).toEqual({ owned: true, childInstanceId: childId, created: false });
      expect(await commandsOf(childId)).toEqual(['START_PROCESS']);
    });

    it('answers with a child committed while its statement waited on the unique key (not in its snapshot)', async () => {
      const fence = await ownedParent();
      const taskId = await task(fence.instanceId, 'sub', 'RUNNING_EXECUTION');
      // Another session (the parent's previous master, say) inserts the child and has not committed.
      const other = new Client({ connectionString: pg.endpoint });
      await other.connect();
      try {
        await other.query('BEGIN');
        const inserted = await other.query<{ id: string }>(
          `INSERT INTO workflow_instance (workflow_code, workflow_version, state, command_type,
             parent_instance_id, parent_task_instance_id)
           VALUES ('child_wf', 3, 'SUBMITTED_SUCCESS', 'START_PROCESS', $1, $2) RETURNING id`,
          [fence.instanceId, taskId],
        );
        const theirs = Number(nth(inserted.rows, 0).id);
        const pending = subs.startChild(fence, {
          parentTaskInstanceId: taskId,
          workflowCode: 'child_wf',
          params: {},
          scheduleTime: null,
        });
        // startChild's insert waits for the other transaction on the unique index.
        await waitFor(
          'startChild waiting on the unique key',
          async () => (await waiters('WITH own AS%')) > 0,
        );
        await other.query('COMMIT');
        expect(await pending).toEqual({ owned: true, childInstanceId: theirs, created: false });
        expect(await childrenOfTask(taskId)).toHaveLength(1);
        // The command is the inserter's business: startChild added none.
        expect(await commandsOf(theirs)).toEqual([]);
      } finally {
        await other.end();
      }
    });

    it('is refused when the fence is gone or the parent has ended: no child, no command', async () => {
      const fence = await ownedParent();
      const taskId = await task(fence.instanceId, 'sub', 'RUNNING_EXECUTION');
      const input = {
        parentTaskInstanceId: taskId,
        workflowCode: 'child_wf',
        params: {},
        scheduleTime: null,
      };

      for (const stale of [
        { ...fence, epoch: fence.epoch + 1 },
        { ...fence, epoch: fence.epoch - 1 },
        { ...fence, host: OTHER },
      ]) {
        const outcome = await subs.startChild(stale, input);
        expect(outcome).toMatchObject({ owned: false, childInstanceId: undefined, created: false });
        expect(outcome.reason).toMatch(/is not owned by/);
      }
      // A takeover moved the instance on (host NULL, epoch + 1): the old fence is gone.
      await source.query('UPDATE workflow_instance SET host = NULL, epoch = epoch + 1 WHERE id = $1', [
        fence.instanceId,
      ]);
      expect((await subs.startChild(fence, input)).owned).toBe(false);
      // The same owner, but the parent has ended.
      await source.query("UPDATE workflow_instance SET host = $2, state = 'SUCCESS' WHERE id = $1", [
        fence.instanceId,
        ME,
      ]);
      expect((await subs.startChild({ ...fence, epoch: fence.epoch + 1 }, input)).owned).toBe(false);
      expect(await childrenOfTask(taskId)).toEqual([]);
    });

    it('names an unknown workflow, or a task of another instance, and starts nothing', async () => {
      const fence = await ownedParent();
      const taskId = await task(fence.instanceId, 'sub', 'RUNNING_EXECUTION');
      const unknown = await subs.startChild(fence, {
        parentTaskInstanceId: taskId,
        workflowCode: 'no_such_wf',
        params: {},
        scheduleTime: null,
      });
      expect(unknown).toEqual({
        owned: true,
        childInstanceId: undefined,
        created: false,
        reason: 'workflow "no_such_wf" not found',
      });

      const elsewhere = await task(
        await instance({ state: 'RUNNING_EXECUTION' }),
        'sub',
        'RUNNING_EXECUTION',
      );
      const foreign = await subs.startChild(fence, {
        parentTaskInstanceId: elsewhere,
        workflowCode: 'child_wf',
        params: {},
        scheduleTime: null,
      });
      expect(foreign.childInstanceId).toBeUndefined();
      expect(foreign.reason).toMatch(
        new RegExp(`task instance ${elsewhere} is not a task of workflow instance`),
      );
      expect(await childrenOfTask(taskId)).toEqual([]);
      expect(await childrenOfTask(elsewhere)).toEqual([]);
    });

    it('starts the child of a parent already stopping (pausing) as STOP (PAUSE), with no command', async () => {
      for (const [parentState, childState] of [
        ['READY_STOP', 'STOP'],
        ['READY_PAUSE', 'PAUSE'],
      ] as const) {
        const fence = await ownedParent();
        const taskId = await task(fence.instanceId, 'sub', 'RUNNING_EXECUTION');
        await source.query('UPDATE workflow_instance SET state = $2 WHERE id = $1', [
          fence.instanceId,
          parentState,
        ]);
        const outcome = await subs.startChild(fence, {
          parentTaskInstanceId: taskId,
          workflowCode: 'child_wf',
          params: {},
          scheduleTime: null,
        });
        expect(outcome).toMatchObject({ owned: true, created: true });
        const childId = Number(outcome.childInstanceId);
        expect(await stateOf(childId)).toBe(childState);
        expect(await commandsOf(childId)).toEqual([]);
        // Inserted final: the parent's master is told (the trigger fires on INSERT too).
        await notifiedAll([fence.instanceId]);
      }
    });
  });

  describe('resumeChild', () => {
    async function pausedChild(parentState: WorkflowState = 'RUNNING_EXECUTION') {
      const fence = { instanceId: await instance({ state: parentState }), host: ME, epoch: 1 };
      const taskId = await task(fence.instanceId, 'sub', 'PAUSE');
      const child = await instance(
        { state: 'PAUSE', host: null, parent: { instanceId: fence.instanceId, taskId } },
        'child_wf',
      );
      // Paused a minute ago: the resume adds that minute to the time the child spent paused.
      await source.query(
        "UPDATE workflow_instance SET end_time = now() - interval '60 seconds' WHERE id = $1",
        [child],
      );
      return { fence, taskId, child };
    }

    const taskState = async (id: number) =>
      firstRow(
        await queryRows<{ state: string }>(source, 'SELECT state FROM task_instance WHERE id = $1', [id]),
        'task',
      ).state;

    const commandsOf = async (id: number) =>
      (
        await queryRows<{ type: string }>(
          source,
          'SELECT type FROM command WHERE workflow_instance_id = $1',
          [id],
        )
      ).map((r) => r.type);

    it('moves the PAUSE task row back to running and resumes its paused child, in one statement', async () => {
      const { fence, taskId, child } = await pausedChild();
      expect(await subs.resumeChild(fence, taskId)).toEqual({ owned: true, childInstanceId: child });
      expect(await taskState(taskId)).toBe('RUNNING_EXECUTION');
      const resumed = firstRow(
        await queryRows<{ state: string; command_type: string; end_time: Date | null; paused_ms: string }>(
          source,
          'SELECT state, command_type, end_time, paused_ms FROM workflow_instance WHERE id = $1',
          [child],
        ),
        'child',
      );
      expect(resumed).toMatchObject({
        state: 'SUBMITTED_SUCCESS',
        command_type: 'RECOVER_SUSPENDED_PROCESS',
        end_time: null,
      });
      expect(Number(resumed.paused_ms)).toBeGreaterThanOrEqual(60_000);
      expect(await commandsOf(child)).toEqual(['RECOVER_SUSPENDED_PROCESS']);
      // Done once: asked again (a failover after it) it changes nothing.
      expect(await subs.resumeChild(fence, taskId)).toEqual({ owned: true, childInstanceId: undefined });
      expect(await commandsOf(child)).toEqual(['RECOVER_SUSPENDED_PROCESS']);
    });

    it('changes nothing without the fence; keeps the child paused while the parent is asked to pause again', async () => {
      const { fence, taskId, child } = await pausedChild();
      expect(await subs.resumeChild({ ...fence, epoch: 2 }, taskId)).toEqual({
        owned: false,
        childInstanceId: undefined,
      });
      expect(await taskState(taskId)).toBe('PAUSE');
      expect(await stateOf(child)).toBe('PAUSE');

      const again = await pausedChild('READY_PAUSE');
      expect(await subs.resumeChild(again.fence, again.taskId)).toEqual({
        owned: true,
        childInstanceId: undefined,
      });
      expect(await stateOf(again.child)).toBe('PAUSE');
      expect(await commandsOf(again.child)).toEqual([]);
    });
  });

  it('a resume takes the time spent paused off the run time its timeout counts; a re-run starts from zero', async () => {
    const id = await instance({ state: 'PAUSE', host: null });
    await source.query(
      "UPDATE workflow_instance SET start_time = now() - interval '100 seconds', end_time = now() - interval '90 seconds' WHERE id = $1",
      [id],
    );
    expect(await runs.resubmit(id, ['PAUSE'], 'RECOVER_SUSPENDED_PROCESS')).not.toBeNull();
    const pausedMs = async () =>
      Number(
        firstRow(
          await queryRows<{ paused_ms: string }>(
            source,
            'SELECT paused_ms FROM workflow_instance WHERE id = $1',
            [id],
          ),
          'i',
        ).paused_ms,
      );
    expect(await pausedMs()).toBeGreaterThanOrEqual(90_000);
    expect(await pausedMs()).toBeLessThan(100_000);
    await source.query("UPDATE workflow_instance SET state = 'FAILURE', end_time = now() WHERE id = $1", [
      id,
    ]);
    expect(await runs.resubmit(id, ['FAILURE'], 'REPEAT_RUNNING')).not.toBeNull();
    expect(await pausedMs()).toBe(0);
  });

  it('childStates lists the children of a parent with their task, state and message', async () => {
    const parent = await instance({ state: 'RUNNING_EXECUTION' });
    const t1 = await task(parent, 'a', 'RUNNING_EXECUTION');
    const t2 = await task(parent, 'b', 'RUNNING_EXECUTION');
    const c1 = await instance({
      state: 'RUNNING_EXECUTION',
      host: OTHER,
      parent: { instanceId: parent, taskId: t1 },
    });
    const c2 = await instance({ state: 'FAILURE', parent: { instanceId: parent, taskId: t2 } });
    await source.query("UPDATE workflow_instance SET message = 'timed out' WHERE id = $1", [c2]);
    expect(await subs.childStates(parent)).toEqual([
      { parentTaskInstanceId: t1, childInstanceId: c1, state: 'RUNNING_EXECUTION', message: null },
      { parentTaskInstanceId: t2, childInstanceId: c2, state: 'FAILURE', message: 'timed out' },
    ]);
    expect(await subs.childStates(c1)).toEqual([]);
  });

  it("notifies the parent's id when a child reaches a final state, and only then", async () => {
    const parent = await instance({ state: 'RUNNING_EXECUTION' });
    const child = await instance({
      state: 'SUBMITTED_SUCCESS',
      parent: { instanceId: parent, taskId: await task(parent, 'sub', 'RUNNING_EXECUTION') },
    });
    const marker = await instance({ state: 'RUNNING_EXECUTION' });
    const markerChild = await instance({
      state: 'RUNNING_EXECUTION',
      parent: { instanceId: marker, taskId: await task(marker, 'sub', 'RUNNING_EXECUTION') },
    });
    const topLevel = await instance({ state: 'RUNNING_EXECUTION' });
    const before = notified.length;
    const setState = (id: number, state: WorkflowState) =>
      source.query('UPDATE workflow_instance SET state = $2, updated_at = now() WHERE id = $1', [id, state]);

    // Not final: no news for the parent.
    await setState(child, 'RUNNING_EXECUTION');
    await setState(child, 'READY_STOP');
    // Final, but no parent.
    await setState(topLevel, 'SUCCESS');
    // Final: the parent is told.
    await setState(child, 'STOP');
    // A write that keeps the final state (a late, repeated finish) is no news.
    await setState(child, 'STOP');
    // Another parent's child ends last: once its notification is in, every earlier one is too
    // (NOTIFYs are delivered in commit order).
    await setState(markerChild, 'FAILURE');
    await notifiedAll([marker]);
    expect(notified.slice(before)).toEqual([String(parent), String(marker)]);
  });

  describe('stop and pause reach the sub-workflow tree', () => {
    /**
     * parent (state given) with tasks done (SUCCESS), waiting (PAUSE) and sub (SUB_WORKFLOW), and
     * under sub: a paused child with a paused task and a paused grandchild, a running child (on
     * another master), a submitted child (command queued), a finished child.
     */
    async function tree(parentState: WorkflowState) {
      const parent = await instance({ state: parentState });
      await task(parent, 'done', 'SUCCESS');
      await task(parent, 'waiting', 'PAUSE');
      const sub = await task(parent, 'sub', 'PAUSE');
      const under = { instanceId: parent, taskId: sub };
      const paused = await instance({ state: 'PAUSE', parent: under });
      await task(paused, 'inner', 'PAUSE');
      const pausedSub = await task(paused, 'inner_sub', 'PAUSE');
      const grandchild = await instance({
        state: 'PAUSE',
        parent: { instanceId: paused, taskId: pausedSub },
      });
      // The other children hang off their own (made-up) task rows: one child per task attempt.
      const more = async (state: WorkflowState, host?: string) =>
        instance({
          state,
          host,
          parent: { instanceId: parent, taskId: await task(parent, `sub_${state}`, 'PAUSE') },
        });
      const running = await more('RUNNING_EXECUTION', OTHER);
      const submitted = await more('SUBMITTED_SUCCESS');
      const finished = await more('SUCCESS');
      return { parent, paused, grandchild, running, submitted, finished };
    }

    it('stop of a paused parent ends it and its paused descendants, asks the running ones, ends the submitted ones', async () => {
      const t = await tree('PAUSE');
      expect(await runs.stopPaused(t.parent)).toBe(true);

      const parentRow = await row(t.parent);
      expect(parentRow.state).toBe('STOP');
      expect(parentRow.end_time).toBeInstanceOf(Date);
      expect(await tasksOf(t.parent)).toEqual([
        { name: 'done', state: 'SUCCESS', message: null },
        { name: 'waiting', state: 'KILL', message: STOPPED_WHILE_PAUSED },
        { name: 'sub', state: 'KILL', message: STOPPED_WHILE_PAUSED },
        { name: 'sub_RUNNING_EXECUTION', state: 'KILL', message: STOPPED_WHILE_PAUSED },
        { name: 'sub_SUBMITTED_SUCCESS', state: 'KILL', message: STOPPED_WHILE_PAUSED },
        { name: 'sub_SUCCESS', state: 'KILL', message: STOPPED_WHILE_PAUSED },
      ]);
      expect(await stateOf(t.paused)).toBe('STOP');
      expect((await tasksOf(t.paused)).map((x) => x.state)).toEqual(['KILL', 'KILL']);
      expect(await stateOf(t.grandchild)).toBe('STOP');
      expect(await stateOf(t.running)).toBe('READY_STOP');
      expect(await stateOf(t.submitted)).toBe('STOP');
      expect(await commandsOf(t.submitted)).toEqual([]);
      expect(await stateOf(t.finished)).toBe('SUCCESS');
      // The running child's master is asked.
      await notifiedAll([t.running]);

      // Stopped already: a second stop changes nothing.
      expect(await runs.stopPaused(t.parent)).toBe(false);
    });

    it('stopPaused of an instance that is not PAUSE changes nothing in its tree', async () => {
      const t = await tree('RUNNING_EXECUTION');
      expect(await runs.stopPaused(t.parent)).toBe(false);
      expect(await stateOf(t.parent)).toBe('RUNNING_EXECUTION');
      expect(await stateOf(t.paused)).toBe('PAUSE');
      expect(await stateOf(t.grandchild)).toBe('PAUSE');
      expect(await stateOf(t.running)).toBe('RUNNING_EXECUTION');
      expect(await stateOf(t.submitted)).toBe('SUBMITTED_SUCCESS');
      expect(await commandsOf(t.submitted)).toEqual(['START_PROCESS']);
    });

    it('stop of a running parent asks it and every running descendant, and ends the rest', async () => {
      const t = await tree('RUNNING_EXECUTION');
      // The running child has a running child of its own (its master is yet another one).
      const deepTask = await task(t.running, 'deep', 'RUNNING_EXECUTION');
      const deep = await instance({
        state: 'RUNNING_EXECUTION',
        host: OTHER,
        parent: { instanceId: t.running, taskId: deepTask },
      });
      expect(await runs.requestHalt(t.parent, 'READY_STOP')).toBe(true);
      expect(await stateOf(t.parent)).toBe('READY_STOP');
      expect(await stateOf(t.running)).toBe('READY_STOP');
      expect(await stateOf(deep)).toBe('READY_STOP');
      expect(await stateOf(t.paused)).toBe('STOP');
      expect(await stateOf(t.grandchild)).toBe('STOP');
      expect(await stateOf(t.submitted)).toBe('STOP');
      expect(await commandsOf(t.submitted)).toEqual([]);
      expect(await stateOf(t.finished)).toBe('SUCCESS');
      await notifiedAll([t.parent, t.running, deep]);
      // The running parent's own tasks are its master's business.
      expect((await tasksOf(t.parent)).map((x) => x.state)).toContain('PAUSE');
    });

    it('pause of a running parent asks the running descendants, pauses the submitted ones, keeps the paused ones', async () => {
      const t = await tree('RUNNING_EXECUTION');
      expect(await runs.requestHalt(t.parent, 'READY_PAUSE')).toBe(true);
      expect(await stateOf(t.parent)).toBe('READY_PAUSE');
      expect(await stateOf(t.running)).toBe('READY_PAUSE');
      expect(await stateOf(t.submitted)).toBe('PAUSE');
      expect(await commandsOf(t.submitted)).toEqual([]);
      expect(await stateOf(t.paused)).toBe('PAUSE');
      expect(await stateOf(t.grandchild)).toBe('PAUSE');
      await notifiedAll([t.parent, t.running]);
      // Not running any more: the next request changes nothing.
      expect(await runs.requestHalt(t.parent, 'READY_STOP')).toBe(false);
      expect(await stateOf(t.running)).toBe('READY_PAUSE');
    });

    it('a submitted child a master takes while the stop waits for it is asked (READY_STOP), not ended', async () => {
      const t = await tree('RUNNING_EXECUTION');
      const master = new Client({ connectionString: pg.endpoint });
      await master.connect();
      try {
        // A consuming master has taken the child (not committed yet).
        await master.query('BEGIN');
        await master.query(
          "UPDATE workflow_instance SET host = $2, epoch = epoch + 1, state = 'RUNNING_EXECUTION' WHERE id = $1",
          [t.submitted, OTHER],
        );
        await master.query('DELETE FROM command WHERE workflow_instance_id = $1', [t.submitted]);
        const halting = runs.requestHalt(t.parent, 'READY_STOP');
        await waitFor(
          'the stop waiting for the child row',
          async () => (await waiters('WITH RECURSIVE%')) > 0,
        );
        await master.query('COMMIT');
        expect(await halting).toBe(true);
        expect(await stateOf(t.submitted)).toBe('READY_STOP');
        await notifiedAll([t.submitted]);
      } finally {
        await master.end();
      }
    });

    it('never waits for a command a consuming master holds: the child ends, the master then finds it final', async () => {
      const t = await tree('RUNNING_EXECUTION');
      const master = new Client({ connectionString: pg.endpoint });
      await master.connect();
      try {
        await master.query('BEGIN');
        await master.query('SELECT id FROM command WHERE workflow_instance_id = $1 FOR UPDATE', [
          t.submitted,
        ]);
        // Would deadlock (or wait forever) if the stop waited for the locked command.
        expect(await runs.requestHalt(t.parent, 'READY_STOP')).toBe(true);
        expect(await stateOf(t.submitted)).toBe('STOP');
        // The master's take (host NULL, not final) now finds nothing; it drops its command.
        const taken = await master.query(
          "UPDATE workflow_instance SET host = $2 WHERE id = $1 AND host IS NULL AND state NOT IN ('SUCCESS', 'FAILURE', 'STOP', 'PAUSE')",
          [t.submitted, OTHER],
        );
        expect(taken.rowCount).toBe(0);
        await master.query('DELETE FROM command WHERE workflow_instance_id = $1', [t.submitted]);
        await master.query('COMMIT');
      } finally {
        await master.end();
      }
    });

    it('stop of a submitted parent (resumed, not taken yet) stops its paused children too', async () => {
      const parent = await instance({ state: 'SUBMITTED_SUCCESS' });
      const sub = await task(parent, 'sub', 'PAUSE');
      const child = await instance({ state: 'PAUSE', parent: { instanceId: parent, taskId: sub } });
      expect(await runs.endSubmitted(parent, 'STOP')).toBe(true);
      expect(await stateOf(parent)).toBe('STOP');
      expect(await stateOf(child)).toBe('STOP');
    });

    it("haltChildren passes a parent's stop on to its children only while its fence holds", async () => {
      const t = await tree('READY_STOP');
      const fence: InstanceFence = { instanceId: t.parent, host: ME, epoch: 1 };
      expect(await subs.haltChildren({ ...fence, epoch: 2 }, 'stop')).toEqual([]);
      expect(await stateOf(t.running)).toBe('RUNNING_EXECUTION');

      const changed = await subs.haltChildren(fence, 'stop');
      expect(changed.map((c) => c.id).sort((a, b) => a - b)).toEqual(
        [t.paused, t.grandchild, t.running, t.submitted].sort((a, b) => a - b),
      );
      expect(await stateOf(t.parent)).toBe('READY_STOP');
      expect(await stateOf(t.running)).toBe('READY_STOP');
      expect(await stateOf(t.paused)).toBe('STOP');
      await notifiedAll([t.running]);
    });
  });
});
