/**
 * Postgres faults while runs are in flight (issue 13 item 1), shared by the per-registry files
 * chaos-postgres-{zookeeper,etcd,jdbc}.int-spec.ts. With the JDBC registry the registry lives in
 * the same Postgres, so every fault here is its registry fault too.
 *
 * a. Postgres crashed (postmaster and backends SIGKILLed together) and started again on the same
 *    port and data after 1-3 s, several times during a stream of runs;
 * b. Postgres stopped for longer than every pool timeout (the DAO pool's acquire timeout, the
 *    JDBC registry's connect and query timeouts, and REGISTRY_SESSION_TIMEOUT_MS, so that a JDBC
 *    session expires), then started;
 * c. a failover racing the outage: with Postgres down, the master driving running instances is
 *    SIGKILLed; Postgres comes back and the failover must complete (its instances taken over by
 *    another master and finished).
 *
 * Each checks every invariant of the suite (checkInvariants), that each outage hit runs in flight
 * (from the audit trail), that the API answered 503 naming the database while Postgres was down
 * (reads, triggers, whose refusal must start nothing, and GET /health),
 * and that every node recovered without a restart: the same processes (pids) as before, none
 * exited, each answers its health check, and a fresh run completes. No timing is asserted.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { POOL_LIMITS } from '@porpoise/dao';
import { HealthClient } from '@porpoise/rpc';
import { authHeaders } from '../harness/api-token';
import { sleep, waitFor } from '../harness';
import { describeUnless, serverControlSkipReason } from '../harness/skip';
import { CHAOS_CLUSTER_SECRET, ChaosCluster, type ChaosNode, type RegistryKind } from './cluster';
import { chaosSeed, Prng } from './prng';
import {
  checkSchedule,
  formatScheduleViolations,
  parseScheduleWitness,
  type ScheduleViolation,
} from './schedule-checker';
import {
  CHAOS_CHILD_DAG,
  CHAOS_DAG,
  assertInvariants,
  createChaosWorkflow,
  type ChaosWorkflow,
} from './scenario';
import { FINAL_WORKFLOW_STATES, type CheckInput, type DagSpec, type Run, type Violation } from './invariants';

const SESSION_TIMEOUT_MS = 2500;
const HEARTBEAT_INTERVAL_MS = 400;
/** The JDBC registry's own bounds (jdbc.registry.ts): connect and control ≤ 10 s, queries ≤ 15 s. */
const JDBC_REGISTRY_TIMEOUT_MS = 15_000;
/**
 * Scenario b's outage: past the DAO pool's acquire timeout (POOL_LIMITS.connectionTimeoutMillis),
 * past the session timeout, and past the JDBC registry's connect and query timeouts at this
 * session (clamped to 1-2 s at a 2.5 s session; JDBC_REGISTRY_TIMEOUT_MS is their ceiling).
 */
export const LONG_OUTAGE_MS =
  Math.max(
    POOL_LIMITS.connectionTimeoutMillis,
    SESSION_TIMEOUT_MS,
    jdbcTimeoutsAtSession(SESSION_TIMEOUT_MS),
  ) + 2000;

function jdbcTimeoutsAtSession(sessionMs: number): number {
  const heartbeat = HEARTBEAT_INTERVAL_MS;
  const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
  return Math.min(
    JDBC_REGISTRY_TIMEOUT_MS,
    Math.max(clamp(heartbeat, 1000, 10_000), clamp(sessionMs / 2, 2000, 15_000)),
  );
}

/** One answer of the API while Postgres was down. */
export interface ApiSample {
  /** read: SAMPLE_ROUTE; trigger: POST a run; health: the api-server's GET /health. */
  readonly request: 'read' | 'trigger' | 'health';
  readonly sentAt: number;
  readonly answeredAt: number;
  readonly status: number;
  readonly body: string;
}

/** One outage of Postgres, as the test caused it. */
export interface Outage {
  readonly label: string;
  readonly kind: 'SIGKILL' | 'stop';
  /** When the kill or stop began: from here on the database is going. */
  readonly downAt: number;
  /** When the kill or stop had ended: Postgres is gone from here... */
  readonly goneAt: number;
  /** ...until its start began. */
  readonly restoreAt: number;
  /** When it accepted connections again. */
  readonly upAt: number;
  /** The API's answers sent after goneAt and answered before restoreAt. */
  readonly samples: ApiSample[];
  /** Runs a trigger sent meanwhile got accepted (202) for: they must run like any other. */
  readonly accepted: Run[];
}

const shellTasks = (dag: DagSpec) =>
  dag.tasks.filter((t) => dag.conditions?.[t] === undefined && dag.subWorkflows?.[t] === undefined);
const sleepParam = (task: string) => `SLEEP_${task.toUpperCase()}`;

/** A run's params (the same shape as the suite's runs: each SHELL task's sleep, FAIL_F in half). */
function runParams(rng: Prng): Record<string, string> {
  const params: Record<string, string> = {};
  for (const task of shellTasks(CHAOS_DAG)) params[sleepParam(task)] = rng.range(0.3, 1.2).toFixed(1);
  for (const task of shellTasks(CHAOS_CHILD_DAG)) params[sleepParam(task)] = rng.range(0.2, 0.6).toFixed(1);
  params.FAIL_F = rng.chance(0.5) ? '1' : '0';
  return params;
}

/** The route sampled during an outage: a plain read that needs the database. */
const SAMPLE_ROUTE = '/api/v1/workflow-instances?limit=1';

/** What an outage does while Postgres is down. */
export interface OutageOptions {
  /** Runs once Postgres is gone (e.g. a master kill). */
  readonly during?: () => Promise<void>;
  /** Also POST a run of this workflow in every round of samples (a write while it is down). */
  readonly trigger?: { readonly code: string; readonly params: () => Record<string, string> };
}

/**
 * Takes Postgres down (kill: a crash; stop: a clean shutdown), keeps it down for downMs while the
 * API is asked every 200 ms (SAMPLE_ROUTE, GET /health, and a trigger when asked), then starts it
 * again on the same port and data.
 */
export async function postgresOutage(
  cluster: ChaosCluster,
  label: string,
  kind: 'SIGKILL' | 'stop',
  downMs: number,
  options: OutageOptions = {},
): Promise<Outage> {
  const pg = cluster.postgresServer();
  const downAt = Date.now();
  cluster.log(`chaos: postgres ${label}: ${kind} for ${downMs} ms`);
  await (kind === 'SIGKILL' ? pg.kill() : pg.stop());
  const goneAt = Date.now();
  const samples: ApiSample[] = [];
  const accepted: Run[] = [];
  const ask = async (
    request: ApiSample['request'],
    url: string,
    init: RequestInit = {},
  ): Promise<ApiSample> => {
    const sentAt = Date.now();
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) }).catch(
      (err: unknown) => err as Error,
    );
    const body = res instanceof Response ? await res.text() : `no answer: ${res.message}`;
    const sample = {
      request,
      sentAt,
      answeredAt: Date.now(),
      status: res instanceof Response ? res.status : 0,
      body,
    };
    samples.push(sample);
    return sample;
  };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await ask('read', `${cluster.apiUrl}${SAMPLE_ROUTE}`, { headers: authHeaders() });
      await ask('health', `${cluster.apiUrl}/health`);
      if (options.trigger) {
        const params = options.trigger.params();
        const sample = await ask(
          'trigger',
          `${cluster.apiUrl}/api/v1/workflows/${options.trigger.code}/runs`,
          {
            method: 'POST',
            headers: authHeaders({ 'content-type': 'application/json' }),
            body: JSON.stringify({ params }),
          },
        );
        if (sample.status === 202) {
          const b = JSON.parse(sample.body) as { commandId: number; workflowInstanceId: number };
          accepted.push({ commandId: b.commandId, instanceId: b.workflowInstanceId, params });
        }
      }
      await sleep(200);
    }
  })();
  await options.during?.();
  await sleep(Math.max(0, downMs - (Date.now() - goneAt)));
  const restoreAt = Date.now();
  sampling = false;
  await pg.start();
  const upAt = Date.now();
  await sampler;
  cluster.log(`chaos: postgres ${label}: up again`);
  return {
    label,
    kind,
    downAt,
    goneAt,
    restoreAt,
    upAt,
    samples: samples.filter((s) => s.sentAt >= goneAt && s.answeredAt <= restoreAt),
    accepted,
  };
}

/**
 * The API's answers during each outage, at least one of each kind asked per outage: a read and a
 * trigger answer 503 with a JSON error naming the database (a trigger refused so starts nothing:
 * an instance no run knows of fails invariant 1), and GET /health answers 503 with the database
 * not ok.
 */
export function checkApiAnswers(outages: readonly Outage[], triggered: boolean): Violation[] {
  const out: Violation[] = [];
  const json = (body: string): Record<string, unknown> => {
    try {
      const v: unknown = JSON.parse(body);
      return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  };
  for (const o of outages) {
    for (const request of ['read', 'health', ...(triggered ? ['trigger'] : [])]) {
      if (!o.samples.some((s) => s.request === request)) {
        out.push({
          invariant: 'api-503',
          message: `${o.label}: no ${request} answered while Postgres was down`,
        });
      }
    }
    for (const s of o.samples) {
      const body = json(s.body);
      const ok =
        s.request === 'health'
          ? s.status === 503 && body.status === 'unavailable' && body.database !== 'ok'
          : s.status === 503 && typeof body.message === 'string' && /database/i.test(body.message);
      if (!ok) {
        out.push({
          invariant: 'api-503',
          message: `${o.label}: ${s.request} answered ${s.status} ${s.body.slice(0, 200)} while Postgres was down (want 503 ${s.request === 'health' ? 'with the database not ok' : 'naming the database'})`,
        });
      }
    }
  }
  return out;
}

/**
 * Each outage must have hit work in flight (from the data): an instance of these runs that was
 * RUNNING_EXECUTION when Postgres went down (its last audit row before downAt) and reached its
 * final state only after Postgres was back. Also counted, not required: SHELL attempts running on
 * a worker across the moment Postgres went down (witness start before, end after).
 */
export function outageHits(
  input: CheckInput,
  outages: readonly Outage[],
): { violations: Violation[]; lines: string[] } {
  const violations: Violation[] = [];
  const lines: string[] = [];
  for (const o of outages) {
    const inFlight = new Set<number>();
    const byInstance = new Map<number, Array<{ at: number; state: string }>>();
    for (const row of input.instanceAudit) {
      const rows = byInstance.get(row.instanceId) ?? [];
      if (row.at !== undefined) rows.push({ at: row.at, state: row.state });
      byInstance.set(row.instanceId, rows);
    }
    for (const [id, rows] of byInstance) {
      const before = rows.filter((r) => r.at <= o.downAt).pop();
      const final = rows.find((r) => FINAL_WORKFLOW_STATES.includes(r.state));
      if (before?.state === 'RUNNING_EXECUTION' && final !== undefined && final.at >= o.upAt) {
        inFlight.add(id);
      }
    }
    const starts = new Map<number, number>();
    for (const l of input.witness.lines) if (l.kind === 'start') starts.set(l.taskInstanceId, l.ms);
    const acrossTasks = input.witness.lines.filter(
      (l) => l.kind !== 'start' && l.ms > o.downAt && (starts.get(l.taskInstanceId) ?? Infinity) < o.downAt,
    ).length;
    lines.push(
      `${o.label} (${o.kind}, down ${o.restoreAt - o.goneAt} ms): ${inFlight.size} instances in flight ` +
        `[${[...inFlight].slice(0, 8).join(', ')}], ${acrossTasks} task attempts running across it, ` +
        `${o.samples.length} API answers while down (${o.samples.filter((x) => x.request === 'trigger').length} triggers refused), ${o.accepted.length} triggers accepted around it`,
    );
    if (inFlight.size === 0) {
      violations.push({
        invariant: 'hits',
        message: `${o.label}: no run was in flight when Postgres went down (nothing RUNNING then and final after)`,
      });
    }
  }
  return { violations, lines };
}

/**
 * JDBC: an outage past the session timeout must have expired every session (the registry is in
 * that Postgres): each master and worker said its session was lost after Postgres went down. Proves
 * the fault reached that far; the checks above prove they came back from it.
 */
function checkSessionsExpired(
  cluster: ChaosCluster,
  outage: Outage,
  except: readonly ChaosNode[],
): Violation[] {
  const out: Violation[] = [];
  for (const node of cluster.nodes) {
    if (node.role === 'api-server' || except.includes(node)) continue;
    const lost = cluster.faults.some(
      (f) => f.kind === 'session-lost' && f.address === node.address && f.at >= outage.downAt,
    );
    if (!lost) {
      out.push({
        invariant: 'hits',
        message: `${outage.label}: ${node.name} never lost its JDBC registry session although Postgres was down past the session timeout`,
      });
    }
  }
  return out;
}

/** Each node's process id now, by name. */
function pidsOf(nodes: readonly ChaosNode[]): Map<string, number | undefined> {
  return new Map(nodes.map((n) => [n.name, n.pid]));
}

/**
 * Every node recovered without a restart: the same process as `before` (except `except`, nodes
 * the scenario killed itself), up, and answering its health check: the api-server's GET /health
 * 200, a master's or worker's gRPC health SERVING (their HTTP /health is off in the chaos
 * cluster: METRICS_PORT=0). Waits (bounded) for the health, not for the process.
 */
async function checkRecovered(
  cluster: ChaosCluster,
  before: Map<string, number | undefined>,
  except: readonly ChaosNode[] = [],
): Promise<Violation[]> {
  const out: Violation[] = [];
  const health = new HealthClient(CHAOS_CLUSTER_SECRET);
  try {
    for (const node of cluster.nodes) {
      if (except.includes(node)) continue;
      if (node.pid !== before.get(node.name) || node.state !== 'up') {
        out.push({
          invariant: '8',
          message: `${node.name} is ${node.state} with pid ${node.pid}, was pid ${before.get(node.name)}: it did not recover in place`,
        });
        continue;
      }
      const answer = async (): Promise<string> => {
        if (node.role === 'api-server') {
          const res = await fetch(`http://127.0.0.1:${node.port}/health`, {
            signal: AbortSignal.timeout(5000),
          });
          return res.status === 200 ? 'ok' : `${res.status} ${await res.text()}`;
        }
        const status = await health.check(node.address, 3000);
        return status === 'SERVING' ? 'ok' : status;
      };
      let last = '';
      const ok = await waitFor(
        `${node.name}'s health`,
        async () => {
          last = await answer().catch((err: unknown) => `error ${(err as Error).message}`);
          return last === 'ok';
        },
        30_000,
        250,
      ).then(
        () => true,
        () => false,
      );
      if (!ok) out.push({ invariant: '8', message: `${node.name}'s health did not answer ok: ${last}` });
    }
  } finally {
    health.close();
  }
  return out;
}

/**
 * Triggers a run the way a careful client does around an outage: with an Idempotency-Key, asked
 * again while the API answers 503, so that a trigger whose commit landed just as Postgres died
 * (its answer lost) is answered with that run instead of being lost or doubled.
 */
async function triggerSurely(
  cluster: ChaosCluster,
  code: string,
  params: Record<string, string>,
  key: string,
): Promise<Run> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await fetch(`${cluster.apiUrl}/api/v1/workflows/${code}/runs`, {
      method: 'POST',
      headers: authHeaders({ 'content-type': 'application/json', 'idempotency-key': key }),
      body: JSON.stringify({ params }),
      signal: AbortSignal.timeout(30_000),
    }).catch(() => undefined);
    const text = res ? await res.text() : '';
    if (res?.status === 202) {
      const b = JSON.parse(text) as { commandId: number; workflowInstanceId: number };
      return { commandId: b.commandId, instanceId: b.workflowInstanceId, params };
    }
    if ((res !== undefined && res.status !== 503) || Date.now() > deadline) {
      throw new Error(
        `POST /workflows/${code}/runs (key ${key}) answered ${res?.status ?? 'nothing'}: ${text}`,
      );
    }
    await sleep(250);
  }
}

/** Waits until some master drives a RUNNING instance (the cluster's own pool may still reconnect). */
async function untilRunning(cluster: ChaosCluster, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    'a master to drive a RUNNING instance',
    async () => {
      const work = await cluster.runningWork('master').catch(() => new Map<string, number>());
      return [...work.values()].some((n) => n > 0);
    },
    timeoutMs,
    100,
  );
}

interface ScenarioResult {
  readonly runs: Run[];
  readonly outages: Outage[];
  readonly problems: Violation[];
  /** Nodes the scenario killed on purpose (not a failure to recover). */
  readonly killed: ChaosNode[];
}

/** a. Runs triggered one after the other while Postgres is crashed and restarted `kills` times. */
async function crashStream(
  cluster: ChaosCluster,
  rng: Prng,
  wf: ChaosWorkflow,
  runCount: number,
  kills: number,
): Promise<ScenarioResult> {
  const runs: Run[] = [];
  const outages: Outage[] = [];
  let dbDown: Promise<unknown> = Promise.resolve();
  const r = rng.fork('runs');
  const f = rng.fork('faults');
  const w = rng.fork('outage-triggers');
  let crashing = true;
  const seedKey = `${Date.now().toString(36)}-${Math.floor(Math.random() * 1e9).toString(36)}`;
  const trigger = (async () => {
    // At least runCount runs, and more while crashes are left: each crash needs runs in flight.
    for (let i = 0; i < runCount || crashing; i++) {
      // The stream's runs are triggered while Postgres is up (the outage sends triggers of its own).
      await dbDown;
      runs.push(await triggerSurely(cluster, wf.code, runParams(r), `pg-crash-${seedKey}-${i}`));
      await sleep(r.int(300, 800));
    }
  })();
  const faults = (async () => {
    try {
      for (let k = 1; k <= kills; k++) {
        await sleep(f.int(1500, 2500));
        // Aimed: only while a master drives a RUNNING instance, so that the crash hits work.
        await untilRunning(cluster);
        let done!: () => void;
        dbDown = new Promise<void>((resolve) => (done = resolve));
        try {
          outages.push(
            await postgresOutage(cluster, `crash ${k}`, 'SIGKILL', f.int(1000, 3000), {
              trigger: { code: wf.code, params: () => runParams(w) },
            }),
          );
        } finally {
          done();
        }
      }
    } finally {
      crashing = false;
    }
  })();
  await Promise.all([trigger, faults]);
  return { runs, outages, problems: [], killed: [] };
}

/** b. A few runs under way, then Postgres stopped for LONG_OUTAGE_MS and started. */
async function longStop(
  cluster: ChaosCluster,
  rng: Prng,
  wf: ChaosWorkflow,
  runCount: number,
): Promise<ScenarioResult> {
  const r = rng.fork('runs');
  const runs: Run[] = [];
  for (let i = 0; i < runCount; i++) {
    runs.push(await cluster.trigger(wf.code, runParams(r)));
    await sleep(r.int(200, 500));
  }
  await untilRunning(cluster);
  const w = rng.fork('outage-triggers');
  const outage = await postgresOutage(cluster, 'long stop', 'stop', LONG_OUTAGE_MS, {
    trigger: { code: wf.code, params: () => runParams(w) },
  });
  // A run triggered after it: work goes on afterwards too.
  runs.push(await cluster.trigger(wf.code, runParams(r)));
  return { runs, outages: [outage], problems: [], killed: [] };
}

/**
 * c. Runs under way; Postgres crashed; meanwhile the master driving the most RUNNING instances is
 * SIGKILLed and left down. Postgres stays down past the session timeout (ZooKeeper and etcd
 * remove the master while the database is away, so the failover starts without it), then comes
 * back: the failover must complete. The killed master is started again at the end.
 */
async function failoverRace(
  cluster: ChaosCluster,
  rng: Prng,
  wf: ChaosWorkflow,
  runCount: number,
): Promise<ScenarioResult> {
  const r = rng.fork('runs');
  const runs: Run[] = [];
  for (let i = 0; i < runCount; i++) runs.push(await cluster.trigger(wf.code, runParams(r)));
  await untilRunning(cluster);
  const work = await cluster.runningWork('master');
  const victim = cluster
    .masters()
    .filter((m) => m.state === 'up')
    .sort((a, b) => (work.get(b.address) ?? 0) - (work.get(a.address) ?? 0))[0];
  if (!victim) throw new Error('no master up');
  const outage = await postgresOutage(cluster, 'failover race', 'SIGKILL', SESSION_TIMEOUT_MS + 2500, {
    during: async () => {
      cluster.log(
        `chaos: SIGKILL ${victim.name} (${victim.address}, pid ${victim.pid}) while Postgres is down`,
      );
      await cluster.kill(victim);
    },
  });
  return { runs, outages: [outage], problems: [], killed: [victim] };
}

/**
 * d. An every-second RUN_ALL schedule on three masters while Postgres is crashed (1-3 s) and then
 * stopped past every pool timeout: every second from the first fire to the cutoff must still run
 * exactly once, as a SCHEDULER run whose task saw its own time (the schedule checker of
 * scheduleChaos). Returns the violations and the outages.
 */
async function scheduleOutages(
  cluster: ChaosCluster,
  rng: Prng,
  settleMs: number,
): Promise<{ violations: ScheduleViolation[]; outages: Outage[]; summary: string }> {
  const r = rng.fork('schedule');
  const witness = join(cluster.scratch, 'witness-pg-schedule.txt');
  const code = await cluster.createWorkflow({
    name: `chaos-pg-schedule-${cluster.options.registry}`,
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
  const q = async <T>(sql: string, params: unknown[] = []) =>
    (await cluster.db.query(sql, params)).rows as T[];
  const fired = async () =>
    Number(
      (await q<{ n: string }>('SELECT count(*) AS n FROM schedule_fire WHERE schedule_id = $1', [id]))[0]?.n,
    );
  await waitFor('the schedule to fire', async () => (await fired().catch(() => 0)) > 0, 30_000, 200);
  const outages: Outage[] = [];
  await sleep(r.int(1000, 3000));
  outages.push(await postgresOutage(cluster, 'schedule crash', 'SIGKILL', r.int(1000, 3000)));
  await sleep(r.int(2000, 4000));
  outages.push(await postgresOutage(cluster, 'schedule long stop', 'stop', LONG_OUTAGE_MS));
  await sleep(r.int(2000, 4000));

  // The cutoff: the database's now. Every second up to it must be handled (bounded wait).
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
  const summary = `schedule ${id}: ${ledger.length} fire times, ${runs.length} runs up to ${new Date(cutoffMs).toISOString()}`;
  return { violations, outages, summary };
}

export interface PostgresFaultOptions {
  readonly registry: RegistryKind;
  /** Runs of the crash stream (a). */
  readonly crashRuns: number;
  /** Crashes during it. */
  readonly crashes: number;
  /** Bound on the wait for the runs to end after a scenario. */
  readonly settleMs: number;
}

/** The Postgres fault scenarios on one registry: three masters, three workers, one api-server. */
export function describePostgresFaults(options: PostgresFaultOptions): void {
  // A Postgres from TEST_DATABASE_URL or a container cannot be killed by the test: skipped, with why.
  describeUnless(serverControlSkipReason('postgres'))(
    `Postgres faults on real processes (${options.registry} registry)`,
    () => {
      const seed = chaosSeed(`chaos postgres ${options.registry}`);
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
        if (!cluster.postgresServer().controllable) {
          throw new Error(
            'the Postgres of the chaos cluster cannot be killed by the test (TEST_DATABASE_URL or a container)',
          );
        }
        cluster.log(`chaos seed: ${seed}`);
      }, 120_000);

      afterAll(async () => {
        if (!cluster) return;
        await cluster.dispose();
        if (failed || process.env.CHAOS_KEEP) {
          process.stdout.write(`chaos postgres (${options.registry}): logs kept in ${cluster.scratch}\n`);
        } else rmSync(cluster.scratch, { recursive: true, force: true });
      }, 60_000);

      const scenario =
        (
          label: string,
          run: (c: ChaosCluster, wf: ChaosWorkflow) => Promise<ScenarioResult>,
          require: { readonly takeover: boolean; readonly triggers: boolean },
        ) =>
        async (): Promise<void> => {
          try {
            if (!cluster) throw new Error('the chaos cluster did not start (see beforeAll)');
            const c = cluster;
            const witness = join(c.scratch, `witness-${label}.txt`);
            const wf = await createChaosWorkflow(c, `chaos-pg-${label}-${options.registry}`, witness);
            const before = new Map(pidsOf(c.nodes));
            const result = await run(c, wf);
            // The stream's runs, and any a trigger sent during an outage got accepted for.
            const scenarioRuns = [...result.runs, ...result.outages.flatMap((o) => o.accepted)];
            const stuck = await c.waitFinal(
              scenarioRuns.map((x) => x.instanceId),
              options.settleMs,
            );
            // A fresh run after it all, on the same processes.
            const fresh = await c.trigger(wf.code, runParams(rng.fork(`fresh-${label}`)));
            const freshStuck = await c.waitFinal([fresh.instanceId], options.settleMs);
            const runs = [...scenarioRuns, fresh];
            const input = await c.gather(runs, wf.codes, CHAOS_DAG, witness);
            const hits = outageHits(input, result.outages);
            for (const line of hits.lines) {
              c.log(`chaos: postgres hit: ${line}`);
              process.stdout.write(`chaos postgres (${options.registry}) ${label}: ${line}\n`);
            }
            const recovered = await checkRecovered(c, before, result.killed);
            const expired =
              options.registry === 'jdbc'
                ? result.outages
                    .filter((o) => o.restoreAt - o.goneAt > SESSION_TIMEOUT_MS)
                    .flatMap((o) => checkSessionsExpired(c, o, result.killed))
                : [];
            const extra = [
              ...result.problems,
              ...checkApiAnswers(result.outages, require.triggers),
              ...hits.violations,
              ...recovered,
              ...expired,
              ...(freshStuck.length > 0
                ? [
                    {
                      invariant: '7',
                      message: `the fresh run after the outages (instance ${fresh.instanceId}) did not end`,
                    },
                  ]
                : []),
            ];
            // The killed master comes back for the next scenario (its restart is the test's, not a recovery).
            for (const node of result.killed) if (node.state === 'down') await c.startNode(node);
            await assertInvariants(c, input, extra, seed, [...stuck, ...freshStuck], {
              takeover: require.takeover,
            });
          } catch (err) {
            failed = true;
            throw err;
          }
        };

      it(
        'a: Postgres crashed (postmaster and backends SIGKILLed) and restarted several times during a stream of runs: every invariant holds, each crash hit runs in flight, the API answered 503 (reads, triggers, /health), every node recovered in place',
        scenario('crash', (c, wf) => crashStream(c, rng, wf, options.crashRuns, options.crashes), {
          takeover: false,
          triggers: true,
        }),
        240_000,
      );

      it(
        `b: Postgres stopped past every pool timeout and the session timeout (${LONG_OUTAGE_MS} ms) with runs in flight, then started: every invariant holds, the API answered 503, every node recovered in place`,
        scenario('long-stop', (c, wf) => longStop(c, rng, wf, 5), { takeover: false, triggers: true }),
        240_000,
      );

      it(
        'c: a master driving running instances SIGKILLed while Postgres is down: after Postgres is back its instances are taken over by another master and finished',
        scenario('failover-race', (c, wf) => failoverRace(c, rng, wf, 6), {
          takeover: true,
          triggers: false,
        }),
        240_000,
      );

      it('d: an every-second RUN_ALL schedule while Postgres is crashed and then stopped past every pool timeout: every second still runs exactly once, every node recovered in place', async () => {
        try {
          if (!cluster) throw new Error('the chaos cluster did not start (see beforeAll)');
          const c = cluster;
          const before = new Map(pidsOf(c.nodes));
          const exitsBefore = c.unexpectedExits.length;
          const { violations, outages, summary } = await scheduleOutages(c, rng, options.settleMs);
          const other: Violation[] = [
            ...checkApiAnswers(outages, false),
            ...(await checkRecovered(c, before)),
            ...c.unexpectedExits.slice(exitsBefore).map((e) => ({
              invariant: '8',
              message: `unexpected exit of ${e.node}: code ${e.code}, signal ${e.signal}`,
            })),
          ];
          const text = `${summary}: ${formatScheduleViolations(violations)}; ${other.length} other violation(s)`;
          c.log(`chaos: postgres ${text}`);
          process.stdout.write(`chaos postgres (${options.registry}) schedule: ${text}\n`);
          if (violations.length === 0 && other.length === 0) return;
          throw new Error(
            [
              `chaos seed ${seed} (replay: CHAOS_SEED=${seed})`,
              formatScheduleViolations(violations, 30),
              ...other.map((v) => `invariant ${v.invariant}: ${v.message}`),
              `node logs and witness files kept in ${c.scratch}`,
              c.tails(15),
            ].join('\n'),
          );
        } catch (err) {
          failed = true;
          throw err;
        }
      }, 240_000);
    },
  );
}
