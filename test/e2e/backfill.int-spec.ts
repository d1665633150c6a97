/**
 * Backfill end to end (DESIGN.md section 10), every node its own process from the built code
 * (`npm run build` first): an API server, three masters and a worker on a real Postgres and the
 * JDBC registry. A 30-date backfill with parallelism 3 whose creating master (and the master
 * driving its newest run) is SIGKILLed midway still makes exactly one run per date, never more
 * than 3 at once, created in date order, and ends SUCCESS; every task sees its date as
 * ${porpoise.scheduleTime} and ${porpoise.bizDate}. A cancelled backfill creates no more runs.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { sleep, waitFor } from '@porpoise/test-harness';
import { ChaosCluster, type ChaosNode } from '../chaos/cluster';

const ENDED = ['SUCCESS', 'FAILURE', 'STOP'];

interface BackfillView {
  id: number;
  state: string;
  total: number;
  created: number;
  running: number;
  succeeded: number;
  failed: number;
  workflowInstanceIds: number[];
}

interface InstanceRow {
  id: number;
  state: string;
  command_type: string;
  schedule_time: Date;
  start_time: Date | null;
  end_time: Date | null;
  created_at: Date;
  seq: number;
  created_by: string;
}

/** The largest number of intervals [start, end] open at one moment (an end before a start at a tie). */
function maxOverlap(intervals: ReadonlyArray<{ start: number; end: number }>): number {
  const events = intervals.flatMap((i) => [
    { at: i.start, delta: 1 },
    { at: i.end, delta: -1 },
  ]);
  events.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let open = 0;
  let max = 0;
  for (const e of events) {
    open += e.delta;
    max = Math.max(max, open);
  }
  return max;
}

describe('backfill on real processes', () => {
  let cluster: ChaosCluster;
  let code = '';
  let witness = '';

  beforeAll(async () => {
    cluster = await ChaosCluster.start({
      registry: 'jdbc',
      masters: 3,
      workers: 1,
      sessionTimeoutMs: 3000,
      heartbeatIntervalMs: 500,
    });
    witness = join(cluster.scratch, 'backfill-witness.txt');
    code = await cluster.createWorkflow({
      name: 'daily_load',
      tasks: [
        {
          name: 'load',
          type: 'SHELL',
          command: `echo "\${porpoise.scheduleTime} \${porpoise.bizDate}" >> ${witness}; sleep 1.5`,
        },
      ],
    });
  }, 180_000);

  afterAll(async () => {
    await cluster?.dispose();
  }, 120_000);

  const get = async (id: number): Promise<BackfillView> => {
    const res = await cluster.api<BackfillView>('GET', `/backfills/${id}`);
    expect(res.status).toBe(200);
    return res.body;
  };

  async function instances(backfillId: number): Promise<InstanceRow[]> {
    const { rows } = await cluster.db.query<InstanceRow & { id: string }>(
      `SELECT w.id, w.state, w.command_type, w.schedule_time, w.start_time, w.end_time, w.created_at,
              r.seq, r.created_by
       FROM workflow_instance w JOIN backfill_run r ON r.workflow_instance_id = w.id
       WHERE w.backfill_id = $1 ORDER BY r.seq`,
      [backfillId],
    );
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  }

  it('30 dates, parallelism 3, the creating master SIGKILLed midway: one run per date, never more than 3, SUCCESS', async () => {
    const posted = await cluster.api<{ backfillId: number; runs: number }>(
      'POST',
      `/workflows/${code}/backfill`,
      {
        start: '2024-01-01',
        end: '2024-01-30',
        cron: '0 0 * * *',
        timezone: 'Europe/Berlin',
        parallelism: 3,
      },
    );
    expect(posted).toEqual({ status: 202, body: { backfillId: expect.any(Number), runs: 30 } });
    const id = posted.body.backfillId;

    // Midway: the master that created the newest runs, and the one driving the newest run.
    const midway = await waitFor(
      'a third of the runs created',
      async () => {
        const rows = await instances(id);
        return rows.length >= 10 ? rows : undefined;
      },
      120_000,
      100,
    );
    const newest = midway[midway.length - 1];
    if (!newest) throw new Error('no run');
    const { rows: hosts } = await cluster.db.query<{ host: string | null }>(
      'SELECT host FROM workflow_instance WHERE id = $1',
      [newest.id],
    );
    const victims = new Set<ChaosNode>();
    for (const address of [newest.created_by, hosts[0]?.host]) {
      const node = cluster.masters().find((m) => m.address === address);
      if (node) victims.add(node);
    }
    expect(victims.size).toBeGreaterThan(0);
    cluster.log(`killing ${[...victims].map((v) => v.name).join(', ')} after ${midway.length} runs`);
    await Promise.all([...victims].map((v) => cluster.kill(v)));

    const done = await waitFor(
      'the backfill to end',
      async () => {
        const b = await get(id);
        return b.state === 'RUNNING' ? undefined : b;
      },
      240_000,
      250,
    );
    const rows = await instances(id);
    expect(done).toMatchObject({
      state: 'SUCCESS',
      total: 30,
      created: 30,
      running: 0,
      succeeded: 30,
      failed: 0,
    });
    expect(done.workflowInstanceIds).toEqual(rows.map((r) => r.id));

    // One run per date, each with that date as its schedule time, all COMPLEMENT_DATA.
    const berlinMidnights = Array.from({ length: 30 }, (_, i) => new Date(Date.UTC(2023, 11, 31 + i, 23)));
    expect(rows.map((r) => r.schedule_time)).toEqual(berlinMidnights);
    // Each run began with a COMPLEMENT_DATA command (a run the killed master drove was then
    // recovered: command_type RECOVER_TOLERANCE_FAULT_PROCESS).
    const { rows: firstCommands } = await cluster.db.query<{ instance_id: string; type: string }>(
      `SELECT DISTINCT ON (instance_id) instance_id, type FROM chaos_command_audit
       WHERE instance_id = ANY($1::bigint[]) AND op = 'INSERT' ORDER BY instance_id, seq`,
      [rows.map((r) => r.id)],
    );
    expect(firstCommands.map((c) => c.type)).toEqual(rows.map(() => 'COMPLEMENT_DATA'));
    expect(
      rows.every((r) => ['COMPLEMENT_DATA', 'RECOVER_TOLERANCE_FAULT_PROCESS'].includes(r.command_type)),
    ).toBe(true);
    expect(rows.every((r) => r.state === 'SUCCESS')).toBe(true);
    // Surviving masters created runs too (the killed one's work was picked up).
    expect(new Set(rows.map((r) => r.created_by)).size).toBeGreaterThan(1);

    // Never more than 3 at once, from the instances' start and end times...
    const intervals = rows.map((r) => ({
      start: r.start_time?.getTime() ?? Number.NaN,
      end: r.end_time?.getTime() ?? Number.NaN,
    }));
    expect(intervals.every((i) => Number.isFinite(i.start) && Number.isFinite(i.end))).toBe(true);
    expect(maxOverlap(intervals)).toBeLessThanOrEqual(3);
    // ...and from every state change, in the order the database wrote them (queued runs count).
    const { rows: audit } = await cluster.db.query<{ instance_id: string; state: string }>(
      'SELECT instance_id, state FROM chaos_instance_audit WHERE instance_id = ANY($1::bigint[]) ORDER BY seq',
      [rows.map((r) => r.id)],
    );
    const latest = new Map<string, string>();
    let maxActive = 0;
    for (const a of audit) {
      latest.set(a.instance_id, a.state);
      maxActive = Math.max(maxActive, [...latest.values()].filter((s) => !ENDED.includes(s)).length);
    }
    expect(maxActive).toBe(3);

    // Created in date order: instance ids (reserved under the backfill's row lock) follow the dates.
    // Not created_at: it is now(), the start of the advancing transaction, taken before the wait
    // for that lock, so two masters' advances may swap it.
    const ids = rows.map((r) => r.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));

    // Every task saw its run's date: scheduleTime in UTC, bizDate the day before in Berlin.
    const lines = new Set(readFileSync(witness, 'utf8').trim().split('\n'));
    for (const t of berlinMidnights) {
      const day = new Date(t.getTime() + 3600_000 - 86_400_000);
      const bizDate = day.toISOString().slice(0, 10).replace(/-/g, '');
      expect(lines).toContain(`${t.toISOString()} ${bizDate}`);
    }
  }, 400_000);

  it('a cancelled backfill creates no more runs; its running run finishes', async () => {
    const posted = await cluster.api<{ backfillId: number; runs: number }>(
      'POST',
      `/workflows/${code}/backfill`,
      {
        start: '2024-02-01T00:00:00Z',
        end: '2024-02-10T00:00:00Z',
        cron: '0 0 * * *',
      },
    );
    expect(posted.status).toBe(202);
    const id = posted.body.backfillId;
    await waitFor(
      'the first run',
      async () => ((await instances(id)).length > 0 ? true : undefined),
      60_000,
      50,
    );
    const cancelled = await cluster.api<BackfillView>('POST', `/backfills/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.state).toBe('CANCELLED');
    const createdAtCancel = cancelled.body.created;
    expect(createdAtCancel).toBeGreaterThanOrEqual(1);
    // The created runs end on their own; then several sweeps (2 s each) and instance-end wakes pass.
    await waitFor(
      'the created runs to end',
      async () => ((await instances(id)).every((r) => ENDED.includes(r.state)) ? true : undefined),
      60_000,
      100,
    );
    await sleep(6000);
    const after = await get(id);
    expect(after).toMatchObject({ state: 'CANCELLED', created: createdAtCancel, running: 0 });
    expect(await instances(id)).toHaveLength(createdAtCancel);
    expect(existsSync(witness)).toBe(true);
    const conflict = await cluster.api<{ message: string }>('POST', `/backfills/${id}/cancel`);
    expect(conflict.status).toBe(409);
  }, 120_000);
});
