/**
 * Run concurrency on real processes (DESIGN.md section 10, README "Run concurrency"): a
 * SERIAL_WAIT workflow triggered 8 times through the API of a cluster of 3 masters and a worker
 * (and, beside it, a PARALLEL workflow with maxRuns 2 triggered as often); the master driving the
 * running serial run is SIGKILLed midway. The serial runs never overlap (from their start and end
 * times) and start in trigger order, the capped ones never exceed 2 at once, and all end SUCCESS:
 * the gate is decided in the database, so it holds across masters and a master's death.
 */
import { rmSync } from 'node:fs';
import { waitFor } from '@porpoise/test-harness';
import { ChaosCluster } from '../chaos/cluster';
import { checkSerialRuns, type SerialRun } from '../chaos/serial-checker';

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
      // Beside it, a PARALLEL workflow capped at 2 runs, triggered as often.
      const capped = await c.createWorkflow({
        name: 'capped',
        concurrency: { policy: 'PARALLEL', maxRuns: 2 },
        tasks: [{ name: 'nap', type: 'SHELL', command: 'sleep 1' }],
      });
      const ids: number[] = [];
      const cappedIds: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        ids.push((await c.trigger(code)).instanceId);
        cappedIds.push((await c.trigger(capped)).instanceId);
      }

      const timesOf = async (of: readonly number[]): Promise<InstanceTimes[]> =>
        (
          await c.db.query<InstanceTimes>(
            'SELECT id, state, host, start_time, end_time FROM workflow_instance WHERE id = ANY($1::bigint[]) ORDER BY id',
            [of],
          )
        ).rows;
      const times = () => timesOf(ids);
      const asRuns = (rows: InstanceTimes[]): SerialRun[] =>
        rows.map((r) => ({
          id: Number(r.id),
          state: r.state,
          startMs: r.start_time?.getTime() ?? null,
          endMs: r.end_time?.getTime() ?? null,
        }));

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

      const unfinished = await c.waitFinal([...ids, ...cappedIds], 240_000);
      expect(unfinished).toEqual([]);
      const rows = await times();
      expect(rows.map((r) => r.state)).toEqual(ids.map(() => 'SUCCESS'));
      // Never two at once, and in trigger order (ids are in trigger order), from start/end times.
      expect(checkSerialRuns(asRuns(rows), ids, 1)).toEqual([]);
      const cappedRows = await timesOf(cappedIds);
      expect(cappedRows.map((r) => r.state)).toEqual(cappedIds.map(() => 'SUCCESS'));
      expect(checkSerialRuns(asRuns(cappedRows), cappedIds, 2)).toEqual([]);
      // The killed master's run was taken over, and the rest went on without it.
      expect(c.masters().filter((m) => m.state === 'up').length).toBe(2);
    } catch (err) {
      failed = true;
      throw new Error(`${(err as Error).message}\n${c.tails()}`, { cause: err });
    }
  }, 420_000);
});
