/**
 * The scheduler's speed on real processes (`npm run build` first): Postgres, ZooKeeper, an
 * api-server and the given masters and workers from dist, driven through the REST API.
 *
 * - throughput: a burst of runs of one workflow, all triggered at once (8 requests in flight);
 *   tasks per second = the runs' tasks / (last instance end − first trigger). Shapes: a 5-task
 *   chain and a fan-out (1 task, then 20 side by side); types SHELL (`true`) and EMPTY.
 * - latency at light load: one 2-task SHELL chain at a time; trigger → first task running
 *   (the worker's start time of task 1 − the moment the trigger was sent) and task end → next
 *   task running (start of task 2 − end of task 1), p50 / p95 / p99.
 * - the 40-task chain: one 40-task SHELL chain at a time; (instance end − trigger) / 40 per step.
 * - idle: each node's CPU share of one core and its resident memory over 10 s with nothing to do.
 * - CPU per task: the whole machine's busy CPU time during a burst (/proc/stat) / its tasks, and
 *   the rate the machine's cores could sustain at that cost (everything runs on this machine).
 *
 * Every figure is from the database's own timestamps (one machine, one clock), except the
 * trigger moment, which is this process's clock just before the request.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { sleep, waitFor } from '../test/harness';
import { ChaosCluster, type ChaosNode } from '../test/chaos/cluster';

export interface ThroughputFigure {
  readonly scenario: string;
  readonly masters: number;
  readonly workers: number;
  readonly runs: number;
  readonly tasks: number;
  readonly seconds: number;
  readonly tasksPerSecond: number;
  readonly failedRuns: number;
  /** Share of the machine's CPU time (all cores, /proc/stat) that was busy during the burst. */
  readonly machineBusyPercent: number;
  /** Busy CPU time of the whole machine per task (every process: the cluster is all that runs). */
  readonly cpuMsPerTask: number;
  /** Tasks/s the machine's cores could do at that cost per task: the CPU bound of the scenario. */
  readonly cpuBoundTasksPerSecond: number;
}

export interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly samples: number;
}

export interface IdleFigure {
  readonly node: string;
  readonly cpuPercentOfCore: number;
  readonly rssMb: number;
}

export interface SpeedResult {
  readonly masters: number;
  readonly workers: number;
  readonly throughput: ThroughputFigure[];
  readonly triggerToFirstTaskMs: Percentiles;
  readonly taskEndToNextStartMs: Percentiles;
  readonly chain40MsPerStep: number;
  readonly idle: IdleFigure[];
}

export interface SpeedOptions {
  readonly masters: number;
  readonly workers: number;
  /** Tasks per throughput scenario (rounded to whole runs). */
  readonly shellTasks: number;
  readonly emptyTasks: number;
  readonly latencyRuns: number;
  readonly chain40Runs: number;
  /** Task types of the throughput scenarios (SHELL alone to compare with a build from before EMPTY). */
  readonly types: readonly TaskType[];
  readonly log: (line: string) => void;
  /** Called with the cluster before it is disposed (the machine limits use its Postgres). */
  readonly beforeDispose?: (cluster: ChaosCluster) => Promise<void>;
}

export type TaskType = 'SHELL' | 'EMPTY';

const task = (name: string, type: TaskType) =>
  type === 'SHELL' ? { name, type, command: 'true' } : { name, type };

function chain(length: number, type: TaskType, name: string) {
  const names = Array.from({ length }, (_, i) => `t${i + 1}`);
  return {
    name,
    tasks: names.map((n) => task(n, type)),
    edges: names.slice(1).map((to, i) => ({ from: names[i], to })),
  };
}

function fanOut(width: number, type: TaskType, name: string) {
  const leaves = Array.from({ length: width }, (_, i) => `leaf${i + 1}`);
  return {
    name,
    tasks: [task('root', type), ...leaves.map((n) => task(n, type))],
    edges: leaves.map((to) => ({ from: 'root', to })),
  };
}

export function percentiles(samples: readonly number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), samples: sorted.length };
}

/** Triggers `runs` runs of `code` with at most `inFlight` requests at a time; ids in order. */
async function burst(cluster: ChaosCluster, code: string, runs: number, inFlight = 8): Promise<number[]> {
  const ids: number[] = new Array<number>(runs);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(inFlight, runs) }, async () => {
      while (next < runs) {
        const i = next++;
        ids[i] = (await cluster.trigger(code)).instanceId;
      }
    }),
  );
  return ids;
}

async function settled(cluster: ChaosCluster, ids: readonly number[], timeoutMs: number): Promise<void> {
  await waitFor(
    `${ids.length} runs to end`,
    async () => {
      const { rows } = await cluster.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM workflow_instance
         WHERE id = ANY($1::bigint[]) AND state NOT IN ('SUCCESS', 'FAILURE', 'STOP', 'PAUSE')`,
        [ids],
      );
      return rows[0]?.n === 0;
    },
    timeoutMs,
    20,
  );
}

async function throughput(
  cluster: ChaosCluster,
  opts: SpeedOptions,
  scenario: string,
  definition: { tasks: unknown[] },
  targetTasks: number,
): Promise<ThroughputFigure> {
  const code = await cluster.createWorkflow(definition);
  const perRun = definition.tasks.length;
  const runs = Math.max(1, Math.round(targetTasks / perRun));
  opts.log(`  ${scenario}: ${runs} runs × ${perRun} tasks ...`);
  const t0 = Date.now();
  const cpu0 = machineTicks();
  const ids = await burst(cluster, code, runs);
  await settled(cluster, ids, 600_000);
  const cpu1 = machineTicks();
  const { rows } = await cluster.db.query<{ end_ms: string; failed: number }>(
    `SELECT floor(extract(epoch FROM max(end_time)) * 1000)::bigint AS end_ms,
            count(*) FILTER (WHERE state <> 'SUCCESS')::int AS failed
     FROM workflow_instance WHERE id = ANY($1::bigint[])`,
    [ids],
  );
  const seconds = (Number(rows[0]?.end_ms) - t0) / 1000;
  const tasks = runs * perRun;
  // Ticks are 10 ms; the busy time includes this process's polling, a small share.
  const busyMs = (cpu1.busy - cpu0.busy) * 10;
  const cores = cpus().length;
  const cpuMsPerTask = busyMs / tasks;
  const figure = {
    scenario,
    masters: opts.masters,
    workers: opts.workers,
    runs,
    tasks,
    seconds: Math.round(seconds * 100) / 100,
    tasksPerSecond: Math.round(tasks / seconds),
    failedRuns: rows[0]?.failed ?? 0,
    machineBusyPercent: Math.round(((cpu1.busy - cpu0.busy) / Math.max(1, cpu1.total - cpu0.total)) * 100),
    cpuMsPerTask: Math.round(cpuMsPerTask * 100) / 100,
    cpuBoundTasksPerSecond: cpuMsPerTask > 0 ? Math.round((cores * 1000) / cpuMsPerTask) : 0,
  };
  opts.log(
    `    ${figure.tasksPerSecond} tasks/s (${figure.seconds} s); machine ${figure.machineBusyPercent} % busy, ` +
      `${figure.cpuMsPerTask} ms of CPU per task`,
  );
  return figure;
}

async function latency(
  cluster: ChaosCluster,
  opts: SpeedOptions,
): Promise<{ first: Percentiles; next: Percentiles }> {
  const code = await cluster.createWorkflow(chain(2, 'SHELL', 'latency-2'));
  const first: number[] = [];
  const next: number[] = [];
  opts.log(`  latency: ${opts.latencyRuns} runs of a 2-task chain, one at a time ...`);
  for (let i = 0; i < opts.latencyRuns; i++) {
    const sent = Date.now();
    const { instanceId } = await cluster.trigger(code);
    await settled(cluster, [instanceId], 60_000);
    const { rows } = await cluster.db.query<{ name: string; start_ms: string; end_ms: string }>(
      `SELECT name, floor(extract(epoch FROM start_time) * 1000)::bigint AS start_ms,
              floor(extract(epoch FROM end_time) * 1000)::bigint AS end_ms
       FROM task_instance WHERE workflow_instance_id = $1 AND state = 'SUCCESS'`,
      [instanceId],
    );
    const t1 = rows.find((r) => r.name === 't1');
    const t2 = rows.find((r) => r.name === 't2');
    if (!t1 || !t2) continue;
    first.push(Number(t1.start_ms) - sent);
    next.push(Number(t2.start_ms) - Number(t1.end_ms));
    await sleep(50);
  }
  return { first: percentiles(first), next: percentiles(next) };
}

async function chain40(cluster: ChaosCluster, opts: SpeedOptions): Promise<number> {
  const code = await cluster.createWorkflow(chain(40, 'SHELL', 'chain-40'));
  const perStep: number[] = [];
  opts.log(`  40-task chain: ${opts.chain40Runs} runs, one at a time ...`);
  for (let i = 0; i < opts.chain40Runs; i++) {
    const sent = Date.now();
    const { instanceId } = await cluster.trigger(code);
    await settled(cluster, [instanceId], 120_000);
    const { rows } = await cluster.db.query<{ end_ms: string }>(
      `SELECT floor(extract(epoch FROM end_time) * 1000)::bigint AS end_ms FROM workflow_instance WHERE id = $1`,
      [instanceId],
    );
    perStep.push((Number(rows[0]?.end_ms) - sent) / 40);
  }
  return Math.round(percentiles(perStep).p50 * 10) / 10;
}

/** Busy and total CPU time of the whole machine so far, in clock ticks (the first line of /proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** utime + stime of a process, in clock ticks (100 per second on Linux). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

async function idle(cluster: ChaosCluster, opts: SpeedOptions, ms = 10_000): Promise<IdleFigure[]> {
  opts.log(`  idle: ${ms / 1000} s with nothing to do ...`);
  await sleep(3_000); // let the last runs' work settle
  const nodes = cluster.nodes.filter(
    (n): n is ChaosNode & { pid: number } => n.state === 'up' && n.pid !== undefined,
  );
  const before = nodes.map((n) => cpuTicks(n.pid));
  await sleep(ms);
  return nodes.map((n, i) => ({
    node: n.name,
    cpuPercentOfCore: Math.round(((cpuTicks(n.pid) - (before[i] ?? 0)) / (ms / 10)) * 1000) / 10,
    rssMb: rssMb(n.pid),
  }));
}

export async function benchSpeed(opts: SpeedOptions): Promise<SpeedResult> {
  opts.log(`cluster: ${opts.masters} master(s), ${opts.workers} worker(s), ZooKeeper, Postgres`);
  const cluster = await ChaosCluster.start({
    registry: 'zookeeper',
    masters: opts.masters,
    workers: opts.workers,
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 2_000,
    audit: false,
  });
  try {
    const figures: ThroughputFigure[] = [];
    for (const type of opts.types) {
      const target = type === 'SHELL' ? opts.shellTasks : opts.emptyTasks;
      const lower = type.toLowerCase();
      figures.push(
        await throughput(cluster, opts, `chain5 ${type}`, chain(5, type, `chain5-${lower}`), target),
      );
      figures.push(
        await throughput(cluster, opts, `fanout20 ${type}`, fanOut(20, type, `fanout-${lower}`), target),
      );
    }
    const lat = await latency(cluster, opts);
    const perStep = await chain40(cluster, opts);
    const idleFigures = await idle(cluster, opts);
    await opts.beforeDispose?.(cluster);
    return {
      masters: opts.masters,
      workers: opts.workers,
      throughput: figures,
      triggerToFirstTaskMs: lat.first,
      taskEndToNextStartMs: lat.next,
      chain40MsPerStep: perStep,
      idle: idleFigures,
    };
  } finally {
    await cluster.dispose();
  }
}
