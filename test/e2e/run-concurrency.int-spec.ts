/**
 * Run concurrency on real processes (DESIGN.md section 10, README "Run concurrency"): a
 * SERIAL_WAIT workflow triggered 8 times through the API of a cluster of 3 masters and a worker;
 * the master driving the running run is SIGKILLed midway. The runs never overlap (from their
 * start and end times), start in trigger order, and all end SUCCESS: the gate is decided in the
 * database, so it holds across masters and a master's death.
 */
import { rmSync } from 'node:fs';
import { waitFor } from '@porpoise/test-harness';
import { ChaosCluster } from '../chaos/cluster';

const RUNS = 8;

interface InstanceTimes {
  id: string;
  state: string;
  host: string | null;
  start_time: Date | null;
  end_time: Date | null;
}

describe('run concurrency: SERIAL_WAIT across masters and a master kill (real processes)', () => {
  let cluster: ChaosCluster | undefined;
  let failed = false;

  beforeAll(async () => {
    cluster = await ChaosCluster.start({
      registry: 'jdbc',
      masters: 3,
      workers: 1,
      sessionTimeoutMs: 3000,
      heartbeatIntervalMs: 500,
      audit: false,
      log: process.env.CHAOS_VERBOSE ? (line) => process.stdout.write(`${line}\n`) : undefined,
    });
  }, 180_000);

  afterAll(async () => {
    if (!cluster) return;
    await cluster.dispose();
    if (failed || process.env.CHAOS_KEEP) {
      process.stdout.write(`run-concurrency: logs kept in ${cluster.scratch}\n`);
    } else {
      rmSync(cluster.scratch, { recursive: true, force: true });
    }
  }, 60_000);

  it(`runs ${RUNS} triggers one at a time, in trigger order, through a SIGKILL of the driving master`, async () => {
    if (!cluster) throw new Error('the cluster did not start (see beforeAll)');
    const c = cluster;
    try {
      const code = await c.createWorkflow({
        name: 'serial',
        concurrency: { policy: 'SERIAL_WAIT' },
        tasks: [{ name: 'nap', type: 'SHELL', command: 'sleep 1' }],
      });
      const ids: number[] = [];
      for (let i = 0; i < RUNS; i++) ids.push((await c.trigger(code)).instanceId);

      const times = async (): Promise<InstanceTimes[]> =>
        (
          await c.db.query<InstanceTimes>(
            'SELECT id, state, host, start_time, end_time FROM workflow_instance WHERE id = ANY($1::bigint[]) ORDER BY id',
            [ids],
          )
        ).rows;

      // A run still waiting says why.
      const last = ids[ids.length - 1];
      const diagnosis = await c.api<{ tasks: Array<{ name: string; waitingFor: string | null }> }>(
        'GET',
        `/workflow-instances/${last}/diagnosis`,
      );
      expect(diagnosis.status).toBe(200);
      expect(diagnosis.body.tasks).toEqual([
        expect.objectContaining({ name: 'nap', waitingFor: 'serial-wait' }),
      ]);

      // Midway: once two runs have ended, kill the master driving the one that runs.
      let victimHost: string | null = null;
      await waitFor(
        'the third run driven by a master after two ended',
        async () => {
          const rows = await times();
          const ended = rows.filter((r) => r.state === 'SUCCESS').length;
          const running = rows.find((r) => r.state === 'RUNNING_EXECUTION' && r.host !== null);
          if (ended >= 2 && running) victimHost = running.host;
          return victimHost !== null;
        },
        120_000,
        50,
      );
      const victim = c.masters().find((m) => m.address === victimHost);
      if (!victim) throw new Error(`no master at ${String(victimHost)}`);
      await c.kill(victim);
      c.log(`killed ${victim.name} (${victim.address}) driving a serial run`);

      const unfinished = await c.waitFinal(ids, 240_000);
      expect(unfinished).toEqual([]);
      const rows = await times();
      expect(rows.map((r) => r.state)).toEqual(ids.map(() => 'SUCCESS'));
      const byStart = [...rows].sort(
        (a, b) => (a.start_time?.getTime() ?? 0) - (b.start_time?.getTime() ?? 0),
      );
      // Trigger order (ids are given in trigger order).
      expect(byStart.map((r) => Number(r.id))).toEqual(ids);
      // Never two at once: each run starts after the one before it ended.
      for (let i = 1; i < byStart.length; i++) {
        const before = byStart[i - 1];
        const after = byStart[i];
        if (!before?.end_time || !after?.start_time) throw new Error('a run without start or end time');
        expect(after.start_time.getTime()).toBeGreaterThanOrEqual(before.end_time.getTime());
      }
      // The killed master's run was taken over, and the rest went on without it.
      expect(c.masters().filter((m) => m.state === 'up').length).toBe(2);
    } catch (err) {
      failed = true;
      throw new Error(`${(err as Error).message}\n${c.tails()}`, { cause: err });
    }
  }, 420_000);
});
