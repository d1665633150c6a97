/**
 * The chaos scenarios, shared by the per-registry test files: a stream of runs of a witnessed
 * DAG while masters and workers are SIGKILLed at random and restarted, and every master killed
 * with one restarted. Every random choice comes from a Prng seeded by CHAOS_SEED (or at random),
 * printed as `chaos seed: N`.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sleep, waitFor } from '../harness';
import { ChaosCluster, type ChaosNode, type RegistryKind, type Role } from './cluster';
import {
  checkHits,
  checkInvariants,
  countHits,
  formatViolations,
  type RequiredHits,
  summarize,
  type CheckInput,
  type DagSpec,
  type Run,
  type Violation,
} from './invariants';
import { chaosSeed, Prng } from './prng';
import {
  checkSchedule,
  formatScheduleViolations,
  parseScheduleWitness,
  type ScheduleViolation,
} from './schedule-checker';
import { witnessCommand } from './witness';

/** CHAOS_FREEZE_MASTERS=0 leaves masters out of the SIGSTOP faults (to tell problems apart). */
const FREEZE_MASTERS = process.env.CHAOS_FREEZE_MASTERS !== '0';

/** The child workflow of the SUB_WORKFLOW task `sub`: two witnessed SHELL tasks, x -> y. */
export const CHAOS_CHILD_DAG: DagSpec = {
  tasks: ['x', 'y'],
  edges: [{ from: 'x', to: 'y' }],
};

/**
 * A diamond with a tail, a -> (b, c) -> d -> e, and beside it the master-side task types:
 * - a -> sub -> e: `sub` is a SUB_WORKFLOW task whose child runs CHAOS_CHILD_DAG (so e waits
 *   for d and for the child's tasks);
 * - a -> f -> cond, cond -> g -> g2, cond -> h: `cond` is a CONDITIONS task with success target
 *   g (g2 is only reachable through g) and failure target h. f fails on purpose (a fail line,
 *   exit 1) in a run whose param FAIL_F is 1: then h runs and g, g2 end SKIPPED; else g, g2 run
 *   and h ends SKIPPED. Either way the run ends SUCCESS (cond handles f's failure).
 */
export const CHAOS_DAG: DagSpec = {
  tasks: ['a', 'b', 'c', 'd', 'e', 'sub', 'f', 'cond', 'g', 'g2', 'h'],
  edges: [
    { from: 'a', to: 'b' },
    { from: 'a', to: 'c' },
    { from: 'b', to: 'd' },
    { from: 'c', to: 'd' },
    { from: 'd', to: 'e' },
    { from: 'a', to: 'sub' },
    { from: 'sub', to: 'e' },
    { from: 'a', to: 'f' },
    { from: 'f', to: 'cond' },
    { from: 'cond', to: 'g' },
    { from: 'g', to: 'g2' },
    { from: 'cond', to: 'h' },
  ],
  conditions: { cond: { success: ['g'], failure: ['h'] } },
  subWorkflows: { sub: CHAOS_CHILD_DAG },
  failWhen: { f: 'FAIL_F' },
};

/** The witnessed SHELL tasks of a DAG (not its CONDITIONS and SUB_WORKFLOW tasks). */
const shellTasks = (dag: DagSpec) =>
  dag.tasks.filter((t) => dag.conditions?.[t] === undefined && dag.subWorkflows?.[t] === undefined);

const sleepParam = (task: string) => `SLEEP_${task.toUpperCase()}`;

/** The codes of a chaos workflow and of the child workflow its SUB_WORKFLOW task runs. */
export interface ChaosWorkflow {
  readonly code: string;
  readonly childCode: string;
  /** Both, for gather(). */
  readonly codes: readonly string[];
}

/**
 * Defines CHAOS_CHILD_DAG and CHAOS_DAG through the REST API. Each SHELL task sleeps as long as
 * its run's param SLEEP_<TASK> says (chosen per run); the parent hands SLEEP_X and SLEEP_Y on to
 * its child through the SUB_WORKFLOW task's params. Every SHELL task, the child's too, writes its
 * witness lines to witnessFile.
 */
export async function createChaosWorkflow(
  cluster: ChaosCluster,
  name: string,
  witnessFile: string,
): Promise<ChaosWorkflow> {
  const shell = (dag: DagSpec, task: string) => ({
    name: task,
    type: 'SHELL',
    command: witnessCommand(witnessFile, `$PORPOISE_PARAM_${sleepParam(task)}`, dag.failWhen?.[task]),
  });
  const defaults = (dag: DagSpec) => Object.fromEntries(shellTasks(dag).map((t) => [sleepParam(t), '0.2']));
  const childCode = await cluster.createWorkflow({
    name: `${name}-child`,
    params: defaults(CHAOS_CHILD_DAG),
    tasks: CHAOS_CHILD_DAG.tasks.map((task) => shell(CHAOS_CHILD_DAG, task)),
    edges: CHAOS_CHILD_DAG.edges,
  });
  const childParams = Object.fromEntries(
    shellTasks(CHAOS_CHILD_DAG).map((t) => [sleepParam(t), `\${${sleepParam(t)}}`]),
  );
  const code = await cluster.createWorkflow({
    name,
    params: { ...defaults(CHAOS_DAG), ...defaults(CHAOS_CHILD_DAG), FAIL_F: '0' },
    tasks: CHAOS_DAG.tasks.map((task) => {
      const conditions = CHAOS_DAG.conditions?.[task];
      if (conditions) return { name: task, type: 'CONDITIONS', conditions };
      if (CHAOS_DAG.subWorkflows?.[task]) {
        return {
          name: task,
          type: 'SUB_WORKFLOW',
          subWorkflow: { workflowCode: childCode, params: childParams },
        };
      }
      return shell(CHAOS_DAG, task);
    }),
    edges: CHAOS_DAG.edges,
  });
  return { code, childCode, codes: [code, childCode] };
}

/**
 * A run's params: the sleep of each SHELL task (0.2 to 1 s; 0.2 to 0.6 s in the child, whose two
 * tasks stand in series on one path), and FAIL_F (f fails, cond takes its failure branch) in
 * about half of the runs.
 */
function runParams(rng: Prng): Record<string, string> {
  const params: Record<string, string> = {};
  for (const task of shellTasks(CHAOS_DAG)) params[sleepParam(task)] = rng.range(0.2, 1).toFixed(1);
  for (const task of shellTasks(CHAOS_CHILD_DAG)) params[sleepParam(task)] = rng.range(0.2, 0.6).toFixed(1);
  params.FAIL_F = rng.chance(0.5) ? '1' : '0';
  return params;
}

export interface StreamPlan {
  /** How many runs to trigger, one after the other. */
  readonly runs: number;
  /** Pause between two triggers, ms [min, max]. */
  readonly runGapMs: readonly [number, number];
  /** Pause between two kills, ms [min, max]. */
  readonly faultGapMs: readonly [number, number];
  /** How long a killed node stays down before it is started again (same port, same DATA_DIR). */
  readonly downMs: readonly [number, number];
  /**
   * Besides SIGKILL: the chance that a fault is a SIGTERM (graceful stop, then a start again), and
   * that it is a SIGSTOP past the session timeout followed by SIGCONT (a stalled node).
   */
  readonly termChance?: number;
  readonly freezeChance?: number;
}

/** Problems of the harness itself that break invariant 8 (a node that does not come back). */
export interface StreamOutcome {
  readonly runs: Run[];
  /** Faults caused (kills, stops, freezes). */
  readonly faults: number;
  /** Of them, aimed at a node that held running work at that moment. */
  readonly aimed: number;
  readonly problems: Violation[];
}

/**
 * The faults a stream must land on running work at least once each (its proof, checked by
 * checkHits): a master SIGKILLed while it drives RUNNING instances, a worker SIGKILLed while it
 * runs task attempts, and, where masters are frozen, a master frozen while it drives RUNNING
 * instances. Until one has landed, the next fault is that one, aimed at a node that holds running
 * work (looked up in the database); after that the PRNG decides alone.
 */
type Quota = 'master-kill' | 'worker-kill' | 'master-freeze';

const upCount = (cluster: ChaosCluster, role: Role) =>
  cluster.nodes.filter((n) => n.role === role && n.state === 'up').length;

/**
 * Triggers plan.runs runs while a master or a worker (never the last one up of its role) is
 * SIGKILLed (or stopped, or frozen) every faultGapMs and started again downMs later, until every
 * run triggered, and every child instance under it, has settled (bounded by settleMs after the
 * last trigger): the faults go on while the last runs recover. Each victim is picked among the
 * nodes of its role that hold running work at that moment, when some do; the quota faults (Quota)
 * come first. Resolves once every killed node is back.
 */
export async function chaosStream(
  cluster: ChaosCluster,
  rng: Prng,
  code: string,
  plan: StreamPlan,
  settleMs: number,
): Promise<StreamOutcome> {
  const runs: Run[] = [];
  const problems: Violation[] = [];
  const restarts: Array<Promise<void>> = [];
  let faults = 0;
  let aimed = 0;
  let streaming = true;
  let streamEnd = Number.POSITIVE_INFINITY;
  const quotas = new Set<Quota>(['master-kill', 'worker-kill']);
  if (FREEZE_MASTERS && (plan.freezeChance ?? 0) > 0) quotas.add('master-freeze');
  const restart = async (node: ChaosNode, downMs: number) => {
    await sleep(downMs);
    cluster.log(`chaos: starting ${node.name} (${node.address}) again`);
    try {
      await cluster.startNode(node);
    } catch (err) {
      problems.push({ invariant: '8', message: `${node.name} did not come back: ${(err as Error).message}` });
    }
  };
  /** Faults go on until the runs have settled (or the settle bound is reached: the checker reports it). */
  const settled = async () => {
    if (streaming) return false;
    if (Date.now() > streamEnd + settleMs) return true;
    const open = await cluster.waitFinal(
      runs.map((x) => x.instanceId),
      0,
    );
    return open.length === 0;
  };

  const triggering = (async () => {
    const r = rng.fork('runs');
    try {
      for (let i = 0; i < plan.runs; i++) {
        runs.push(await cluster.trigger(code, runParams(r)));
        await sleep(r.int(plan.runGapMs[0], plan.runGapMs[1]));
      }
    } finally {
      streaming = false;
      streamEnd = Date.now();
    }
  })();

  const faulting = (async () => {
    const r = rng.fork('faults');
    await sleep(r.int(plan.faultGapMs[0], plan.faultGapMs[1]));
    while (!(await settled())) {
      // The PRNG's draws are the same whatever the quotas decide, so the random part replays.
      const first: Role = r.chance(0.5) ? 'master' : 'worker';
      const dice = r.next();
      const pickDice = r.next();
      const downDraw = r.int(plan.downMs[0], plan.downMs[1]);
      const freezeDraw = r.int(500, 2500);
      let role: Role | undefined = [first, first === 'master' ? 'worker' : 'master'].find(
        (x): x is Role => upCount(cluster, x as Role) > 1,
      );
      let freeze = dice < (plan.freezeChance ?? 0) && (role === 'worker' || FREEZE_MASTERS);
      let signal: 'SIGKILL' | 'SIGTERM' =
        !freeze && dice < (plan.freezeChance ?? 0) + (plan.termChance ?? 0) ? 'SIGTERM' : 'SIGKILL';
      // A quota still open, and a node that could take it now: aim this fault at it.
      const work = {
        master: await cluster.runningWork('master').catch(() => new Map<string, number>()),
        worker: await cluster.runningWork('worker').catch(() => new Map<string, number>()),
      };
      const busy = (x: Role) =>
        cluster.nodes.filter(
          (n) =>
            n.role === x && n.state === 'up' && (work[x as 'master' | 'worker']?.get(n.address) ?? 0) > 0,
        );
      let quota: Quota | undefined;
      for (const q of quotas) {
        const qRole: Role = q === 'worker-kill' ? 'worker' : 'master';
        if (upCount(cluster, qRole) > 1 && busy(qRole).length > 0) {
          quota = q;
          role = qRole;
          freeze = q === 'master-freeze';
          signal = 'SIGKILL';
          break;
        }
      }
      if (role) {
        const up = cluster.nodes.filter((n) => n.role === role && n.state === 'up');
        const withWork = busy(role);
        const pool = withWork.length > 0 ? withWork : up;
        const victim = pool[Math.min(pool.length - 1, Math.floor(pickDice * pool.length))] as ChaosNode;
        if (withWork.length > 0) aimed++;
        const why = quota ? `, aimed: ${quota}` : withWork.length > 0 ? ', aimed at running work' : '';
        if (freeze) {
          const ms = cluster.options.sessionTimeoutMs + freezeDraw;
          cluster.log(
            `chaos: SIGSTOP ${victim.name} (${victim.address}, pid ${victim.pid}) for ${ms} ms${why}`,
          );
          // The instances it drives now: the master-freeze quota is met only if one of them is
          // taken over while it sleeps; if none is (they all ended first, or no master was free
          // to take them), the quota opens again and a later fault is aimed at it anew.
          const drove =
            quota === 'master-freeze'
              ? (
                  await cluster.db
                    .query<{ id: string; epoch: string }>(
                      `SELECT id, epoch FROM workflow_instance WHERE host = $1 AND state = 'RUNNING_EXECUTION'`,
                      [victim.address],
                    )
                    .catch(() => ({ rows: [] as Array<{ id: string; epoch: string }> }))
                ).rows
              : [];
          restarts.push(
            cluster.freeze(victim, ms).then(async () => {
              cluster.log(`chaos: SIGCONT ${victim.name}`);
              if (quota !== 'master-freeze') return;
              const { rows } = await cluster.db
                .query(
                  `SELECT 1 FROM workflow_instance w JOIN unnest($1::bigint[], $2::bigint[]) AS d(id, epoch)
                     ON w.id = d.id WHERE w.epoch > d.epoch AND w.host IS DISTINCT FROM $3`,
                  [drove.map((d) => d.id), drove.map((d) => d.epoch), victim.address],
                )
                .catch(() => ({ rows: [] }));
              if (rows.length === 0) {
                cluster.log(
                  `chaos: nothing of ${victim.name} was taken over while it slept: aiming a freeze again`,
                );
                quotas.add('master-freeze');
              }
            }),
          );
        } else {
          // An aimed master kill stays down past its session, so that another master takes its
          // instances over (a quick restart on the same address could recover them itself).
          const downMs =
            quota === 'master-kill' ? Math.max(downDraw, cluster.options.sessionTimeoutMs + 1500) : downDraw;
          cluster.log(
            `chaos: ${signal} ${victim.name} (${victim.address}, pid ${victim.pid}); back in ${downMs} ms${why}`,
          );
          const stop = await cluster.signal(victim, signal);
          if (signal === 'SIGTERM' && stop && (stop.exitCode !== 0 || stop.forced)) {
            problems.push({
              invariant: '8',
              message: `${victim.name} did not stop cleanly on SIGTERM (exit ${stop.exitCode}, signal ${stop.exitSignal}${stop.forced ? ', killed after the grace period' : ''})`,
            });
          }
          restarts.push(restart(victim, downMs));
        }
        if (quota) quotas.delete(quota);
        faults++;
      }
      await sleep(r.int(plan.faultGapMs[0], plan.faultGapMs[1]));
    }
  })();

  await Promise.all([triggering, faulting]);
  await Promise.all(restarts);
  return { runs, faults, aimed, problems };
}

/**
 * Every master killed at once while runs are under way, the registry left to expire them all,
 * then one of them started again (same address, same DATA_DIR): its start-up failover must
 * recover the instances of all three.
 */
export async function killAllMasters(
  cluster: ChaosCluster,
  rng: Prng,
  code: string,
  runCount: number,
): Promise<{ runs: Run[]; restarted: ChaosNode; problems: Violation[] }> {
  const r = rng.fork('all-masters');
  const runs: Run[] = [];
  for (let i = 0; i < runCount; i++) runs.push(await cluster.trigger(code, runParams(r)));
  // Every instance owned by a master, and some tasks under way.
  await waitFor(
    'every run to be taken by a master',
    async () => {
      const { rows } = await cluster.db.query(
        'SELECT 1 FROM workflow_instance WHERE id = ANY($1::bigint[]) AND host IS NULL',
        [runs.map((x) => x.instanceId)],
      );
      return rows.length === 0;
    },
    30_000,
    100,
  );
  await sleep(r.int(300, 1500));
  const masters = cluster.masters().filter((m) => m.state === 'up');
  const owned = await cluster.runningWork('master').catch(() => new Map<string, number>());
  cluster.log(`chaos: SIGKILL every master: ${masters.map((m) => m.name).join(', ')}`);
  await Promise.all(masters.map((m) => cluster.kill(m)));
  // Past the session timeout: the registry has removed them all, with no master left to react.
  await sleep(cluster.options.sessionTimeoutMs + 1500);
  // Aimed: the one started again is among those that drove the fewest runs, so that it takes over
  // instances the others were running (its own predecessor's would prove less).
  const fewest = Math.min(...masters.map((m) => owned.get(m.address) ?? 0));
  const restarted = r.pick(masters.filter((m) => (owned.get(m.address) ?? 0) === fewest));
  cluster.log(`chaos: starting ${restarted.name} (${restarted.address}) again, alone`);
  const problems: Violation[] = [];
  try {
    await cluster.startNode(restarted);
  } catch (err) {
    problems.push({
      invariant: '8',
      message: `${restarted.name} did not come back: ${(err as Error).message}`,
    });
  }
  return { runs, restarted, problems };
}

/** Throws a readable error (violations, stuck instances, node tails, seed, kept logs) unless all holds. */
export async function assertInvariants(
  cluster: ChaosCluster,
  input: CheckInput,
  extra: readonly Violation[],
  seed: number,
  stuck: readonly number[],
  required: RequiredHits = {},
): Promise<void> {
  const hits = countHits(input);
  const violations = [...extra, ...checkInvariants(input), ...checkHits(hits, required)];
  const summary =
    `${summarize(input)}; hits: ${hits.takeovers.length} takeovers of a running instance, ` +
    `${hits.workerReruns.length} re-runs after a worker fault, ${hits.staleFenced.length} stale masters fenced`;
  for (const line of [...hits.takeovers, ...hits.workerReruns, ...hits.staleFenced]) {
    cluster.log(`chaos: hit: ${line}`);
  }
  cluster.log(`chaos: ${summary}: ${formatViolations(violations)}`);
  process.stdout.write(`chaos (${cluster.options.registry}): ${summary}: ${formatViolations(violations)}\n`);
  if (violations.length === 0) return;
  throw new Error(
    [
      `chaos seed ${seed} (replay: CHAOS_SEED=${seed})`,
      summary,
      formatViolations(violations),
      stuck.length > 0 ? `unfinished instances:\n${await cluster.describeInstances(stuck)}` : '',
      `faults: ${input.faults.map((f) => `${f.kind} ${f.role} ${f.address} @${f.at}`).join('; ')}`,
      `node logs and witness files kept in ${cluster.scratch}`,
      cluster.tails(15),
    ]
      .filter(Boolean)
      .join('\n'),
  );
}

/**
 * A RUN_ALL every-second schedule on three masters while two of them are SIGKILLed one after the
 * other (the last one fires alone) and one of them is started again, for about durationMs; then
 * the schedule is paused and the runs left to end. Checked by the schedule checker: every second
 * from the first fire to the cutoff ran exactly once, as a SCHEDULER run whose task saw its own
 * `${porpoise.scheduleTime}`. Returns the violations (none when all holds).
 */
export async function scheduleChaos(
  cluster: ChaosCluster,
  rng: Prng,
  durationMs: number,
  settleMs: number,
): Promise<ScheduleViolation[]> {
  const r = rng.fork('schedule');
  const exitsBefore = cluster.unexpectedExits.length;
  // Every master up first (an earlier scenario may have left some down).
  for (const m of cluster.masters().filter((n) => n.state === 'down')) await cluster.startNode(m);
  const witness = join(cluster.scratch, 'witness-schedule.txt');
  const code = await cluster.createWorkflow({
    name: `chaos-schedule-${cluster.options.registry}`,
    tasks: [
      {
        name: 'echo',
        type: 'SHELL',
        command: `echo "sched $PORPOISE_WORKFLOW_INSTANCE_ID \${porpoise.scheduleTime}" >> ${witness}`,
      },
    ],
  });
  const cron = '* * * * * *';
  const created = await cluster.api<{ id: number }>('POST', '/schedules', {
    workflowCode: code,
    cron,
    misfirePolicy: 'RUN_ALL',
  });
  if (created.status !== 201) {
    throw new Error(`POST /schedules answered ${created.status}: ${JSON.stringify(created.body)}`);
  }
  const id = created.body.id;
  const began = Date.now();
  const up = () => cluster.masters().filter((m) => m.state === 'up');
  await sleep(r.int(4000, 9000));
  const first = r.pick(up());
  cluster.log(`chaos: schedule: SIGKILL ${first.name} (${first.address})`);
  await cluster.kill(first);
  await sleep(r.int(3000, 8000));
  const second = r.pick(up());
  cluster.log(`chaos: schedule: SIGKILL ${second.name} (${second.address}); one master left`);
  await cluster.kill(second);
  await sleep(r.int(4000, 10_000));
  const back = r.pick([first, second]);
  cluster.log(`chaos: schedule: starting ${back.name} (${back.address}) again`);
  const problems: ScheduleViolation[] = [];
  try {
    await cluster.startNode(back);
  } catch (err) {
    problems.push({
      kind: 'wrong-run',
      message: `${back.name} did not come back: ${(err as Error).message}`,
    });
  }
  await sleep(Math.max(0, durationMs - (Date.now() - began)));

  // The cutoff: the database's now. Every second up to it must be handled (bounded wait).
  const q = async <T>(sql: string, params: unknown[] = []) =>
    (await cluster.db.query(sql, params)).rows as T[];
  const cutoffMs = Number(
    (await q<{ ms: string }>('SELECT floor(extract(epoch FROM now()) * 1000)::bigint AS ms'))[0]?.ms,
  );
  const caughtUp = async () =>
    (
      await q<{ n: string }>(
        'SELECT count(*) AS n FROM schedule_fire WHERE schedule_id = $1 AND fire_time > to_timestamp($2::bigint / 1000.0)',
        [id, cutoffMs - 1000],
      )
    ).some((x) => Number(x.n) > 0);
  // A schedule that never catches up is reported by the checker (a gap), not here.
  await waitFor('the schedule to catch up with the cutoff', caughtUp, 60_000, 250).catch(() => undefined);
  const paused = await cluster.api('PATCH', `/schedules/${id}`, { enabled: false });
  if (paused.status !== 200) throw new Error(`PATCH /schedules/${id} answered ${paused.status}`);
  const runIds = (
    await q<{ id: string }>('SELECT id FROM workflow_instance WHERE schedule_id = $1', [id])
  ).map((x) => Number(x.id));
  await cluster.waitFinal(runIds, settleMs);

  const ledger = await q<{ fire_ms: string; outcome: 'FIRED' | 'MISFIRE_SKIPPED'; wid: string | null }>(
    `SELECT floor(extract(epoch FROM fire_time) * 1000)::bigint AS fire_ms, outcome, workflow_instance_id AS wid
     FROM schedule_fire WHERE schedule_id = $1 ORDER BY fire_time`,
    [id],
  );
  // The first command of each run, from the audit trail (a failover rewrites command_type).
  const runs = await q<{ id: string; schedule_ms: string; command_type: string; state: string }>(
    `SELECT w.id, floor(extract(epoch FROM w.schedule_time) * 1000)::bigint AS schedule_ms, w.state,
            coalesce((SELECT a.type FROM chaos_command_audit a WHERE a.instance_id = w.id AND a.op = 'INSERT'
                      ORDER BY a.seq LIMIT 1), 'none') AS command_type
     FROM workflow_instance w WHERE w.schedule_id = $1`,
    [id],
  );
  const violations = checkSchedule({
    schedule: { cron, timezone: 'UTC', misfirePolicy: 'RUN_ALL' },
    cutoffMs,
    ledger: ledger.map((e) => ({
      fireMs: Number(e.fire_ms),
      outcome: e.outcome,
      instanceId: e.wid === null ? null : Number(e.wid),
    })),
    runs: runs.map((x) => ({
      id: Number(x.id),
      scheduleMs: Number(x.schedule_ms),
      commandType: x.command_type,
      state: x.state,
    })),
    witness: parseScheduleWitness(existsSync(witness) ? readFileSync(witness, 'utf8') : ''),
    requireFinal: true,
  });
  const exits = cluster.unexpectedExits.slice(exitsBefore).map((e): ScheduleViolation => ({
    kind: 'wrong-run',
    message: `unexpected exit of ${e.node}: code ${e.code}, signal ${e.signal}`,
  }));
  const all = [...problems, ...exits, ...violations];
  const summary = `schedule ${id}: ${ledger.length} fire times, ${runs.length} runs up to ${new Date(cutoffMs).toISOString()}`;
  cluster.log(`chaos: ${summary}: ${formatScheduleViolations(all)}`);
  process.stdout.write(`chaos (${cluster.options.registry}): ${summary}: ${formatScheduleViolations(all)}\n`);
  return all;
}

/**
 * Seeds replayed by every chaos file besides its random one, each as a short stream of its own
 * (REGRESSION_RUNS runs): 2726438407 found the frozen master's late Dispatch in CI (docs/chaos.md),
 * 3235110685 is the seed the docs replay. A seed replays the PRNG's choices, not the machine's
 * timing; the aimed quota faults make each of them hit work anyway.
 */
export const REGRESSION_SEEDS: readonly number[] = [2726438407, 3235110685];
export const REGRESSION_RUNS = 8;

export interface ChaosSuiteOptions {
  readonly registry: RegistryKind;
  readonly stream: StreamPlan;
  /** The regression seeds' streams: the random stream's plan with this many runs (default REGRESSION_RUNS). */
  readonly regressionRuns?: number;
  /** Also kill every master and restart one (invariant 5). */
  readonly allMasters?: { readonly runs: number };
  /** Bound on the wait for the runs to finish after the chaos (a stuck run fails invariant 7). */
  readonly settleMs: number;
  /** Also the schedule scenario (scheduleChaos) for about this long. */
  readonly schedule?: { readonly durationMs: number };
}

const SESSION_TIMEOUT_MS = 2500;
const HEARTBEAT_INTERVAL_MS = 400;

/** The chaos suite for one registry backend: three masters, three workers, one api-server. */
export function describeChaos(options: ChaosSuiteOptions): void {
  describe(`chaos on real processes (${options.registry} registry)`, () => {
    const seed = chaosSeed(`chaos ${options.registry}`);
    const rng = new Prng(seed);
    let cluster: ChaosCluster | undefined;
    let failed = false;

    beforeAll(async () => {
      cluster = await ChaosCluster.start({
        registry: options.registry,
        masters: 3,
        workers: 3,
        sessionTimeoutMs: SESSION_TIMEOUT_MS,
        heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
        log: process.env.CHAOS_VERBOSE ? (line) => process.stdout.write(`${line}\n`) : undefined,
      });
      cluster.log(`chaos seed: ${seed}`);
    }, 120_000);

    afterAll(async () => {
      if (!cluster) return;
      await cluster.dispose();
      if (failed || process.env.CHAOS_KEEP) {
        process.stdout.write(`chaos (${options.registry}): logs kept in ${cluster.scratch}\n`);
      } else rmSync(cluster.scratch, { recursive: true, force: true });
    }, 60_000);

    const guarded = (fn: () => Promise<void>) => async () => {
      try {
        await fn();
      } catch (err) {
        failed = true;
        throw err;
      }
    };

    /** One stream under faults, then every invariant and the hits its faults must show. */
    const stream = async (c: ChaosCluster, streamSeed: number, plan: StreamPlan, label: string) => {
      const witness = join(c.scratch, `witness-${label}.txt`);
      const wf = await createChaosWorkflow(c, `chaos-${label}-${options.registry}`, witness);
      const outcome = await chaosStream(c, new Prng(streamSeed), wf.code, plan, options.settleMs);
      const stuck = await c.waitFinal(
        outcome.runs.map((r) => r.instanceId),
        options.settleMs,
      );
      const input = await c.gather(outcome.runs, wf.codes, CHAOS_DAG, witness);
      c.log(
        `chaos: ${label}: ${outcome.faults} faults (${outcome.aimed} aimed at running work) during ${outcome.runs.length} runs`,
      );
      process.stdout.write(
        `chaos (${options.registry}) ${label}: ${outcome.faults} faults, ${outcome.aimed} aimed at running work\n`,
      );
      await assertInvariants(c, input, outcome.problems, streamSeed, stuck, {
        takeover: true,
        workerRerun: true,
        staleFenced: FREEZE_MASTERS && (plan.freezeChance ?? 0) > 0,
      });
    };

    it(
      'finishes a stream of runs while masters and workers are SIGKILLed and restarted, its faults hit running work, and every invariant holds',
      guarded(async () => {
        if (!cluster) throw new Error('the chaos cluster did not start (see beforeAll)');
        await stream(cluster, seed, options.stream, 'stream');
      }),
      300_000,
    );

    for (const regression of REGRESSION_SEEDS) {
      it(
        `replays regression seed ${regression}: a short stream under faults that hit running work, every invariant holds`,
        guarded(async () => {
          if (!cluster) throw new Error('the chaos cluster did not start (see beforeAll)');
          const plan = { ...options.stream, runs: options.regressionRuns ?? REGRESSION_RUNS };
          await stream(cluster, regression, plan, `regression-${regression}`);
        }),
        240_000,
      );
    }

    if (options.allMasters) {
      const runCount = options.allMasters.runs;
      it(
        'recovers every run by start-up failover when every master was killed and one started again',
        guarded(async () => {
          if (!cluster) throw new Error('the chaos cluster did not start (see beforeAll)');
          const c = cluster;
          const witness = join(c.scratch, 'witness-all-masters.txt');
          const wf = await createChaosWorkflow(c, `chaos-all-masters-${options.registry}`, witness);
          const { runs, problems } = await killAllMasters(c, rng, wf.code, runCount);
          const stuck = await c.waitFinal(
            runs.map((r) => r.instanceId),
            options.settleMs,
          );
          const input = await c.gather(runs, wf.codes, CHAOS_DAG, witness, '5');
          await assertInvariants(c, input, problems, seed, stuck, { takeover: true });
        }),
        180_000,
      );
    }

    if (options.schedule) {
      const { durationMs } = options.schedule;
      it(
        'fires an every-second RUN_ALL schedule exactly once per second while two of three masters are SIGKILLed and one restarted',
        guarded(async () => {
          if (!cluster) throw new Error('the chaos cluster did not start (see beforeAll)');
          const c = cluster;
          const violations = await scheduleChaos(c, rng, durationMs, options.settleMs);
          if (violations.length === 0) return;
          throw new Error(
            [
              `chaos seed ${seed} (replay: CHAOS_SEED=${seed})`,
              formatScheduleViolations(violations, 30),
              `node logs and witness files kept in ${c.scratch}`,
              c.tails(15),
            ].join('\n'),
          );
        }),
        durationMs + options.settleMs + 120_000,
      );
    }
  });
}
