import { ACTIVE_TASK_STATES } from '@porpoise/common';
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import {
  CommandRepository,
  createDataSource,
  firstRow,
  queryRows,
  runMigrations,
  TaskGroupRepository,
  TaskInstanceRepository,
  type InstanceFence,
} from '../src';
import { adoptRun, triggerRun } from './support/runs';

/**
 * Task groups on a real Postgres (DESIGN.md section 10): grant passes of two masters racing on
 * separate connections never give more than `capacity` slots and grant first come first served;
 * every path that ends an attempt (here the NEED_FAULT_TOLERANCE of a lost worker, through the
 * master's real markState) frees its slot in the same transaction.
 */
describe('task groups: grant pass and release (real Postgres)', () => {
  const ME = '127.0.0.1:5678';
  let pg: TestServer;
  /** Two masters, each with its own pool, plus a third connection acting as the workers. */
  let masterA: DataSource;
  let masterB: DataSource;
  let workers: DataSource;
  let groupsA: TaskGroupRepository;
  let groupsB: TaskGroupRepository;
  let tasks: TaskInstanceRepository;
  let consumer: CommandRepository;
  let codes = 0;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    masterA = await createDataSource(pg.endpoint, 'task-group-a').initialize();
    masterB = await createDataSource(pg.endpoint, 'task-group-b').initialize();
    workers = await createDataSource(pg.endpoint, 'task-group-workers').initialize();
    groupsA = new TaskGroupRepository(masterA);
    groupsB = new TaskGroupRepository(masterB);
    tasks = new TaskInstanceRepository(workers);
    consumer = new CommandRepository(masterA);
  });
  afterAll(async () => {
    await masterA?.destroy();
    await masterB?.destroy();
    await workers?.destroy();
    await pg?.dispose();
  });

  /** A run as the API writes it, taken by ME: its fence. */
  async function adoptedInstance(): Promise<InstanceFence> {
    return adoptRun(consumer, await triggerRun(masterA, `tg_${++codes}`), ME);
  }

  async function attempts(fence: InstanceFence, group: string, n: number): Promise<number[]> {
    const created = await tasks.createAttempts(
      fence,
      Array.from({ length: n }, (_, i) => ({
        name: `t${String(i).padStart(3, '0')}`,
        attempt: 1,
        taskGroup: group,
      })),
    );
    return created.rows.map((r) => r.id).sort((a, b) => a - b);
  }

  async function queue(group: string) {
    return queryRows<{ id: string; task_instance_id: string; slot_no: number | null }>(
      workers,
      'SELECT id, task_instance_id, slot_no FROM task_group_queue WHERE task_group = $1 ORDER BY id',
      [group],
    );
  }

  it('two masters racing grant passes over 100 requests never exceed capacity 2 and grant in FCFS order', async () => {
    expect(await groupsA.create('race', 2)).toMatchObject({ name: 'race', capacity: 2, held: 0, waiting: 0 });
    const fence = await adoptedInstance();
    const ids = await attempts(fence, 'race', 100);
    // Both masters queue their halves at once; the queue id is each request's place in line.
    await Promise.all([
      Promise.all(ids.filter((_, i) => i % 2 === 0).map((id) => groupsA.enqueue(fence, 'race', [id]))),
      Promise.all(ids.filter((_, i) => i % 2 === 1).map((id) => groupsB.enqueue(fence, 'race', [id]))),
    ]);
    const place = new Map((await queue('race')).map((r) => [Number(r.task_instance_id), Number(r.id)]));
    expect(place.size).toBe(100);

    /** Every grant seen by the workers, with its place in line and when it was given. */
    const seen = new Map<number, { place: number; grantedAt: number }>();
    let maxHeld = 0;
    let done = false;
    const grantLoop = async (groups: TaskGroupRepository) => {
      let passes = 0;
      while (!done) {
        await groups.grantPass('race');
        passes++;
      }
      return passes;
    };
    const workerLoop = async () => {
      while (seen.size < 100) {
        const held = await queryRows<{ task_instance_id: string; granted_at: Date }>(
          workers,
          `SELECT task_instance_id, granted_at FROM task_group_queue
           WHERE task_group = 'race' AND slot_no IS NOT NULL`,
        );
        maxHeld = Math.max(maxHeld, held.length);
        for (const h of held) {
          const id = Number(h.task_instance_id);
          if (seen.has(id)) continue;
          seen.set(id, { place: place.get(id) ?? -1, grantedAt: h.granted_at.getTime() });
          // The task runs and ends: the release trigger frees its slot in this same statement.
          await tasks.markDispatch(fence, id, 'w:1');
          const ended = await tasks.markState(fence, [id], ACTIVE_TASK_STATES, 'SUCCESS', 'done');
          expect(ended.ids).toEqual([id]);
        }
      }
      done = true;
    };
    const [passesA, passesB] = await Promise.all([grantLoop(groupsA), grantLoop(groupsB), workerLoop()]);
    expect(passesA).toBeGreaterThan(0);
    expect(passesB).toBeGreaterThan(0);

    expect(maxHeld).toBeLessThanOrEqual(2);
    expect(seen.size).toBe(100);
    // FCFS: ordered by when each slot was given, the places in line ascend.
    const byGrant = [...seen.values()].sort((a, b) => a.grantedAt - b.grantedAt).map((g) => g.place);
    expect(byGrant).toEqual([...byGrant].sort((a, b) => a - b));
    expect(await queue('race')).toEqual([]);
    expect(await groupsA.find('race')).toMatchObject({ held: 0, waiting: 0 });
  });

  it('a grant pass waits for the one in progress (row lock), then decides from what it committed', async () => {
    await groupsA.create('lock', 2);
    const fence = await adoptedInstance();
    const [w1, w2, w3] = await attempts(fence, 'lock', 3);
    if (w1 === undefined || w2 === undefined || w3 === undefined) throw new Error('three attempts expected');
    await groupsA.enqueue(fence, 'lock', [w1, w2, w3]);
    // Master A's pass, by hand, stopped between its lock and its commit: it gave both slots.
    const a = masterA.createQueryRunner();
    await a.startTransaction();
    try {
      await a.query(`SELECT capacity FROM task_group WHERE name = 'lock' FOR NO KEY UPDATE`);
      await a.query(
        `UPDATE task_group_queue SET slot_no = CASE task_instance_id WHEN $1 THEN 0 ELSE 1 END, granted_at = now()
         WHERE task_instance_id = ANY($2::bigint[])`,
        [w1, [w1, w2]],
      );
      // Master B's pass must wait for it (a pass that did not lock, or counted from a snapshot
      // taken before the wait, would decide on the old free slots).
      const b = groupsB.grantPass('lock');
      await waitUntilAsync(async () => {
        const waiting = await queryRows<{ n: number }>(
          workers,
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE application_name = 'task-group-b' AND wait_event_type = 'Lock'`,
        );
        return firstRow(waiting, 'waiting').n > 0;
      });
      await a.commitTransaction();
      expect(await b).toEqual([]);
    } finally {
      if (a.isTransactionActive) await a.rollbackTransaction();
      await a.release();
    }
    expect((await queue('lock')).map((r) => r.slot_no)).toEqual([0, 1, null]);
    await tasks.markState(fence, [w1], ['SUBMITTED_SUCCESS'], 'KILL', 'stopped');
    expect(await groupsB.grantPass('lock')).toEqual([
      { taskInstanceId: w3, workflowInstanceId: fence.instanceId, slotNo: 0 },
    ]);
  });

  it("frees the slot of a lost worker's attempt (NEED_FAULT_TOLERANCE via markState) and NOTIFYs", async () => {
    await groupsA.create('lost', 1);
    const fence = await adoptedInstance();
    const [first, second] = await attempts(fence, 'lost', 2);
    if (first === undefined || second === undefined) throw new Error('two attempts expected');
    await groupsA.enqueue(fence, 'lost', [first, second]);
    const listener = new Client({ connectionString: pg.endpoint });
    await listener.connect();
    const heard: Array<{ channel: string; payload: string | undefined }> = [];
    listener.on('notification', (n) => heard.push({ channel: n.channel, payload: n.payload }));
    await listener.query('LISTEN porpoise_task_group');
    await listener.query('LISTEN porpoise_instance_control');
    try {
      expect((await groupsB.grantPass('lost')).map((g) => g.taskInstanceId)).toEqual([first]);
      expect(await groupsA.granted(fence.instanceId, [first, second])).toEqual([first]);
      await tasks.markDispatch(fence, first, 'w:1');
      await tasks.markStarted(fence, first, 'w:1', 0);
      // Full: nothing more is granted.
      expect(await groupsA.grantPass('lost')).toEqual([]);

      // The worker is lost: the runner's loseAttempts writes NEED_FAULT_TOLERANCE with markState.
      const lost = await tasks.markState(
        fence,
        [first],
        ACTIVE_TASK_STATES,
        'NEED_FAULT_TOLERANCE',
        'worker w:1 lost',
      );
      expect(lost.ids).toEqual([first]);
      expect((await queue('lost')).map((r) => Number(r.task_instance_id))).toEqual([second]);
      expect((await groupsA.grantPass('lost')).map((g) => g.taskInstanceId)).toEqual([second]);
      await waitUntil(() => heard.some((h) => h.channel === 'porpoise_task_group' && h.payload === 'lost'));
      // The grant told the owner of the instance (the channel its runner reads).
      await waitUntil(
        () =>
          heard.filter(
            (h) => h.channel === 'porpoise_instance_control' && h.payload === String(fence.instanceId),
          ).length >= 2,
      );
    } finally {
      await listener.end();
    }
  });

  it('enqueue is idempotent (keeps place and grant), fenced, and only for SUBMITTED_SUCCESS attempts', async () => {
    await groupsA.create('idem', 1);
    const fence = await adoptedInstance();
    const [a, b, c] = await attempts(fence, 'idem', 3);
    if (a === undefined || b === undefined || c === undefined) throw new Error('three attempts expected');
    await groupsA.enqueue(fence, 'idem', [a]);
    await groupsA.enqueue(fence, 'idem', [b]);
    await groupsA.grantPass('idem');
    // A successor re-requests both after a failover: same places, the grant kept.
    expect(await groupsB.enqueue({ ...fence }, 'idem', [b, a])).toEqual({ owned: true, groupExists: true });
    expect((await queue('idem')).map((r) => [Number(r.task_instance_id), r.slot_no])).toEqual([
      [a, 0],
      [b, null],
    ]);
    // An attempt that already ended gets no row; a stale fence and an unknown group insert nothing.
    await tasks.markState(fence, [c], ['SUBMITTED_SUCCESS'], 'KILL', 'stopped');
    await groupsA.enqueue(fence, 'idem', [c]);
    expect(await groupsA.enqueue({ ...fence, epoch: fence.epoch + 1 }, 'idem', [c])).toEqual({
      owned: false,
      groupExists: true,
    });
    expect(await groupsA.enqueue(fence, 'nope', [c])).toEqual({ owned: true, groupExists: false });
    expect((await queue('idem')).length).toBe(2);

    // In use: no delete. A smaller capacity takes nothing back; ending a holder frees it.
    expect(await groupsA.delete('idem')).toBe('inUse');
    expect(await groupsA.updateCapacity('idem', 0)).toMatchObject({ capacity: 0, held: 1, waiting: 1 });
    await tasks.markState(fence, [a], ['SUBMITTED_SUCCESS'], 'KILL', 'stopped');
    expect(await groupsA.grantPass('idem')).toEqual([]);
    expect(await groupsA.updateCapacity('idem', 3)).toMatchObject({ capacity: 3, held: 0, waiting: 1 });
    expect((await groupsA.grantPass('idem')).map((g) => g.taskInstanceId)).toEqual([b]);
    await tasks.markState(fence, [b], ['SUBMITTED_SUCCESS'], 'PAUSE', 'pausing');
    expect(await groupsA.delete('idem')).toBe('deleted');
    expect(await groupsA.delete('idem')).toBe('notFound');
  });
});

async function waitUntil(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = process.hrtime.bigint();
  while (!check()) {
    if (Number(process.hrtime.bigint() - start) / 1e6 > timeoutMs) {
      throw new Error('condition not met in time');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitUntilAsync(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const start = process.hrtime.bigint();
  while (!(await check())) {
    if (Number(process.hrtime.bigint() - start) / 1e6 > timeoutMs) {
      throw new Error('condition not met in time');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
