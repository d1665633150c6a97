/**
 * Schedule fires on a real Postgres (DESIGN.md section 10): exactly one run per (schedule, fire
 * time) whichever masters race, by the schedule_fire primary key and the cursor/revision
 * compare-and-set of the one fire statement.
 */
import { systemClock } from '@porpoise/common';
import { createDataSource, runMigrations, ScheduleRepository, type FireRequest } from '@porpoise/dao';
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { nth } from '@porpoise/test-harness/defined';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { DEFAULT_MASTER_OPTIONS, type MasterOptions } from '../src/master.constants';
import type { SessionStateService } from '../src/registry/session-state.service';
import { ScheduleService } from '../src/schedule/schedule.service';

describe('schedule fires (real Postgres)', () => {
  let pg: TestServer;
  let sources: DataSource[] = [];
  let db: Client;
  let repo: ScheduleRepository;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    sources = await Promise.all(
      [1, 2].map((i) => createDataSource(pg.endpoint, `schedule-test-${i}`).initialize()),
    );
    repo = new ScheduleRepository(nth(sources, 0));
    db = new Client({ connectionString: pg.endpoint });
    await db.connect();
    await db.query(`INSERT INTO workflow_definition (code, name, version) VALUES ('wf_s', 'wf_s', 1)`);
    await db.query(
      `INSERT INTO workflow_definition_version (code, version, name, tasks, edges) VALUES ('wf_s', 1, 'wf_s', '[]', '[]')`,
    );
  });

  afterAll(async () => {
    await db?.end();
    await Promise.all(sources.map((s) => s.destroy()));
    await pg?.dispose();
  });

  /** A schedule whose cursor is `cursor` (SQL), RUN_ALL unless said otherwise. */
  async function schedule(
    cursorSql: string,
    extra: { policy?: string; cron?: string } = {},
  ): Promise<number> {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO schedule (workflow_code, cron, timezone, params, misfire_policy, next_fire_time)
       VALUES ('wf_s', $1, 'Europe/Berlin', '{"REGION":"eu"}', $2, ${cursorSql}) RETURNING id`,
      [extra.cron ?? '* * * * * *', extra.policy ?? 'RUN_ALL'],
    );
    return Number(nth(rows, 0).id);
  }

  const ledger = async (id: number) =>
    (
      await db.query<{ fire_time: Date; outcome: string; workflow_instance_id: string | null }>(
        'SELECT fire_time, outcome, workflow_instance_id FROM schedule_fire WHERE schedule_id = $1 ORDER BY fire_time',
        [id],
      )
    ).rows;
  const instances = async (id: number) =>
    (
      await db.query<{
        id: string;
        schedule_time: Date;
        command_type: string;
        params: unknown;
        timezone: string;
        commands: number;
      }>(
        `SELECT w.id, w.schedule_time, w.command_type, w.params, w.timezone,
                (SELECT count(*)::int FROM command c WHERE c.workflow_instance_id = w.id) AS commands
         FROM workflow_instance w WHERE w.schedule_id = $1 ORDER BY w.schedule_time`,
        [id],
      )
    ).rows;

  const service = (source: DataSource, options: Partial<MasterOptions> = {}) =>
    new ScheduleService(
      { ...DEFAULT_MASTER_OPTIONS, scheduleMisfireThresholdMs: 3_600_000, ...options },
      systemClock,
      new ScheduleRepository(source),
      { canStartWork: () => true } as unknown as SessionStateService,
    );

  it('two schedule services firing the same schedules at once: one ledger row and one run per fire time', async () => {
    // 40 fire times due on each of 3 schedules; 3 runs per fire statement, so many racing rounds.
    const ids = await Promise.all(
      [1, 2, 3].map(() => schedule(`date_trunc('second', now()) - interval '40 seconds'`)),
    );
    const [a, b] = sources.map((s) => service(s, { scheduleMaxRunsPerFire: 3 }));
    if (!a || !b) throw new Error('two services expected');
    for (let round = 0; round < 40; round++) await Promise.all([a.fireDue(), b.fireDue(), a.fireDue()]);
    for (const id of ids) {
      const rows = await ledger(id);
      const runs = await instances(id);
      const times = rows.map((r) => r.fire_time.getTime());
      expect(rows.length).toBeGreaterThanOrEqual(40);
      expect(new Set(times).size).toBe(times.length);
      // Consecutive seconds, no gap.
      times.forEach((t, i) => i > 0 && expect(t - (times[i - 1] ?? 0)).toBe(1000));
      expect(rows.every((r) => r.outcome === 'FIRED')).toBe(true);
      expect(runs.map((r) => r.schedule_time.getTime())).toEqual(times);
      expect(runs.map((r) => r.id)).toEqual(rows.map((r) => r.workflow_instance_id));
      expect(runs.every((r) => r.commands === 1 && r.command_type === 'SCHEDULER')).toBe(true);
      expect(nth(runs, 0)).toMatchObject({ params: { REGION: 'eu' }, timezone: 'Europe/Berlin' });
    }
  });

  it('running the same fire statement twice is a no-op the second time', async () => {
    const id = await schedule(`'2024-01-01T00:00:00Z'`);
    const due = (await repo.due(50)).schedules.find((s) => s.id === id);
    if (!due?.nextFireText) throw new Error('schedule not due');
    const req: FireRequest = {
      scheduleId: id,
      revision: due.revision,
      cursorText: due.nextFireText,
      cursorNew: new Date('2024-01-01T00:00:02Z'),
      decidedAtMs: Date.parse('2024-01-01T00:00:03Z'),
      fires: [
        { time: new Date('2024-01-01T00:00:00Z'), run: false },
        { time: new Date('2024-01-01T00:00:01Z'), run: true },
      ],
    };
    const first = await repo.fire(req);
    expect(first).toMatchObject({ applied: true, skipped: 1 });
    expect(first.fired.map((f) => f.time.toISOString())).toEqual(['2024-01-01T00:00:01.000Z']);
    expect(await repo.fire(req)).toEqual({ applied: false, fired: [], skipped: 0 });
    expect((await ledger(id)).map((r) => r.outcome)).toEqual(['MISFIRE_SKIPPED', 'FIRED']);
    expect(await instances(id)).toHaveLength(1);

    // Even a rewound cursor (a bug, a hand edit) cannot run a fire time twice: the ledger's key holds.
    await db.query(`UPDATE schedule SET next_fire_time = '2024-01-01T00:00:00Z' WHERE id = $1`, [id]);
    const again = await repo.fire({ ...req, fires: req.fires.map((f) => ({ ...f, run: true })) });
    expect(again).toEqual({ applied: true, fired: [], skipped: 0 });
    expect(await instances(id)).toHaveLength(1);
    expect(await ledger(id)).toHaveLength(2);
  });

  it('a racing claim of the same key waits for the first, then does nothing', async () => {
    const id = await schedule(`'2024-02-01T00:00:00Z'`);
    const due = (await repo.due(50)).schedules.find((s) => s.id === id);
    if (!due?.nextFireText) throw new Error('schedule not due');
    // Another transaction holds the key (uncommitted), as a racing master would.
    const other = new Client({ connectionString: pg.endpoint });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO schedule_fire (schedule_id, fire_time, outcome, decided_at)
         VALUES ($1, '2024-02-01T00:00:00Z', 'FIRED', now())`,
        [id],
      );
      const firing = repo.fire({
        scheduleId: id,
        revision: due.revision,
        cursorText: due.nextFireText,
        cursorNew: new Date('2024-02-01T00:00:02Z'),
        decidedAtMs: Date.parse('2024-02-01T00:00:03Z'),
        fires: [
          { time: new Date('2024-02-01T00:00:00Z'), run: true },
          { time: new Date('2024-02-01T00:00:01Z'), run: true },
        ],
      });
      // The fire statement is blocked on the key.
      let blocked = false;
      for (let i = 0; i < 100 && !blocked; i++) {
        const { rows } = await db.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO schedule_fire%'`,
        );
        blocked = rows.length > 0;
        if (!blocked) await new Promise((r) => setTimeout(r, 20));
      }
      expect(blocked).toBe(true);
      await other.query('COMMIT');
      const outcome = await firing;
      expect(outcome.applied).toBe(true);
      expect(outcome.fired.map((f) => f.time.toISOString())).toEqual(['2024-02-01T00:00:01.000Z']);
      expect((await instances(id)).map((r) => r.schedule_time.toISOString())).toEqual([
        '2024-02-01T00:00:01.000Z',
      ]);
    } finally {
      await other.end();
    }
  });

  it('refuses a fire by a master that read the schedule before a change (stale revision)', async () => {
    const id = await schedule(`'2024-03-01T00:00:00Z'`);
    const due = (await repo.due(50)).schedules.find((s) => s.id === id);
    if (!due?.nextFireText) throw new Error('schedule not due');
    // A PATCH meanwhile (here: only the params; the cursor stays): revision + 1.
    const patched = await repo.update(id, (current) => ({ ...current, params: { REGION: 'us' } }));
    expect(patched).toMatchObject({ status: 'updated', schedule: { revision: due.revision + 1 } });
    const stale = await repo.fire({
      scheduleId: id,
      revision: due.revision,
      cursorText: due.nextFireText,
      cursorNew: new Date('2024-03-01T00:00:01Z'),
      decidedAtMs: Date.parse('2024-03-01T00:00:03Z'),
      fires: [{ time: new Date('2024-03-01T00:00:00Z'), run: true }],
    });
    expect(stale).toEqual({ applied: false, fired: [], skipped: 0 });
    expect(await ledger(id)).toHaveLength(0);
    // The current revision fires, with the new params.
    const fresh = (await repo.due(50)).schedules.find((s) => s.id === id);
    expect(fresh?.revision).toBe(due.revision + 1);
  });

  it('NOTIFYs porpoise_schedule when a schedule is created or changed, not when it fires', async () => {
    const listener = new Client({ connectionString: pg.endpoint });
    await listener.connect();
    const got: string[] = [];
    listener.on('notification', (n) => n.channel === 'porpoise_schedule' && got.push(n.payload ?? ''));
    try {
      await listener.query('LISTEN porpoise_schedule');
      const id = await schedule(`'2024-04-01T00:00:00Z'`);
      const due = (await repo.due(1000)).schedules.find((s) => s.id === id);
      if (!due?.nextFireText) throw new Error('schedule not due');
      await repo.fire({
        scheduleId: id,
        revision: due.revision,
        cursorText: due.nextFireText,
        cursorNew: new Date('2024-04-01T00:00:01Z'),
        decidedAtMs: Date.parse('2024-04-01T00:00:02Z'),
        fires: [{ time: new Date('2024-04-01T00:00:00Z'), run: false }],
      });
      await repo.update(id, (current) => ({ ...current, enabled: false, nextFireTime: null }));
      // A round trip on the listening connection delivers what was sent before it.
      await listener.query('SELECT 1');
      expect(got).toEqual([String(id), String(id)]);
    } finally {
      await listener.end();
    }
  });

  it('due(): enabled, cursor come, within endTime; with the database clock', async () => {
    const before = Date.now();
    const on = await schedule(`now() - interval '1 second'`);
    const off = await schedule(`now() - interval '1 second'`);
    await db.query('UPDATE schedule SET enabled = false WHERE id = $1', [off]);
    const ended = await schedule(`now() - interval '1 second'`);
    await db.query(`UPDATE schedule SET end_time = now() - interval '1 hour' WHERE id = $1`, [ended]);
    const later = await schedule(`now() + interval '1 hour'`);
    const due = await repo.due(1000);
    const ids = due.schedules.map((s) => s.id);
    expect(ids).toContain(on);
    expect(ids).not.toContain(off);
    expect(ids).not.toContain(ended);
    expect(ids).not.toContain(later);
    expect(Math.abs(due.dbNowMs - before)).toBeLessThan(60_000);
    expect(due.nextDueMs).not.toBeNull();
    const rev = nth(
      due.schedules.filter((s) => s.id === on),
      0,
    ).revision;
    expect((await repo.due(1000, [{ id: on, revision: rev }])).schedules.map((s) => s.id)).not.toContain(on);
    expect((await repo.due(1000, [{ id: on, revision: rev + 1 }])).schedules.map((s) => s.id)).toContain(on);
  });
});
