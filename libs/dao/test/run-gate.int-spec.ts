import type { WorkflowState } from '@porpoise/common';
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { nth } from '@porpoise/test-harness/defined';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import {
  BackfillRepository,
  createDataSource,
  firstRow,
  queryRows,
  runMigrations,
  RunGateRepository,
  WorkflowDefinitionRepository,
  WorkflowRunRepository,
} from '../src';

/**
 * The run gate (DESIGN.md section 10 "Run concurrency") on a real Postgres: runs of a limited
 * workflow wait as SERIAL_WAIT with no command, a gate pass admits the oldest by wait_seq and
 * never more than the limit, even when two passes race; SERIAL_DISCARD stops a run that finds
 * another running.
 */
describe('run gate', () => {
  let pg: TestServer;
  let source: DataSource;
  /** A second pool: the racing passes and the lock holder each need their own connection. */
  let other: DataSource;
  let watcher: Client;
  let listener: Client;
  let gate: RunGateRepository;
  let otherGate: RunGateRepository;
  let runs: WorkflowRunRepository;
  let definitions: WorkflowDefinitionRepository;
  const gateNotified: string[] = [];
  let codes = 0;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    source = await createDataSource(pg.endpoint, 'run-gate-test').initialize();
    other = await createDataSource(pg.endpoint, 'run-gate-test-2').initialize();
    gate = new RunGateRepository(source);
    otherGate = new RunGateRepository(other);
    runs = new WorkflowRunRepository(source);
    definitions = new WorkflowDefinitionRepository(source);
    watcher = new Client({ connectionString: pg.endpoint });
    await watcher.connect();
    listener = new Client({ connectionString: pg.endpoint });
    await listener.connect();
    listener.on('notification', (n) => {
      if (n.channel === 'porpoise_gate' && n.payload !== undefined) gateNotified.push(n.payload);
    });
    await listener.query('LISTEN porpoise_gate');
  });

  afterAll(async () => {
    await listener?.end();
    await watcher?.end();
    await other?.destroy();
    await source?.destroy();
    await pg?.dispose();
  });

  /** A workflow with one EMPTY task and this concurrency, stored through the repository (POST /workflows). */
  async function workflow(concurrency: {
    policy: 'PARALLEL' | 'SERIAL_WAIT' | 'SERIAL_DISCARD';
    maxRuns?: number;
  }) {
    const code = `wf_gate_${++codes}`;
    const created = await definitions.create(code, {
      name: code,
      description: '',
      params: {},
      failureStrategy: 'END',
      timeoutMs: 0,
      concurrency,
      tasks: [
        { name: 'a', type: 'EMPTY', retries: 0, retryIntervalMs: 1000, timeoutMs: 0, workerGroup: 'default' },
      ],
      edges: [],
    });
    expect(created?.concurrency).toEqual(concurrency);
    return code;
  }

  async function trigger(code: string): Promise<{ id: number; commandId: number; state: WorkflowState }> {
    const t = await runs.trigger(code, {});
    if (t === null) throw new Error(`no workflow ${code}`);
    return { id: t.workflowInstanceId, commandId: t.commandId, state: t.state };
  }

  interface Row {
    state: WorkflowState;
    wait_seq: string | null;
    message: string | null;
    end_time: Date | null;
    command_type: string;
  }
  const row = async (id: number): Promise<Row> =>
    firstRow(
      await queryRows<Row>(
        source,
        'SELECT state, wait_seq, message, end_time, command_type FROM workflow_instance WHERE id = $1',
        [id],
      ),
      `instance ${id}`,
    );
  const stateOf = async (id: number): Promise<WorkflowState> => (await row(id)).state;
  const commandsOf = (id: number): Promise<Array<{ id: string; type: string }>> =>
    queryRows(source, 'SELECT id, type FROM command WHERE workflow_instance_id = $1 ORDER BY id', [id]);
  const setState = (id: number, state: WorkflowState): Promise<unknown> =>
    source.query('UPDATE workflow_instance SET state = $2, end_time = now() WHERE id = $1', [id, state]);
  /** What a master does when it takes the command: the run is now RUNNING_EXECUTION on a host. */
  const take = async (id: number): Promise<void> => {
    await source.query('DELETE FROM command WHERE workflow_instance_id = $1', [id]);
    await source.query(
      `UPDATE workflow_instance SET state = 'RUNNING_EXECUTION', host = 'm:1', start_time = now() WHERE id = $1`,
      [id],
    );
  };
  const active = async (code: string): Promise<number> =>
    Number(
      firstRow(
        await queryRows<{ n: string }>(
          source,
          `SELECT count(*) AS n FROM workflow_instance
           WHERE workflow_code = $1 AND state IN ('SUBMITTED_SUCCESS', 'RUNNING_EXECUTION', 'READY_PAUSE', 'READY_STOP')`,
          [code],
        ),
        'count',
      ).n,
    );

  it('writes a limited run SERIAL_WAIT with no command and the command id it will get; an unlimited one as before', async () => {
    const plain = await workflow({ policy: 'PARALLEL' });
    const p = await trigger(plain);
    expect(p.state).toBe('SUBMITTED_SUCCESS');
    expect(await commandsOf(p.id)).toEqual([{ id: String(p.commandId), type: 'START_PROCESS' }]);
    expect((await row(p.id)).wait_seq).toBeNull();

    const serial = await workflow({ policy: 'SERIAL_WAIT' });
    const s = await trigger(serial);
    expect(s.state).toBe('SERIAL_WAIT');
    expect(await commandsOf(s.id)).toEqual([]);
    expect((await row(s.id)).wait_seq).toBe(String(s.commandId));
    await waitFor('porpoise_gate NOTIFY', () => gateNotified.includes(serial));
    expect(gateNotified).not.toContain(plain);

    // The gate admits it: its command has the id the trigger answered, and the stored type.
    expect(await gate.pass(serial)).toEqual({
      admitted: [{ workflowInstanceId: s.id, commandId: s.commandId }],
      discarded: [],
    });
    expect(await stateOf(s.id)).toBe('SUBMITTED_SUCCESS');
    expect(await commandsOf(s.id)).toEqual([{ id: String(s.commandId), type: 'START_PROCESS' }]);
    // A repeated pass changes nothing.
    expect(await gate.pass(serial)).toEqual({ admitted: [], discarded: [] });

    // A repeated Idempotency-Key answers the first run, in the state it is in now.
    const keyed = await runs.trigger(serial, {}, 'nightly-1');
    const again = await runs.trigger(serial, {}, 'nightly-1');
    expect(keyed).toMatchObject({ state: 'SERIAL_WAIT', repeated: false });
    expect(again).toEqual({ ...keyed, repeated: true });
    if (keyed === null) throw new Error('no workflow');
    expect((await row(keyed.workflowInstanceId)).wait_seq).toBe(String(keyed.commandId));

    // The sweep sees the limited workflows; the plain one only if it had waiters.
    const seen = await gate.workflows();
    expect(seen).toContainEqual({ code: serial, limited: true, waiting: true });
    expect(seen.map((w) => w.code)).not.toContain(plain);
  });

  it('admits one SERIAL_WAIT run at a time, oldest wait first; a rerun goes to the back with its command type', async () => {
    const code = await workflow({ policy: 'SERIAL_WAIT' });
    const first = await trigger(code);
    await gate.pass(code);
    await take(first.id);
    const waiting = [await trigger(code), await trigger(code), await trigger(code)];
    expect(await gate.pass(code)).toEqual({ admitted: [], discarded: [] });
    // An old instance resubmitted now queues behind the three: it has the newest wait_seq.
    await setState(first.id, 'FAILURE');
    const rerun = await runs.resubmit(first.id, ['FAILURE'], 'REPEAT_RUNNING');
    expect(rerun?.state).toBe('SERIAL_WAIT');
    expect(await commandsOf(first.id)).toEqual([]);

    const order: number[] = [];
    for (let i = 0; i < 4; i++) {
      const outcome = await gate.pass(code);
      expect(outcome.admitted).toHaveLength(1);
      const admitted = nth(outcome.admitted, 0);
      order.push(admitted.workflowInstanceId);
      expect(await active(code)).toBe(1);
      // Nothing more while it runs.
      expect((await gate.pass(code)).admitted).toEqual([]);
      await take(admitted.workflowInstanceId);
      await setState(admitted.workflowInstanceId, 'SUCCESS');
    }
    expect(order).toEqual([...waiting.map((w) => w.id), first.id]);
    expect(
      await queryRows(source, 'SELECT type FROM command WHERE workflow_instance_id = $1', [first.id]),
    ).toEqual([]);
    expect((await row(first.id)).command_type).toBe('REPEAT_RUNNING');
  });

  it('PARALLEL with maxRuns admits up to the limit; PAUSE holds no slot and a resume waits again', async () => {
    const code = await workflow({ policy: 'PARALLEL', maxRuns: 2 });
    const t = [];
    for (let i = 0; i < 5; i++) t.push(await trigger(code));
    expect(t.every((r) => r.state === 'SERIAL_WAIT')).toBe(true);
    const firstPass = await gate.pass(code);
    expect(firstPass.admitted.map((a) => a.workflowInstanceId)).toEqual([nth(t, 0).id, nth(t, 1).id]);
    expect(await active(code)).toBe(2);
    await take(nth(t, 0).id);
    await setState(nth(t, 0).id, 'PAUSE');
    expect((await gate.pass(code)).admitted.map((a) => a.workflowInstanceId)).toEqual([nth(t, 2).id]);
    const resumed = await runs.resubmit(nth(t, 0).id, ['PAUSE'], 'RECOVER_SUSPENDED_PROCESS');
    expect(resumed?.state).toBe('SERIAL_WAIT');
    // It waits a minute (as if): that minute will not count against its timeoutMs.
    await source.query(
      `UPDATE workflow_instance SET updated_at = now() - interval '60 seconds', paused_ms = 0 WHERE id = $1`,
      [nth(t, 0).id],
    );
    await setState(nth(t, 1).id, 'SUCCESS');
    await setState(nth(t, 2).id, 'SUCCESS');
    // t[3], t[4] waited longer than the resumed run.
    expect((await gate.pass(code)).admitted.map((a) => a.workflowInstanceId)).toEqual([
      nth(t, 3).id,
      nth(t, 4).id,
    ]);
    await setState(nth(t, 3).id, 'SUCCESS');
    expect(await gate.pass(code)).toEqual({
      admitted: [{ workflowInstanceId: nth(t, 0).id, commandId: expect.any(Number) }],
      discarded: [],
    });
    expect(await commandsOf(nth(t, 0).id)).toEqual([
      { id: expect.any(String), type: 'RECOVER_SUSPENDED_PROCESS' },
    ]);
    const pausedMs = Number(
      nth(
        await queryRows<{ paused_ms: string }>(
          source,
          'SELECT paused_ms FROM workflow_instance WHERE id = $1',
          [nth(t, 0).id],
        ),
        0,
      ).paused_ms,
    );
    expect(pausedMs).toBeGreaterThanOrEqual(60_000);
    // A fresh run (no start_time yet) has nothing to discount.
    expect(
      (await queryRows(source, 'SELECT paused_ms FROM workflow_instance WHERE id = $1', [nth(t, 4).id]))[0],
    ).toEqual({ paused_ms: '0' });
  });

  it('two passes racing never exceed maxRuns: the second counts after the first committed (forced interleaving)', async () => {
    const code = await workflow({ policy: 'PARALLEL', maxRuns: 1 });
    // Two triggers racing: `earlier` reserved its id first, `later` commits first.
    const reserved = nth(
      await queryRows<{ id: string }>(source, "SELECT nextval('command_id_seq') AS id"),
      0,
    ).id;
    const later = await trigger(code);
    // Another session holds the workflow_definition row lock, as a pass in progress would.
    const holder = other.createQueryRunner();
    await holder.startTransaction();
    try {
      await holder.query('SELECT 1 FROM workflow_definition WHERE code = $1 FOR NO KEY UPDATE', [code]);
      const locked = async (n: number) =>
        waitFor(`${n} gate passes waiting for the row lock`, async () => {
          const res = await watcher.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND query LIKE '%FROM workflow_definition WHERE code = $1 FOR NO KEY UPDATE%'`,
          );
          return Number(nth(res.rows, 0).n) === n;
        });
      // Pass A starts while only `later` waits.
      const a = gate.pass(code);
      await locked(1);
      // Then a run with an OLDER wait_seq commits (two triggers racing commit out of order):
      // a single-statement pass would count from a snapshot without it, and admit `later`.
      const earlier = await trigger(code);
      await source.query('UPDATE workflow_instance SET wait_seq = $2 WHERE id = $1', [earlier.id, reserved]);
      const b = otherGate.pass(code);
      await locked(2);
      await holder.commitTransaction();
      const [ra, rb] = await Promise.all([a, b]);
      const admitted = [...ra.admitted, ...rb.admitted].map((x) => x.workflowInstanceId);
      expect(admitted).toEqual([earlier.id]);
      expect(await active(code)).toBe(1);
      expect(await stateOf(later.id)).toBe('SERIAL_WAIT');
    } finally {
      if (holder.isTransactionActive) await holder.rollbackTransaction();
      await holder.release();
    }
  });

  it('many passes at once on two pools never exceed maxRuns', async () => {
    const code = await workflow({ policy: 'PARALLEL', maxRuns: 3 });
    for (let i = 0; i < 20; i++) await trigger(code);
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? gate : otherGate).pass(code)),
    );
    expect(outcomes.flatMap((o) => o.admitted)).toHaveLength(3);
    expect(await active(code)).toBe(3);
  });

  it('SERIAL_DISCARD: a run that finds one running ends STOP at once, naming it, with no tasks and no command', async () => {
    const code = await workflow({ policy: 'SERIAL_DISCARD' });
    const running = await trigger(code);
    const sameTime = await trigger(code);
    // None ran: the first is admitted, the second finds it running.
    expect(await gate.pass(code)).toEqual({
      admitted: [{ workflowInstanceId: running.id, commandId: running.commandId }],
      discarded: [sameTime.id],
    });
    await take(running.id);
    const late = await trigger(code);
    expect(await gate.pass(code)).toEqual({ admitted: [], discarded: [late.id] });
    for (const id of [sameTime.id, late.id]) {
      const r = await row(id);
      expect(r.state).toBe('STOP');
      expect(r.end_time).not.toBeNull();
      expect(r.message).toBe(
        `discarded: instance ${running.id} of this workflow is running (SERIAL_DISCARD)`,
      );
      expect(await commandsOf(id)).toEqual([]);
      expect(
        await queryRows(source, 'SELECT id FROM task_instance WHERE workflow_instance_id = $1', [id]),
      ).toEqual([]);
    }
    // Once it ended, the next run goes.
    await setState(running.id, 'SUCCESS');
    const next = await trigger(code);
    expect((await gate.pass(code)).admitted.map((a) => a.workflowInstanceId)).toEqual([next.id]);
  });

  it('stop and pause end a SERIAL_WAIT run at once (no master owns it); the gate skips it', async () => {
    const code = await workflow({ policy: 'SERIAL_WAIT' });
    const running = await trigger(code);
    await gate.pass(code);
    await take(running.id);
    const stopped = await trigger(code);
    const paused = await trigger(code);
    const next = await trigger(code);
    expect(await runs.endSubmitted(stopped.id, 'STOP')).toBe(true);
    expect(await runs.endSubmitted(paused.id, 'PAUSE')).toBe(true);
    expect(await stateOf(stopped.id)).toBe('STOP');
    expect(await stateOf(paused.id)).toBe('PAUSE');
    await setState(running.id, 'SUCCESS');
    expect((await gate.pass(code)).admitted.map((a) => a.workflowInstanceId)).toEqual([next.id]);
  });

  it("a backfill's runs pass the gate: with parallelism 3 on a SERIAL_WAIT workflow, one runs at a time in date order", async () => {
    const code = await workflow({ policy: 'SERIAL_WAIT' });
    const backfills = new BackfillRepository(source);
    const times = [1, 2, 3].map((d) => new Date(Date.UTC(2026, 0, d)));
    const id = Number(
      await backfills.create({
        workflowCode: code,
        cron: '0 0 * * *',
        timezone: 'UTC',
        params: {},
        parallelism: 3,
        order: 'ASC',
        start: nth(times, 0),
        end: nth(times, 2),
        times,
      }),
    );
    const advanced = await backfills.advance(id, 'm:1');
    expect(advanced.createdRuns).toHaveLength(3);
    const created = advanced.createdRuns.map((r) => r.workflowInstanceId);
    for (const instance of created) {
      expect(await stateOf(instance)).toBe('SERIAL_WAIT');
      expect(await commandsOf(instance)).toEqual([]);
    }
    const order: number[] = [];
    for (let i = 0; i < 3; i++) {
      const admitted = (await gate.pass(code)).admitted;
      expect(admitted).toHaveLength(1);
      const instance = nth(admitted, 0).workflowInstanceId;
      expect(await commandsOf(instance)).toEqual([
        { id: String(nth(admitted, 0).commandId), type: 'COMPLEMENT_DATA' },
      ]);
      order.push(instance);
      await take(instance);
      await setState(instance, 'SUCCESS');
    }
    expect(order).toEqual(created);
  });

  it('a sub-workflow child never waits; a workflow no longer limited lets all its waiters go', async () => {
    const code = await workflow({ policy: 'SERIAL_WAIT' });
    const parent = await trigger(code);
    await gate.pass(code);
    await take(parent.id);
    const child = await trigger(code);
    await source.query(
      `UPDATE workflow_instance SET parent_instance_id = $2, state = 'FAILURE' WHERE id = $1`,
      [child.id, parent.id],
    );
    expect((await runs.resubmit(child.id, ['FAILURE'], 'START_FAILURE_TASK_PROCESS'))?.state).toBe(
      'SUBMITTED_SUCCESS',
    );
    expect(await commandsOf(child.id)).toHaveLength(1);

    const w1 = await trigger(code);
    const w2 = await trigger(code);
    await definitions.update(code, {
      name: code,
      description: '',
      params: {},
      failureStrategy: 'END',
      timeoutMs: 0,
      concurrency: { policy: 'PARALLEL' },
      tasks: [
        { name: 'a', type: 'EMPTY', retries: 0, retryIntervalMs: 1000, timeoutMs: 0, workerGroup: 'default' },
      ],
      edges: [],
    });
    expect(await gate.workflows()).toContainEqual({ code, limited: false, waiting: true });
    expect((await gate.pass(code)).admitted.map((a) => a.workflowInstanceId)).toEqual([w1.id, w2.id]);
  });
});
