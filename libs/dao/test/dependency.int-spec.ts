import type { TaskState, WorkflowState } from '@porpoise/common';
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import type { DataSource } from 'typeorm';
import {
  createDataSource,
  DEPENDENCY_CHECK_SQL,
  DependencyRepository,
  firstRow,
  queryRows,
  runMigrations,
  TaskInstanceRepository,
} from '../src';

/**
 * The DEPENDENT check on crafted runs (DESIGN.md section 9): one statement over the awaited
 * workflow's runs whose schedule time (a manual run's start time) is in [from, to).
 */
describe('DEPENDENT check', () => {
  let pg: TestServer;
  let source: DataSource;
  let repo: DependencyRepository;
  const DAY = 24 * 3600 * 1000;
  /** The window every case looks in: 2026-12-01, UTC. */
  const FROM = Date.parse('2026-12-01T00:00:00Z');
  const TO = FROM + DAY;
  let codes = 0;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    source = await createDataSource(pg.endpoint, 'dependency-test').initialize();
    repo = new DependencyRepository(source);
  });

  afterAll(async () => {
    await source?.destroy();
    await pg?.dispose();
  });

  /** A new workflow of its own for each case. */
  async function workflow(): Promise<string> {
    const code = `wf_dep_${++codes}`;
    await source.query(`INSERT INTO workflow_definition (code, name, version) VALUES ($1, $1, 1)`, [code]);
    return code;
  }

  interface RunSpec {
    state: WorkflowState;
    /** Its schedule time; null: a manual run (startMs counts). */
    scheduleMs: number | null;
    startMs?: number | null;
    /** Attempts of task `load`, oldest first. */
    load?: readonly TaskState[];
  }

  async function run(code: string, spec: RunSpec): Promise<number> {
    const ts = (ms: number | null | undefined) => (ms == null ? null : new Date(ms).toISOString());
    const row = firstRow(
      await queryRows<{ id: string }>(
        source,
        `INSERT INTO workflow_instance (workflow_code, workflow_version, state, command_type, schedule_time, start_time)
         VALUES ($1, 1, $2, 'SCHEDULER', $3::timestamptz, $4::timestamptz) RETURNING id`,
        [
          code,
          spec.state,
          ts(spec.scheduleMs),
          ts(spec.startMs === undefined ? spec.scheduleMs : spec.startMs),
        ],
      ),
      'instance',
    );
    const id = Number(row.id);
    for (const [i, state] of (spec.load ?? []).entries()) {
      await source.query(
        `INSERT INTO task_instance (workflow_instance_id, name, state, attempt) VALUES ($1, 'load', $2, $3)`,
        [id, state, i + 1],
      );
    }
    return id;
  }

  const check = (workflowCode: string, taskName?: string) =>
    repo.check({ workflowCode, taskName, fromMs: FROM, toMs: TO });
  const noon = FROM + DAY / 2;

  it('waits while the workflow has no run in the window', async () => {
    const code = await workflow();
    const other = await workflow();
    await run(code, { state: 'SUCCESS', scheduleMs: FROM - 1 });
    await run(code, { state: 'SUCCESS', scheduleMs: TO });
    await run(other, { state: 'SUCCESS', scheduleMs: noon });
    const outcome = await check(code);
    expect(outcome).toMatchObject({ outcome: 'waiting', runs: 0 });
    expect(outcome.message).toBe(
      `waits for a SUCCESS run of workflow ${code} scheduled in [2026-12-01T00:00:00.000Z, 2026-12-02T00:00:00.000Z): none yet`,
    );
  });

  it('is met by a SUCCESS run at the very start of the window', async () => {
    const code = await workflow();
    const id = await run(code, { state: 'SUCCESS', scheduleMs: FROM });
    expect(await check(code)).toEqual({
      outcome: 'met',
      instanceId: id,
      message: `workflow ${code} succeeded in instance ${id}, scheduled in [2026-12-01T00:00:00.000Z, 2026-12-02T00:00:00.000Z)`,
    });
  });

  it('a success wins over a later failure', async () => {
    const code = await workflow();
    const ok = await run(code, { state: 'SUCCESS', scheduleMs: noon });
    await run(code, { state: 'FAILURE', scheduleMs: noon + 1000 });
    expect(await check(code)).toMatchObject({ outcome: 'met', instanceId: ok });
  });

  it('fails when the latest run of the window ended FAILURE or STOP and none succeeded', async () => {
    for (const state of ['FAILURE', 'STOP'] as const) {
      const code = await workflow();
      await run(code, { state: 'SUCCESS', scheduleMs: FROM - DAY });
      await run(code, { state: 'PAUSE', scheduleMs: noon });
      const latest = await run(code, { state, scheduleMs: noon - 1000 });
      const outcome = await check(code);
      expect(outcome).toMatchObject({ outcome: 'failed', instanceId: latest });
      expect(outcome.message).toMatch(
        new RegExp(
          `^workflow ${code}: its latest run scheduled in \\[.*\\), instance ${latest}, ended ${state}$`,
        ),
      );
    }
  });

  it('waits while the latest run is not ended, even after an earlier failure', async () => {
    for (const state of ['SUBMITTED_SUCCESS', 'RUNNING_EXECUTION', 'READY_STOP', 'PAUSE'] as const) {
      const code = await workflow();
      await run(code, { state: 'FAILURE', scheduleMs: noon });
      const latest = await run(code, { state, scheduleMs: noon });
      const outcome = await check(code);
      expect(outcome).toMatchObject({ outcome: 'waiting', runs: 2 });
      expect(outcome.message).toMatch(new RegExp(`latest instance ${latest} is ${state}$`));
    }
  });

  it('counts a manual run by its start time', async () => {
    const code = await workflow();
    await run(code, { state: 'SUCCESS', scheduleMs: null, startMs: FROM - 1 });
    expect(await check(code)).toMatchObject({ outcome: 'waiting', runs: 0 });
    const manual = await run(code, { state: 'SUCCESS', scheduleMs: null, startMs: noon });
    expect(await check(code)).toMatchObject({ outcome: 'met', instanceId: manual });
    // A schedule time outside the window wins over a start time in it.
    const late = await workflow();
    await run(late, { state: 'SUCCESS', scheduleMs: FROM - DAY, startMs: noon });
    expect(await check(late)).toMatchObject({ outcome: 'waiting', runs: 0 });
  });

  describe('with a task name', () => {
    it('is met by the task’s latest attempt SUCCESS, even while its run goes on', async () => {
      const code = await workflow();
      const id = await run(code, {
        state: 'RUNNING_EXECUTION',
        scheduleMs: noon,
        load: ['FAILURE', 'SUCCESS'],
      });
      expect(await check(code, 'load')).toEqual({
        outcome: 'met',
        instanceId: id,
        message: `task load of workflow ${code} succeeded in instance ${id}, scheduled in [2026-12-01T00:00:00.000Z, 2026-12-02T00:00:00.000Z)`,
      });
      // Not by the whole run: the run has not succeeded.
      expect(await check(code)).toMatchObject({ outcome: 'waiting' });
    });

    it('only the latest attempt counts', async () => {
      const code = await workflow();
      await run(code, {
        state: 'RUNNING_EXECUTION',
        scheduleMs: noon,
        load: ['SUCCESS', 'SUBMITTED_SUCCESS'],
      });
      expect(await check(code, 'load')).toMatchObject({ outcome: 'waiting', runs: 1 });
    });

    it('fails when the latest run ended, SUCCESS included, without the task succeeding', async () => {
      const skipped = await workflow();
      const a = await run(skipped, { state: 'SUCCESS', scheduleMs: noon, load: ['SKIPPED'] });
      const outcome = await check(skipped, 'load');
      expect(outcome).toMatchObject({ outcome: 'failed', instanceId: a });
      expect(outcome.message).toMatch(new RegExp(`instance ${a}, ended SUCCESS and the task ended SKIPPED$`));
      const missing = await workflow();
      const b = await run(missing, { state: 'FAILURE', scheduleMs: noon });
      expect((await check(missing, 'load')).message).toMatch(
        new RegExp(`instance ${b}, ended FAILURE and the task has no attempt$`),
      );
      // The run succeeding is not enough; its task succeeding in an earlier run is.
      const earlier = await workflow();
      const ok = await run(earlier, { state: 'FAILURE', scheduleMs: noon, load: ['SUCCESS'] });
      await run(earlier, { state: 'SUCCESS', scheduleMs: noon, load: ['SKIPPED'] });
      expect(await check(earlier, 'load')).toMatchObject({ outcome: 'met', instanceId: ok });
    });
  });

  it('reads the window through workflow_instance_code_schedule_idx', async () => {
    const code = await workflow();
    for (let i = 0; i < 50; i++) await run(code, { state: 'SUCCESS', scheduleMs: FROM - i * DAY });
    await source.query('ANALYZE workflow_instance');
    const plan = await source.transaction(async (m) => {
      await m.query('SET LOCAL enable_seqscan = off');
      const rows: Array<{ 'QUERY PLAN': string }> = await m.query(`EXPLAIN ${DEPENDENCY_CHECK_SQL}`, [
        code,
        FROM,
        TO,
        'load',
      ]);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    expect(plan).toMatch(/workflow_instance_code_schedule_idx/);
    expect(plan).toMatch(/Index Cond: .*COALESCE\(schedule_time, start_time\) >=/);
  });

  it('a master-side task going RUNNING_EXECUTION gets its start_time once, on the database clock; rows read back say how long it ran', async () => {
    const tasks = new TaskInstanceRepository(source);
    const code = await workflow();
    const id = await run(code, { state: 'RUNNING_EXECUTION', scheduleMs: noon });
    await source.query(`UPDATE workflow_instance SET host = 'm:1', epoch = 1 WHERE id = $1`, [id]);
    const fence = { instanceId: id, host: 'm:1', epoch: 1 };
    const [created] = (await tasks.createAttempts(fence, [{ name: 'wait', attempt: 1 }])).rows;
    const rowId = created?.id ?? 0;
    expect(created?.runningForMs).toBeNull();
    // As if it had started a minute ago (a failover later): the start time is kept, not reset.
    await tasks.markState(fence, [rowId], ['SUBMITTED_SUCCESS'], 'RUNNING_EXECUTION', 'runs on the master');
    await source.query(`UPDATE task_instance SET start_time = now() - interval '60 seconds' WHERE id = $1`, [
      rowId,
    ]);
    await tasks.markState(fence, [rowId], ['RUNNING_EXECUTION'], 'RUNNING_EXECUTION', 'again');
    const [read] = await tasks.latestAttempts([id]);
    expect(read?.runningForMs).toBeGreaterThanOrEqual(60_000);
    expect(read?.runningForMs).toBeLessThan(120_000);
    await tasks.markState(fence, [rowId], ['RUNNING_EXECUTION'], 'SUCCESS', 'met');
    expect((await tasks.latestAttempts([id]))[0]?.runningForMs).toBeNull();
  });
});
