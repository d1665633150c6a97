/**
 * Partition scenarios (issue 13 item 3, docs/chaos.md "Partitions"), shared by the per-registry
 * files chaos-partition-*.int-spec.ts: a cluster whose masters' and workers' links all go through
 * partition proxies (proxy.ts; ChaosCluster option `partitions`), runs of the chaos workflow in
 * flight, one node's links black-holed for a while, then healed. Every invariant of
 * checkInvariants is checked, and each scenario proves that its partition hit work:
 *
 * - a master cut off from the registry but not from Postgres: its session expires, another master
 *   takes over a RUNNING instance it drove while it is still cut off, and it stands down; no write
 *   of it at an older epoch wins (the task audit's writer_epoch against the owner's epoch);
 * - a worker cut off from the masters (both ways) but not from the registry: a task it ran ended
 *   while it was cut off and its result reached the database only after the heal; it stayed
 *   registered under the same process the whole time (provable death must not fire) and none of
 *   its attempts ran again;
 * - a master cut off from Postgres but not from the registry: a task of an instance it drove ended
 *   meanwhile and its result was recorded after the heal. With the JDBC registry, Postgres is the
 *   registry: the master's session expires too, so the first scenario's proofs apply as well.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../harness';
import { describeUnless } from '../harness/skip';
import { authHeaders } from '../harness/api-token';
import { ChaosCluster, type ChaosNode, type RegistryKind } from './cluster';
import type { CheckInput, DagSpec, Run, Violation } from './invariants';
import { chaosSeed, Prng } from './prng';
import { delayOf, partitionSkipReason } from './proxy';
import { assertInvariants, CHAOS_CHILD_DAG, CHAOS_DAG, createChaosWorkflow } from './scenario';

const SESSION_TIMEOUT_MS = 2500;
const HEARTBEAT_INTERVAL_MS = 400;
/** Bound on the wait for every run to end after the heal (a stuck run fails invariant 7). */
const SETTLE_MS = 90_000;

const shellTasks = (dag: DagSpec) =>
  dag.tasks.filter((t) => dag.conditions?.[t] === undefined && dag.subWorkflows?.[t] === undefined);

/** A run's params as the chaos stream draws them: task sleeps (0.2–1 s) and FAIL_F half the time. */
function runParams(rng: Prng): Record<string, string> {
  const params: Record<string, string> = {};
  for (const t of shellTasks(CHAOS_DAG)) params[`SLEEP_${t.toUpperCase()}`] = rng.range(0.2, 1).toFixed(1);
  for (const t of shellTasks(CHAOS_CHILD_DAG)) {
    params[`SLEEP_${t.toUpperCase()}`] = rng.range(0.2, 0.6).toFixed(1);
  }
  params.FAIL_F = rng.chance(0.5) ? '1' : '0';
  return params;
}

/** When the victim's links were cut and healed (ms since the epoch). */
interface Window {
  readonly cutAt: number;
  readonly healAt: number;
}

interface Scenario {
  readonly label: string;
  readonly victimRole: 'master' | 'worker';
  /** What the victim is cut off from. */
  readonly cutFrom: (c: ChaosCluster, victim: ChaosNode) => ReadonlyArray<ChaosNode | string>;
  /**
   * Links of the victim that are slow rather than cut, for the same time: what it sends is
   * delayed by ms (its answers are not).
   */
  readonly slow?: { readonly to: readonly string[]; readonly ms: number };
  /**
   * The params of the runs in flight at the cut (default runParams): a scenario that needs tasks
   * still running when the victim acts (a worker ending its tasks at its liveness deadline) gives
   * them longer sleeps.
   */
  readonly runParams?: (rng: Prng) => Record<string, string>;
  /** Resolves when the partition may end (bounded); may record problems. */
  readonly hold: (c: ChaosCluster, victim: ChaosNode, cutAt: number, problems: Violation[]) => Promise<void>;
  /** After the heal, before the runs are waited for (a node to start again). */
  readonly afterHeal?: (c: ChaosCluster) => Promise<void>;
  /** The proof that the partition hit work, and the scenario's own guarantees: violations if not. */
  readonly prove: (
    c: ChaosCluster,
    input: CheckInput,
    victim: ChaosNode,
    window: Window,
  ) => Promise<Violation[]>;
}

/**
 * Runs in flight, a victim of the scenario's role chosen among the nodes that hold running work
 * (the one that holds the most), its links cut, runs triggered meanwhile too, the heal, every run
 * waited for, then every invariant and the scenario's proofs.
 */
async function runScenario(c: ChaosCluster, rng: Prng, seed: number, scenario: Scenario): Promise<void> {
  for (const n of c.nodes.filter((x) => x.state === 'down')) await c.startNode(n);
  const witness = join(c.scratch, `witness-${scenario.label}.txt`);
  const wf = await createChaosWorkflow(c, `partition-${scenario.label}-${c.options.registry}`, witness);
  const runs: Run[] = [];
  const problems: Violation[] = [];
  const r = rng.fork(scenario.label);
  for (let i = 0; i < 4; i++) {
    runs.push(await c.trigger(wf.code, (scenario.runParams ?? runParams)(r)));
    await sleep(r.int(200, 500));
  }
  // The victim: the node of its role with the most task attempts running right now (its own, or
  // of the instances it drives).
  let victim: ChaosNode | undefined;
  const lookUntil = Date.now() + 30_000;
  while (!victim && Date.now() < lookUntil) {
    const work = await runningTasks(c, scenario.victimRole);
    const best = c.nodes
      .filter((n) => n.role === scenario.victimRole && n.state === 'up' && (work.get(n.address) ?? 0) > 0)
      .sort((a, b) => (work.get(b.address) ?? 0) - (work.get(a.address) ?? 0))[0];
    if (best) victim = best;
    else await sleep(50);
  }
  if (!victim) throw new Error(`${scenario.label}: no ${scenario.victimRole} ever held running work`);
  const cutAt = Date.now();
  c.partition(victim, scenario.cutFrom(c, victim));
  if (scenario.slow) c.partition(victim, scenario.slow.to, delayOf(scenario.slow.ms, true));
  // More runs while it is cut off: they must not be lost either (and a worker cut off from the
  // masters may be picked for their tasks).
  const during = (async () => {
    for (let i = 0; i < 3; i++) {
      await sleep(r.int(300, 700));
      runs.push(await c.trigger(wf.code, runParams(r)));
    }
  })();
  await Promise.all([scenario.hold(c, victim, cutAt, problems), during]);
  const healAt = Date.now();
  c.heal();
  await scenario.afterHeal?.(c);
  const stuck = await c.waitFinal(
    runs.map((x) => x.instanceId),
    SETTLE_MS,
  );
  if (scenario.victimRole === 'master') {
    // The victim's own stand-down line (it comes once its session is back): bounded, not required here.
    const until = Date.now() + 5_000;
    while (Date.now() < until && !c.fenced.some((f) => f.address === victim?.address && f.at >= cutAt)) {
      await sleep(100);
    }
  }
  const input = await c.gather(runs, wf.codes, CHAOS_DAG, witness);
  const proof = await scenario.prove(c, input, victim, { cutAt, healAt });
  process.stdout.write(
    `partition (${c.options.registry}) ${scenario.label}: ${victim.name} cut for ${healAt - cutAt} ms; ${runs.length} runs\n`,
  );
  await assertInvariants(c, input, [...problems, ...proof], seed, stuck, {});
}

/**
 * Task attempts in RUNNING_EXECUTION by address: of the worker that runs them, or of the master
 * that owns their instance (its results are on their way to it: the partition hits them).
 */
async function runningTasks(c: ChaosCluster, role: 'master' | 'worker'): Promise<Map<string, number>> {
  const { rows } = await c.db.query<{ host: string; n: string }>(
    role === 'worker'
      ? `SELECT host, count(*) AS n FROM task_instance
         WHERE state = 'RUNNING_EXECUTION' AND host IS NOT NULL GROUP BY host`
      : `SELECT w.host, count(*) AS n FROM task_instance t JOIN workflow_instance w ON w.id = t.workflow_instance_id
         WHERE t.state = 'RUNNING_EXECUTION' AND w.state = 'RUNNING_EXECUTION' AND w.host IS NOT NULL GROUP BY w.host`,
  );
  return new Map(rows.map((r) => [r.host, Number(r.n)]));
}

/** The instances another master took from victim while it was cut off (instance audit). */
function takeoversFrom(input: CheckInput, victim: ChaosNode, window: Window): string[] {
  const found: string[] = [];
  const byInstance = new Map<number, CheckInput['instanceAudit'][number][]>();
  for (const row of [...input.instanceAudit].sort((a, b) => a.seq - b.seq)) {
    const list = byInstance.get(row.instanceId) ?? [];
    list.push(row);
    byInstance.set(row.instanceId, list);
  }
  for (const [id, rows] of byInstance) {
    const driven = rows.find((x) => x.host === victim.address && x.state === 'RUNNING_EXECUTION');
    if (!driven) continue;
    const taken = rows.find(
      (x) =>
        x.seq > driven.seq &&
        x.host !== null &&
        x.host !== victim.address &&
        x.epoch > driven.epoch &&
        (x.at ?? 0) >= window.cutAt &&
        (x.at ?? Number.POSITIVE_INFINITY) <= window.healAt,
    );
    if (taken) {
      found.push(
        `instance ${id}: ${victim.address} epoch ${driven.epoch} -> ${taken.host} epoch ${taken.epoch}`,
      );
    }
  }
  return found;
}

/**
 * Results held across the partition: attempts (on worker, or of instances whose owner at the cut
 * was master) that ended (witness end or fail line) while the links were cut and whose final state
 * reached the database only after the heal.
 */
function heldResults(
  input: CheckInput,
  window: Window,
  which: { worker?: ChaosNode; master?: ChaosNode },
): string[] {
  const ownerAtCut = new Map<number, string | null>();
  for (const row of [...input.instanceAudit].sort((a, b) => a.seq - b.seq)) {
    if ((row.at ?? 0) <= window.cutAt) ownerAtCut.set(row.instanceId, row.host);
  }
  const firstFinal = new Map<number, number>();
  for (const row of [...input.taskAudit].sort((a, b) => a.seq - b.seq)) {
    if ((row.state === 'SUCCESS' || row.state === 'FAILURE') && !firstFinal.has(row.taskId)) {
      firstFinal.set(row.taskId, row.at);
    }
  }
  const held: string[] = [];
  for (const line of input.witness.lines) {
    if (line.kind === 'start') continue;
    if (line.ms < window.cutAt || line.ms >= window.healAt) continue;
    if (which.worker && line.workerPort !== which.worker.port) continue;
    if (which.master && ownerAtCut.get(line.instance) !== which.master.address) continue;
    const recorded = firstFinal.get(line.taskInstanceId);
    if (recorded !== undefined && recorded >= window.healAt) {
      held.push(
        `task ${line.taskInstanceId} (${line.instance}/${line.task}#${line.attempt}) ended ${line.ms - window.cutAt} ms into the cut, recorded ${recorded - window.healAt} ms after the heal`,
      );
    }
  }
  return held;
}

/** Lines of the node logs of role that match re (all incarnations, from the log files). */
function logLines(c: ChaosCluster, role: 'master' | 'worker', re: RegExp): string[] {
  return c.nodes
    .filter((n) => n.role === role)
    .flatMap((n) => {
      let text = '';
      try {
        text = readFileSync(n.logFile, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter((l) => re.test(l))
        .map((l) => `${n.name}: ${l}`);
    });
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Waits until another master took over an instance the victim drove (the takeover is what the
 * scenario is about), then a little longer so that the stale master acts on what it still holds;
 * bounded.
 */
async function holdUntilTakeover(c: ChaosCluster, victim: ChaosNode, cutAt: number, problems: Violation[]) {
  const deadline = Date.now() + 25_000;
  for (;;) {
    const { rows } = await c.db.query<{ n: string }>(
      `SELECT count(*) AS n FROM chaos_instance_audit a
       WHERE a.host IS NOT NULL AND a.host <> $1 AND a.at >= to_timestamp($2::bigint / 1000.0)
         AND EXISTS (SELECT 1 FROM chaos_instance_audit b WHERE b.instance_id = a.instance_id
                     AND b.host = $1 AND b.epoch < a.epoch)`,
      [victim.address, cutAt],
    );
    if (Number(rows[0]?.n ?? 0) > 0) break;
    if (Date.now() > deadline) {
      problems.push({
        invariant: 'hit',
        message: `no master took over an instance of ${victim.name} within 25 s`,
      });
      return;
    }
    await sleep(100);
  }
  await sleep(3000);
}

/** The proofs of a master whose registry session expired under a partition. */
function provedSessionExpiry(
  c: ChaosCluster,
  input: CheckInput,
  victim: ChaosNode,
  window: Window,
): Violation[] {
  const out: Violation[] = [];
  const takeovers = takeoversFrom(input, victim, window);
  const lost = input.faults.filter(
    (f) => f.address === victim.address && f.kind === 'session-lost' && f.at >= window.cutAt,
  );
  const fenced = c.fenced.filter((f) => f.address === victim.address && f.at >= window.cutAt);
  c.log(
    `chaos: partition hit: ${takeovers.length} takeover(s) from ${victim.name}: ${takeovers.join('; ')}; ` +
      `${lost.length} session loss(es); ${fenced.length} stand-down / fence line(s): ` +
      fenced
        .map((f) => (f.instanceId ? `instance ${f.instanceId} epoch ${f.epoch}` : 'stood down'))
        .join(', '),
  );
  process.stdout.write(
    `partition (${c.options.registry}): ${takeovers.length} takeovers from ${victim.name} while cut off, ` +
      `${fenced.filter((f) => f.instanceId !== undefined).length} fenced writes, ${lost.length} session losses\n`,
  );
  if (takeovers.length === 0) {
    out.push({
      invariant: 'hit',
      message: `no RUNNING instance of ${victim.name} was taken over by another master while it was cut off`,
    });
  }
  if (lost.length === 0) {
    out.push({ invariant: 'hit', message: `${victim.name} never said its registry session was lost` });
  }
  if (
    victim.pid === undefined ||
    !input.processes?.some((p) => p.pid === victim.pid && p.startedAt < window.cutAt)
  ) {
    out.push({ invariant: 'hit', message: `${victim.name} is not the process that was cut off` });
  }
  return out;
}

function masterCutFromRegistry(): Scenario {
  return {
    label: 'master-registry',
    victimRole: 'master',
    cutFrom: (c) => [c.registryEndpoint],
    hold: holdUntilTakeover,
    prove: async (c, input, victim, window) => provedSessionExpiry(c, input, victim, window),
  };
}

/**
 * The same with the master's Postgres link slow, not cut: its statements reach Postgres a session
 * timeout late (their answers come back at once), so what it writes after the cut lands after
 * the takeover, where the epoch fence must refuse it. The refusal is reported by the master
 * itself (`lost ownership of workflow instance N (epoch E)`) when the answer comes back before it
 * stood down on its own: required where the registry lets that happen (ZooKeeper: the client
 * declares the session lost only a session timeout after it noticed the link down, later than
 * the server expires it; etcd's client gives up before the lease runs out). Either way the task
 * audit must show no write at an older epoch than the owner's (invariant 2).
 */
function masterCutFromRegistrySlowPostgres(requireFence: boolean): Scenario {
  return {
    label: 'master-registry-slow-postgres',
    victimRole: 'master',
    cutFrom: (c) => [c.registryEndpoint],
    slow: { to: [ChaosCluster.POSTGRES], ms: SESSION_TIMEOUT_MS + 500 },
    hold: holdUntilTakeover,
    prove: async (c, input, victim, window) => {
      const out = provedSessionExpiry(c, input, victim, window);
      const refused = c.fenced.filter(
        (f) => f.address === victim.address && f.at >= window.cutAt && f.instanceId !== undefined,
      );
      if (refused.length === 0 && requireFence) {
        out.push({
          invariant: 'hit',
          message: `no write of ${victim.name} was refused by the epoch fence (no "lost ownership of workflow instance" line)`,
        });
      }
      return out;
    },
  };
}

/**
 * A worker cut off from every master (both ways). With killOwner, the master that owns most of
 * the instances whose tasks it runs is also SIGKILLed right after the cut and kept down until the
 * heal: another master takes those instances over while it cannot reach the worker (its TakeOver
 * is black-holed), and must neither lose the worker's results nor run its tasks again.
 */
function workerCutFromMasters(killOwner = false): Scenario {
  /** The worker's registration (heartbeat startTime), watched while it is cut off. */
  let registrations: Array<number | undefined> = [];
  let killed: ChaosNode | undefined;
  return {
    label: killOwner ? 'worker-masters-failover' : 'worker-masters',
    victimRole: 'worker',
    cutFrom: (c) => c.masters(),
    hold: async (c, victim, cutAt, problems) => {
      registrations = [];
      killed = undefined;
      let takenOver = !killOwner;
      if (killOwner) {
        const { rows } = await c.db.query<{ host: string; n: string }>(
          `SELECT w.host, count(*) AS n FROM task_instance t JOIN workflow_instance w ON w.id = t.workflow_instance_id
           WHERE t.state = 'RUNNING_EXECUTION' AND t.host = $1 AND w.state = 'RUNNING_EXECUTION' AND w.host IS NOT NULL
           GROUP BY w.host ORDER BY n DESC LIMIT 1`,
          [victim.address],
        );
        killed = c.masters().find((m) => m.address === rows[0]?.host && m.state === 'up');
        if (!killed) {
          problems.push({
            invariant: 'hit',
            message: `no master owned a running task of ${victim.name} at the cut`,
          });
        } else {
          c.log(
            `chaos: SIGKILL ${killed.name} (${killed.address}) while ${victim.name} is cut off; back after the heal`,
          );
          await c.kill(killed);
        }
      }
      // Long enough for its running tasks (0.2–1 s each) to end while cut off, past two sessions,
      // and (killOwner) until another master took over an instance of the killed one.
      const until = Date.now() + SESSION_TIMEOUT_MS * 2;
      const bound = Date.now() + 25_000;
      while ((Date.now() < until || !takenOver) && Date.now() < bound) {
        if (!takenOver && killed) {
          const { rows } = await c.db.query(
            `SELECT 1 FROM chaos_instance_audit a WHERE a.host IS NOT NULL AND a.host <> $1
               AND a.at >= to_timestamp($2::bigint / 1000.0)
               AND EXISTS (SELECT 1 FROM chaos_instance_audit b WHERE b.instance_id = a.instance_id
                           AND b.host = $1 AND b.epoch < a.epoch) LIMIT 1`,
            [killed.address, cutAt],
          );
          takenOver = rows.length > 0;
        }
        const res = await fetch(`${c.apiUrl}/api/v1/cluster/nodes`, { headers: authHeaders() }).catch(
          () => undefined,
        );
        const body =
          res?.status === 200
            ? ((await res.json()) as { workers: Array<{ port: number; startTime: number }> })
            : undefined;
        registrations.push(body?.workers.find((w) => w.port === victim.port)?.startTime);
        await sleep(200);
      }
    },
    afterHeal: async (c) => {
      if (killed?.state === 'down') await c.startNode(killed);
    },
    prove: async (c, input, victim, window) => {
      const out: Violation[] = [];
      if (killOwner && killed) {
        const takeovers = takeoversFrom(input, killed, window);
        c.log(
          `chaos: partition hit: ${takeovers.length} takeover(s) from ${killed.name}: ${takeovers.join('; ')}`,
        );
        if (takeovers.length === 0) {
          out.push({
            invariant: 'hit',
            message: `no instance of the killed ${killed.name} was taken over while ${victim.name} was cut off`,
          });
        }
      }
      const held = heldResults(input, window, { worker: victim });
      // Dispatches the masters sent into the black hole (an ambiguous Dispatch: it may have
      // started there); reported, not required: it depends on the masters picking this worker.
      const sentIntoCut = logLines(
        c,
        'master',
        new RegExp(`Dispatch of task .* to ${escape(victim.address)} failed, it may have started there`),
      );
      c.log(
        `chaos: partition hit: ${sentIntoCut.length} Dispatch(es) to ${victim.name} lost in the cut: ${sentIntoCut.join(' | ')}`,
      );
      process.stdout.write(
        `partition (${c.options.registry}): ${sentIntoCut.length} Dispatches to ${victim.name} timed out in the cut\n`,
      );
      c.log(
        `chaos: partition hit: ${held.length} result(s) of ${victim.name} held and delivered after the heal: ${held.join('; ')}`,
      );
      process.stdout.write(
        `partition (${c.options.registry}): ${held.length} results of ${victim.name} held across the cut\n`,
      );
      // With the owner killed, the proof is the takeover above (results may be few: those of the
      // new owner's instances are redirected to it).
      if (held.length === 0 && !killOwner) {
        out.push({
          invariant: 'hit',
          message: `no task of ${victim.name} ended while it was cut off and was recorded after the heal`,
        });
      }
      const seen = new Set(registrations);
      if (seen.size !== 1 || seen.has(undefined)) {
        out.push({
          invariant: 'b',
          message: `${victim.name} did not stay registered as one process while cut off from the masters: ${[...seen].join(', ')}`,
        });
      }
      const judged = logLines(
        c,
        'master',
        new RegExp(`${escape(victim.address)}.*(process is gone|judged dead)`),
      );
      if (judged.length > 0) {
        out.push({ invariant: 'b', message: `a master judged ${victim.name} dead: ${judged.join(' | ')}` });
      }
      const lost = input.faults.filter((f) => f.address === victim.address);
      if (lost.length > 0) {
        out.push({
          invariant: 'b',
          message: `${victim.name} had faults while only cut off from the masters: ${lost.map((f) => f.kind).join(', ')}`,
        });
      }
      // Nothing it ran ran again (the checker says so too: no fault excuses a re-run on it).
      const ranOnVictim = new Set(
        input.witness.lines
          .filter((l) => l.kind === 'start' && l.workerPort === victim.port)
          .map((l) => `${l.instance}/${l.task}/${l.attempt}`),
      );
      const rerun = input.tasks.filter(
        (t) => t.attempt > 1 && ranOnVictim.has(`${t.instanceId}/${t.name}/${t.attempt - 1}`),
      );
      if (rerun.length > 0) {
        out.push({
          invariant: 'b',
          message: `tasks run by ${victim.name} ran again: ${rerun.map((t) => `${t.instanceId}/${t.name}#${t.attempt}`).join(', ')}`,
        });
      }
      return out;
    },
  };
}

/**
 * A worker cut off from the registry (with JDBC: from Postgres, its registry) but not from the
 * masters: its session runs out, it ends its running tasks itself before the session can expire
 * (its liveness deadline), the masters run them again elsewhere as new attempts, and it registers
 * anew after the heal. The re-runs are excused only by its own lost-session line (the checker's
 * fault window); the proof is that such a re-run happened and that it came back.
 */
function workerCutFromRegistry(): Scenario {
  return {
    label: 'worker-registry',
    victimRole: 'worker',
    // Tasks of 4-6 s: the victim still runs some when, about 1.8 s after the cut (its liveness
    // deadline at a 2.5 s session), it ends them itself; with the default 0.2-1 s they could all
    // have finished (and reported: its masters are reachable) by then, and nothing would re-run.
    runParams: (rng) => ({
      ...runParams(rng),
      ...Object.fromEntries(
        shellTasks(CHAOS_DAG).map((t) => [`SLEEP_${t.toUpperCase()}`, rng.range(4, 6).toFixed(1)]),
      ),
    }),
    cutFrom: (c) => [c.registryEndpoint],
    hold: () => sleep(SESSION_TIMEOUT_MS * 2),
    prove: async (c, input, victim, window) => {
      const out: Violation[] = [];
      const lost = input.faults.filter(
        (f) => f.address === victim.address && f.kind === 'session-lost' && f.at >= window.cutAt,
      );
      const ranOnVictim = new Set(
        input.witness.lines
          .filter((l) => l.kind === 'start' && l.workerPort === victim.port && l.ms < window.healAt)
          .map((l) => `${l.instance}/${l.task}/${l.attempt}`),
      );
      const rerun = input.tasks.filter(
        (t) => t.attempt > 1 && ranOnVictim.has(`${t.instanceId}/${t.name}/${t.attempt - 1}`),
      );
      c.log(
        `chaos: partition hit: ${victim.name} lost its session ${lost.length} time(s); ${rerun.length} of its attempts ran again: ` +
          rerun.map((t) => `${t.instanceId}/${t.name}#${t.attempt}`).join(', '),
      );
      process.stdout.write(
        `partition (${c.options.registry}): ${rerun.length} attempts of ${victim.name} ran again after its session was lost\n`,
      );
      if (lost.length === 0) {
        out.push({ invariant: 'hit', message: `${victim.name} never said its session was lost` });
      }
      if (rerun.length === 0) {
        out.push({
          invariant: 'hit',
          message: `no attempt of ${victim.name} ran again after its session was lost`,
        });
      }
      // It came back: registered again (a new registration) after the heal, without a restart (bounded wait).
      const registered = async () =>
        fetch(`${c.apiUrl}/api/v1/cluster/nodes`, { headers: authHeaders() })
          .then(async (r) => ((await r.json()) as { workers: Array<{ port: number }> }).workers)
          .then((workers) => workers.some((w) => w.port === victim.port))
          .catch(() => false);
      const until = Date.now() + 15_000;
      while (!(await registered()) && Date.now() < until) await sleep(200);
      if (!(await registered())) {
        out.push({ invariant: '8', message: `${victim.name} is not registered again 15 s after the heal` });
      }
      return out;
    },
  };
}

function masterCutFromPostgres(registry: RegistryKind): Scenario {
  const jdbc = registry === 'jdbc';
  return {
    label: jdbc ? 'master-postgres-registry' : 'master-postgres',
    victimRole: 'master',
    cutFrom: () => [ChaosCluster.POSTGRES],
    // JDBC: Postgres is the registry, so the session expires and another master takes over.
    hold: jdbc ? holdUntilTakeover : () => sleep(SESSION_TIMEOUT_MS * 2.4),
    prove: async (c, input, victim, window) => {
      // JDBC: the proof is the takeover; the new owner collects the results (a TakeOver redirects
      // them), so none has to wait for the heal.
      if (jdbc) return provedSessionExpiry(c, input, victim, window);
      const out: Violation[] = [];
      const held = heldResults(input, window, { master: victim });
      c.log(
        `chaos: partition hit: ${held.length} result(s) for ${victim.name}'s instances recorded after the heal: ${held.join('; ')}`,
      );
      process.stdout.write(
        `partition (${c.options.registry}): ${held.length} results of instances of ${victim.name} held across the cut\n`,
      );
      if (held.length === 0) {
        out.push({
          invariant: 'hit',
          message: `no task of an instance ${victim.name} drove ended while it was cut off from Postgres and was recorded after the heal`,
        });
      }
      return out;
    },
  };
}

/** The partition scenarios on one registry: two masters, two workers, one api-server. */
export function describePartitions(registry: RegistryKind): void {
  describeUnless(partitionSkipReason())(`partitions through proxies (${registry} registry)`, () => {
    const seed = chaosSeed(`partitions ${registry}`);
    const rng = new Prng(seed);
    let cluster: ChaosCluster | undefined;
    let failed = false;

    beforeAll(async () => {
      cluster = await ChaosCluster.start({
        registry,
        masters: 2,
        workers: 2,
        sessionTimeoutMs: SESSION_TIMEOUT_MS,
        heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
        partitions: true,
        log: process.env.CHAOS_VERBOSE ? (line) => process.stdout.write(`${line}\n`) : undefined,
      });
      cluster.log(`chaos seed: ${seed}`);
    }, 120_000);

    afterAll(async () => {
      if (!cluster) return;
      await cluster.dispose();
      if (failed || process.env.CHAOS_KEEP) {
        process.stdout.write(`partitions (${registry}): logs kept in ${cluster.scratch}\n`);
      } else rmSync(cluster.scratch, { recursive: true, force: true });
    }, 60_000);

    const run = (scenario: Scenario) => async () => {
      if (!cluster) throw new Error('the cluster did not start (see beforeAll)');
      try {
        await runScenario(cluster, rng, seed, scenario);
      } catch (err) {
        failed = true;
        throw err;
      } finally {
        cluster.heal();
      }
    };

    if (registry !== 'jdbc') {
      it(
        'a master cut off from the registry but not from Postgres: its session expires, another master takes its running instances over, the fence holds, every invariant holds',
        run(masterCutFromRegistry()),
        150_000,
      );
    }
    if (registry !== 'jdbc') {
      it(
        'a master cut off from the registry with a slow Postgres link: its late writes are refused by the epoch fence, every invariant holds',
        run(masterCutFromRegistrySlowPostgres(registry === 'zookeeper')),
        150_000,
      );
    }
    it(
      'a worker cut off from its masters but not from the registry: its results are held and delivered after the heal, it stays registered, nothing runs again',
      run(workerCutFromMasters()),
      150_000,
    );
    it(
      'a worker cut off from its masters while the master of its tasks is killed: the new owner cannot reach it, yet nothing runs again and its results arrive after the heal',
      run(workerCutFromMasters(true)),
      150_000,
    );
    it(
      registry === 'jdbc'
        ? 'a worker cut off from Postgres, its registry (JDBC): its session expires, its tasks run again elsewhere, it registers again'
        : 'a worker cut off from the registry but not from its masters: its session expires, its tasks run again elsewhere, it registers again',
      run(workerCutFromRegistry()),
      150_000,
    );
    it(
      registry === 'jdbc'
        ? 'a master cut off from Postgres, its registry too (JDBC): its session expires, another master takes its running instances over, the fence holds, every invariant holds'
        : 'a master cut off from Postgres but not from the registry: its instances wait for it, results are recorded after the heal, every invariant holds',
      run(masterCutFromPostgres(registry)),
      150_000,
    );
  });
}
