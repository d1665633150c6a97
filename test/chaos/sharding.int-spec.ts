/**
 * Command sharding while the set of masters changes (issue 4, item 1): 1,000 runs of a one-task
 * workflow are triggered through the API while masters are added (new processes) and removed,
 * gracefully (SIGTERM) and by SIGKILL. Then: every command made exactly one instance, every
 * command was consumed exactly once (audit trail), every instance reached SUCCESS, no command is
 * left, and each instance's task ran once (witness file): a task runs again only if its first
 * attempt never started; no task runs twice while its worker is alive (no worker is touched here).
 * The membership changes come from a seeded PRNG: `chaos seed: N`, replay with CHAOS_SEED=N.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../harness';
import { ChaosCluster, type ChaosNode } from './cluster';
import { summarize, type CheckInput, type Run, type Violation } from './invariants';
import { chaosSeed, Prng } from './prng';
import { assertInvariants } from './scenario';
import { witnessCommand } from './witness';

const RUNS = 1000;
/** Runs triggered per second, so that consumption overlaps the membership changes. */
const RUNS_PER_SECOND = 60;
const DAG: CheckInput['dag'] = { tasks: ['only'], edges: [] };

type Change = 'add' | 'term' | 'kill';
/** Every kind of change, several times, in an order the seed shuffles. */
const CHANGES: Change[] = ['add', 'add', 'add', 'add', 'term', 'term', 'kill', 'kill'];

describe('command sharding while masters join and leave (real processes, ZooKeeper)', () => {
  const seed = chaosSeed('sharding');
  const rng = new Prng(seed);
  let cluster: ChaosCluster | undefined;
  let failed = false;

  beforeAll(async () => {
    cluster = await ChaosCluster.start({
      registry: 'zookeeper',
      masters: 2,
      workers: 2,
      sessionTimeoutMs: 2500,
      heartbeatIntervalMs: 400,
      log: process.env.CHAOS_VERBOSE ? (line) => process.stdout.write(`${line}\n`) : undefined,
    });
  }, 120_000);

  afterAll(async () => {
    if (!cluster) return;
    await cluster.dispose();
    if (failed || process.env.CHAOS_KEEP) process.stdout.write(`sharding: logs kept in ${cluster.scratch}\n`);
    else rmSync(cluster.scratch, { recursive: true, force: true });
  }, 60_000);

  it(`consumes ${RUNS} commands exactly once while masters are added, stopped and killed`, async () => {
    if (!cluster) throw new Error('the chaos cluster did not start (see beforeAll)');
    const c = cluster;
    try {
      const witness = join(c.scratch, 'witness-sharding.txt');
      const code = await c.createWorkflow({
        name: 'sharding',
        tasks: [{ name: 'only', type: 'SHELL', command: witnessCommand(witness, '0') }],
      });

      const runs: Run[] = [];
      const problems: Violation[] = [];
      const triggering = (async () => {
        const started = Date.now();
        while (runs.length < RUNS) {
          const batch = Math.min(10, RUNS - runs.length);
          runs.push(...(await Promise.all(Array.from({ length: batch }, () => c.trigger(code)))));
          const due = started + (runs.length / RUNS_PER_SECOND) * 1000;
          if (due > Date.now()) await sleep(due - Date.now());
        }
      })();

      const order = rng.shuffle(CHANGES);
      const changing = (async () => {
        for (const change of order) {
          await sleep(rng.int(1000, 2000));
          const up = c.masters().filter((m) => m.state === 'up');
          if (change === 'add' || up.length < 2) {
            const added = await c.addNode('master');
            c.log(`sharding: added ${added.name} (${added.address})`);
            continue;
          }
          const victim: ChaosNode = rng.pick(up);
          const stop = await c.signal(victim, change === 'term' ? 'SIGTERM' : 'SIGKILL');
          c.log(`sharding: ${change === 'term' ? 'stopped' : 'killed'} ${victim.name} (${victim.address})`);
          if (change === 'term' && stop && (stop.exitCode !== 0 || stop.forced)) {
            problems.push({
              invariant: '8',
              message: `${victim.name} did not stop cleanly on SIGTERM (exit ${stop.exitCode}, signal ${stop.exitSignal}${stop.forced ? ', killed after the grace period' : ''})`,
            });
          }
        }
      })();
      await Promise.all([triggering, changing]);

      const ids = runs.map((r) => r.instanceId);
      const stuck = await c.waitFinal(ids, 120_000);
      const input = await c.gather(runs, code, DAG, witness);
      // Which master took each command first: the shares of the slots.
      const takers = new Map<string, number>();
      const taken = new Set<number>();
      for (const row of input.instanceAudit) {
        if (row.host && !taken.has(row.instanceId)) {
          taken.add(row.instanceId);
          takers.set(row.host, (takers.get(row.host) ?? 0) + 1);
        }
      }
      c.log(
        `sharding: first takes per master: ${[...takers].map(([h, n]) => `${h}=${n}`).join(' ')}; ${summarize(input)}`,
      );
      const firstAttempts = input.tasks.filter((t) => t.attempt === 1).length;
      if (firstAttempts !== RUNS) {
        problems.push({ invariant: '1', message: `${firstAttempts} first attempts for ${RUNS} runs` });
      }
      await assertInvariants(c, input, problems, seed, stuck);
    } catch (err) {
      failed = true;
      throw err;
    }
  }, 300_000);
});
