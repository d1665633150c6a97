/**
 * How fast the cluster recovers from a dead node, on real processes (`npm run build` first):
 * ZooKeeper, Postgres, an api-server, three masters and three workers from dist.
 *
 * - master: runs of a one-task workflow (`sleep 60`) are under way; the master that drives the
 *   most of them is SIGKILLed; the time is from the kill to the first moment every instance it
 *   drove has another master as its host in the database (polled every 50 ms).
 * - worker: the same runs; the worker that runs the most of their tasks is SIGKILLed; the time
 *   is from the kill to the first moment each of its tasks has a new attempt in DISPATCH or
 *   RUNNING_EXECUTION on another worker.
 *
 * After each round the killed node is started again (same port and DATA_DIR) and the round's
 * runs are stopped. Repeated `rounds` times per kind, per session timeout. Reported as p50 / p95:
 * with provable death (docs/failover.md) a SIGKILLed node is failed over well before its session
 * expires; compare with a build from before it to see the difference.
 */
import { rmSync } from 'node:fs';
import { sleep, waitFor } from '../test/harness';
import { ChaosCluster, type ChaosNode } from '../test/chaos/cluster';
import { sampleStats } from './sample-stats';

export interface FailoverResult {
  kind: 'master' | 'worker';
  sessionTimeoutMs: number;
  /** One per round that recovered within the bound. */
  samplesMs: number[];
  medianMs: number | null;
  p95Ms: number | null;
  maxMs: number | null;
  /** Instances (master) or tasks (worker) the victim had, per round. */
  victimLoad: number[];
  /** Rounds in which nothing recovered within the bound (e.g. no master failover yet). */
  timeouts: number;
}

const RUNS_PER_ROUND = 6;
const POLL_MS = 50;

export async function benchFailover(
  sessionTimeoutMs: number,
  rounds: number,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<FailoverResult[]> {
  const cluster = await ChaosCluster.start({
    registry: 'zookeeper',
    masters: 3,
    workers: 3,
    sessionTimeoutMs,
    heartbeatIntervalMs: 2000,
    audit: false,
  });
  const bound = sessionTimeoutMs * 3 + 30_000;
  try {
    const code = await cluster.createWorkflow({
      name: 'failover-bench',
      tasks: [{ name: 'long', type: 'SHELL', command: 'sleep 60' }],
    });

    /** Triggers a round's runs and waits until each one's task runs on a worker. */
    const startRound = async (): Promise<number[]> => {
      const ids: number[] = [];
      for (let i = 0; i < RUNS_PER_ROUND; i++) ids.push((await cluster.trigger(code)).instanceId);
      await waitFor(
        'the round’s tasks to run',
        async () => {
          const { rows } = await cluster.db.query(
            `SELECT 1 FROM task_instance WHERE workflow_instance_id = ANY($1::bigint[]) AND state = 'RUNNING_EXECUTION'`,
            [ids],
          );
          return rows.length === ids.length;
        },
        60_000,
        100,
      );
      return ids;
    };
    const endRound = async (ids: number[], victim: ChaosNode) => {
      if (victim.state === 'down') await cluster.startNode(victim);
      for (const id of ids) await cluster.api('POST', `/workflow-instances/${id}/stop`);
      const left = await cluster.waitFinal(ids, bound);
      if (left.length > 0) log(`  (instances ${left.join(', ')} did not stop)`);
    };
    const busiest = async (role: 'master' | 'worker', ids: number[]) => {
      const sql =
        role === 'master'
          ? 'SELECT host, count(*)::int AS n FROM workflow_instance WHERE id = ANY($1::bigint[]) GROUP BY host'
          : `SELECT host, count(*)::int AS n FROM task_instance
             WHERE workflow_instance_id = ANY($1::bigint[]) AND state = 'RUNNING_EXECUTION' GROUP BY host`;
      const { rows } = await cluster.db.query<{ host: string; n: number }>(sql, [ids]);
      const up = cluster.nodes.filter((n) => n.role === role && n.state === 'up');
      const ranked = rows
        .flatMap((r) => {
          const node = up.find((n) => n.address === r.host);
          return node ? [{ node, load: r.n }] : [];
        })
        .sort((a, b) => b.load - a.load);
      return ranked[0];
    };

    const results: FailoverResult[] = [];
    for (const kind of ['master', 'worker'] as const) {
      const result: FailoverResult = {
        kind,
        sessionTimeoutMs,
        samplesMs: [],
        medianMs: null,
        p95Ms: null,
        maxMs: null,
        victimLoad: [],
        timeouts: 0,
      };
      for (let round = 1; round <= rounds; round++) {
        const ids = await startRound();
        const target = await busiest(kind, ids);
        if (!target) throw new Error(`no ${kind} drives any of ${ids.join(', ')}`);
        const { node: victim, load } = target;
        const watched =
          kind === 'master'
            ? (
                await cluster.db.query<{ id: string }>(
                  'SELECT id FROM workflow_instance WHERE id = ANY($1::bigint[]) AND host = $2',
                  [ids, victim.address],
                )
              ).rows.map((r) => Number(r.id))
            : (
                await cluster.db.query<{ wid: string; name: string; attempt: number }>(
                  `SELECT workflow_instance_id AS wid, name, attempt FROM task_instance
                   WHERE workflow_instance_id = ANY($1::bigint[]) AND host = $2 AND state = 'RUNNING_EXECUTION'`,
                  [ids, victim.address],
                )
              ).rows.map((r) => ({ instance: Number(r.wid), name: r.name, attempt: r.attempt }));
        const killedAt = Date.now();
        await cluster.kill(victim);
        let recoveredAt: number | undefined;
        while (Date.now() - killedAt < bound) {
          const done =
            kind === 'master'
              ? (
                  await cluster.db.query(
                    'SELECT 1 FROM workflow_instance WHERE id = ANY($1::bigint[]) AND host IS NOT NULL AND host <> $2',
                    [watched, victim.address],
                  )
                ).rows.length === watched.length
              : await (async () => {
                  const tasks = watched as Array<{ instance: number; name: string; attempt: number }>;
                  const { rows } = await cluster.db.query<{ wid: string; name: string; attempt: number }>(
                    `SELECT workflow_instance_id AS wid, name, attempt FROM task_instance
                     WHERE workflow_instance_id = ANY($1::bigint[]) AND host IS NOT NULL AND host <> $2
                       AND state IN ('DISPATCH', 'RUNNING_EXECUTION')`,
                    [tasks.map((t) => t.instance), victim.address],
                  );
                  return tasks.every((t) =>
                    rows.some(
                      (r) => Number(r.wid) === t.instance && r.name === t.name && r.attempt > t.attempt,
                    ),
                  );
                })();
          if (done) {
            recoveredAt = Date.now();
            break;
          }
          await sleep(POLL_MS);
        }
        result.victimLoad.push(load);
        if (recoveredAt === undefined) {
          result.timeouts++;
          log(
            `${kind} round ${round} (session ${sessionTimeoutMs} ms): nothing recovered within ${bound} ms`,
          );
        } else {
          result.samplesMs.push(recoveredAt - killedAt);
          log(
            `${kind} round ${round} (session ${sessionTimeoutMs} ms): ${victim.name} with ${load} ${kind === 'master' ? 'instance(s)' : 'task(s)'} -> ${recoveredAt - killedAt} ms`,
          );
        }
        await endRound(ids, victim);
        // Let the restarted node settle before the next kill.
        await sleep(1000);
      }
      Object.assign(result, sampleStats(result.samplesMs));
      results.push(result);
    }
    return results;
  } finally {
    if (cluster.unexpectedExits.length > 0) {
      log(`nodes that exited on their own: ${cluster.unexpectedExits.map((e) => e.node).join(', ')}`);
    }
    await cluster.dispose();
    rmSync(cluster.scratch, { recursive: true, force: true });
  }
}
