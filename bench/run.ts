/**
 * `npm run bench`: runs the benchmarks, prints a table and writes bench/results/*.json.
 *
 *   --only speed|registry-expiry|failover|cost|scale   one benchmark (default: all)
 *   --topologies 1x1,2x2              speed: masters x workers clusters (default 1x1,2x2)
 *   --shell-tasks N --empty-tasks N   speed: tasks per throughput scenario (default 600, 1500)
 *   --latency-runs N --chain40-runs N speed: samples (default 60, 5)
 *   --types EMPTY,SHELL               speed: task types of the throughput scenarios
 *   --session-timeout-ms N --rounds N registry expiry (default 10000, 3)
 *   --failover-timeouts 10000,5000    failover: the session timeouts to measure at
 *   --failover-rounds N               failover: kills per kind and timeout (default 5)
 *   --cost-runs N                     cost: runs of each 5-task chain (default 100)
 *   --scale-commands N                scale: queued commands to consume (default 100000)
 *   --scale-topology 1x1              scale: masters x workers consuming them (default 1x1)
 *   --scale-task-rows N               scale: finished task rows under the REST routes (default 1000000)
 *   --scale-requests N                scale: timed requests per route (default 20)
 *   --dag-tasks N --dag-runs N        scale: the big DAG's size and runs (default 5000, 3)
 *   --scale-parts backlog,commands,dag,rest   scale: which parts to run (default all)
 *
 * The failover benchmark starts nodes from dist: `npm run build` first.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchCost } from './cost.bench';
import { benchFailover, type FailoverResult } from './failover.bench';
import { measureMachine, type MachineLimits } from './machine-limits.bench';
import { benchRegistryExpiry } from './registry-expiry.bench';
import { benchScale, SCALE_PARTS, type ScalePart } from './scale.bench';
import { benchSpeed, type SpeedResult, type TaskType } from './throughput.bench';

const BENCHMARKS = ['speed', 'registry-expiry', 'failover', 'cost', 'scale'] as const;
type Benchmark = (typeof BENCHMARKS)[number];

function write(name: string, results: unknown): void {
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), results }, null, 2));
  console.log(`written ${file}`);
}

async function registryExpiry(sessionTimeoutMs: number, rounds: number): Promise<void> {
  const expiry = await benchRegistryExpiry(sessionTimeoutMs, rounds);
  console.log(
    `\nregistry: SIGKILL of a client -> REMOVE seen by a subscriber (session timeout ${sessionTimeoutMs} ms)`,
  );
  console.table(
    expiry.map((r) => ({
      backend: r.backend,
      median_ms: r.medianMs,
      max_ms: r.maxMs,
      samples_ms: r.samplesMs.join(' '),
    })),
  );
  write(`registry-expiry-${sessionTimeoutMs}`, expiry);
}

async function failover(timeouts: number[], rounds: number): Promise<void> {
  const results: FailoverResult[] = [];
  for (const timeout of timeouts) results.push(...(await benchFailover(timeout, rounds)));
  console.log(
    '\nfailover (ZooKeeper, 3 masters, 3 workers): master SIGKILL -> every instance it drove has a new host; ' +
      'worker SIGKILL -> each of its tasks has a new attempt dispatched to another worker',
  );
  console.table(
    results.map((r) => ({
      killed: r.kind,
      session_timeout_ms: r.sessionTimeoutMs,
      p50_ms: r.medianMs,
      p95_ms: r.p95Ms,
      max_ms: r.maxMs,
      samples_ms: r.samplesMs.join(' '),
      victim_load: r.victimLoad.join(' '),
      timeouts: r.timeouts,
    })),
  );
  write('failover', results);
}

const progress = (line: string) =>
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

const share = (value: number, limit: number | null | undefined) =>
  limit ? `${Math.round((value / limit) * 1000) / 10} %` : 'n/a';

async function speed(
  topologies: Array<[number, number]>,
  counts: {
    shellTasks: number;
    emptyTasks: number;
    latencyRuns: number;
    chain40Runs: number;
    types: TaskType[];
  },
): Promise<void> {
  const results: SpeedResult[] = [];
  let limits: MachineLimits | undefined;
  for (const [masters, workers] of topologies) {
    results.push(
      await benchSpeed({
        masters,
        workers,
        ...counts,
        log: progress,
        beforeDispose: async (cluster) => {
          if (limits) return;
          progress('  machine limits: spawn rate, gRPC loopback rate, pgbench ...');
          limits = await measureMachine(cluster.databaseUrl);
        },
      }),
    );
  }
  console.log('\nmachine limits (same run)');
  console.table([
    {
      spawn_sh_per_s: Math.round(limits?.spawnPerSecond ?? 0),
      grpc_unary_calls_per_s: Math.round(limits?.grpcCallsPerSecond ?? 0),
      pgbench_simple_update_tps: limits?.pgbenchTps ?? limits?.pgbenchNote ?? 'n/a',
    },
  ]);
  console.log('\nthroughput: a burst of runs, tasks / (last end − first trigger)');
  console.table(
    results.flatMap((r) =>
      r.throughput.map((t) => ({
        cluster: `${t.masters}m ${t.workers}w`,
        scenario: t.scenario,
        runs: t.runs,
        tasks: t.tasks,
        seconds: t.seconds,
        tasks_per_s: t.tasksPerSecond,
        // SHELL tasks are bounded by process spawns; every task by Postgres transactions.
        vs_limit: t.scenario.endsWith('SHELL')
          ? `${share(t.tasksPerSecond, limits?.spawnPerSecond)} of spawn`
          : `${share(t.tasksPerSecond, limits?.pgbenchTps)} of pgbench tps`,
        failed_runs: t.failedRuns,
        cpu_busy: `${t.machineBusyPercent} %`,
        cpu_ms_per_task: t.cpuMsPerTask,
        cpu_bound_tasks_per_s: t.cpuBoundTasksPerSecond,
      })),
    ),
  );
  console.log('\nlatency at light load (ms) and the 40-task chain');
  console.table(
    results.map((r) => ({
      cluster: `${r.masters}m ${r.workers}w`,
      trigger_to_first_p50: r.triggerToFirstTaskMs.p50,
      trigger_to_first_p95: r.triggerToFirstTaskMs.p95,
      trigger_to_first_p99: r.triggerToFirstTaskMs.p99,
      end_to_next_p50: r.taskEndToNextStartMs.p50,
      end_to_next_p95: r.taskEndToNextStartMs.p95,
      end_to_next_p99: r.taskEndToNextStartMs.p99,
      chain40_ms_per_step: r.chain40MsPerStep,
    })),
  );
  console.log('\nidle nodes (10 s): CPU share of one core, resident memory');
  console.table(
    results.flatMap((r) =>
      r.idle.map((i) => ({
        cluster: `${r.masters}m ${r.workers}w`,
        node: i.node,
        cpu_pct: i.cpuPercentOfCore,
        rss_mb: i.rssMb,
      })),
    ),
  );
  write('speed', { limits, results });
}

async function cost(runs: number): Promise<void> {
  const result = await benchCost({ runs, log: progress });
  const tps = result.limits.pgbenchTps;
  console.log(
    `\ncost per task: pg_stat_statements and pg_stat_database over ${runs} runs of a 5-task chain ` +
      '(1 master, 1 worker, ZooKeeper), the benchmark’s own statements and the idle background taken off',
  );
  console.table(
    result.figures.map((f) => ({
      scenario: f.scenario,
      tasks: f.tasks,
      tasks_per_s: f.tasksPerSecond,
      statements_per_task: f.statementsPerTask,
      transactions_per_task: f.transactionsPerTask,
      rollbacks_per_task: f.rollbacksPerTask,
      db_ms_per_task: f.dbMsPerTask,
      // If committed transactions were the bound: pgbench's rate over this run's cost.
      tasks_per_s_at_pgbench_tps: tps ? Math.round(tps / f.transactionsPerTask) : 'n/a',
      xacts_per_s_vs_pgbench: share(f.tasksPerSecond * f.transactionsPerTask, tps),
      failed_runs: f.failedRuns,
    })),
  );
  for (const f of result.figures) {
    console.log(`\n${f.scenario}: top statements (calls per task, mean ms)`);
    console.table(
      f.top.map((t) => ({ statement: t.statement, calls_per_task: t.callsPerTask, mean_ms: t.meanMs })),
    );
  }
  console.log(
    `\nidle background (taken off above): ${result.background.statementsPerSecond} statements/s, ` +
      `${result.background.transactionsPerSecond} transactions/s; machine: pgbench ${tps ?? result.limits.pgbenchNote} tps`,
  );
  write('cost', result);
}

async function scale(opts: Omit<Parameters<typeof benchScale>[0], 'log'>): Promise<void> {
  const r = await benchScale({ ...opts, log: progress });
  const tps = r.limits.pgbenchTps;
  if (r.backlog) {
    console.log(
      `\nwith ${r.backlog.commands} commands waiting (no master running): ms, one request at a time`,
    );
    console.table(
      r.backlog.routes.map((x) => ({ route: x.route, p50_ms: x.p50Ms, p95_ms: x.p95Ms, max_ms: x.maxMs })),
    );
    const d = r.backlog.deleteSeconds;
    if (!opts.parts.includes('commands')) {
      console.log(
        `deleting the ${r.backlog.commands} queued runs (cascade to their commands): ` +
          (d === null ? 'not done in 120 s (cancelled)' : `${d} s`),
      );
    }
  }
  const c = r.commands;
  if (c) {
    console.log(
      `\nqueued commands: ${c.commands} START_PROCESS commands of a one-task EMPTY workflow written in SQL, ` +
        `then ${c.masters} master(s) started (${c.workers} worker(s))`,
    );
    console.table([
      {
        commands: c.commands,
        insert_s: c.insertSeconds,
        start_to_first_taken_s: c.firstTakenAfterStartSeconds,
        taken_per_s: c.takenPerSecond,
        completed_per_s: c.completedPerSecond,
        complete_s: c.completeSeconds,
        transactions_per_run: c.transactionsPerRun,
        // The transactions those runs committed per second, against what pgbench commits.
        xacts_per_s_vs_pgbench: share(c.completedPerSecond * c.transactionsPerRun, tps),
        master_peak_rss_mb: c.masterPeakRssMb,
        failed_runs: c.failedRuns,
      },
    ]);
  }
  const d = r.dag;
  if (d) {
    console.log(
      `\nbig DAG: ${d.requestedTasks} tasks asked for` +
        (d.refused
          ? `, refused by the API (${d.refused.status}: ${d.refused.message}); measured at its limit`
          : '') +
        `: ${d.tasks} EMPTY tasks, ${d.edges} edges, ${d.layers} layers, median of ${d.runs} runs`,
    );
    console.table([
      {
        tasks: d.tasks,
        seconds: d.seconds,
        tasks_per_s: d.tasksPerSecond,
        transactions_per_task: d.transactionsPerTask,
        xacts_per_s_vs_pgbench: share(d.tasksPerSecond * d.transactionsPerTask, tps),
        failed_runs: d.failedRuns,
      },
    ]);
  }
  const rest = r.rest;
  if (rest) {
    const floor = rest.routes[0]?.p50Ms;
    console.log(
      `\nREST at size: ${rest.instanceRows} workflow instances, ${rest.taskRows} task rows; ` +
        `${rest.requests} requests per route, one at a time (ms)`,
    );
    console.table(
      rest.routes.map((x) => ({
        route: x.route,
        p50_ms: x.p50Ms,
        p95_ms: x.p95Ms,
        max_ms: x.maxMs,
        // Against the cheapest request through the API on this machine.
        p50_vs_health: floor ? `${Math.round((x.p50Ms / floor) * 10) / 10}x` : 'n/a',
        answer: x.answer,
      })),
    );
  }
  // A partial run does not overwrite the whole one's file.
  write(opts.parts.length === SCALE_PARTS.length ? 'scale' : `scale-${opts.parts.join('-')}`, r);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const number = (name: string, fallback: number) => {
    const value = arg(name);
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  const only = arg('only');
  if (only !== undefined && !BENCHMARKS.includes(only as Benchmark)) {
    throw new Error(`--only must be one of ${BENCHMARKS.join(', ')}`);
  }
  const run = (b: Benchmark) => only === undefined || only === b;

  if (run('speed')) {
    const topologies = (arg('topologies') ?? '1x1,2x2').split(',').map((t): [number, number] => {
      const m = /^(\d+)x(\d+)$/.exec(t);
      if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
        throw new Error(`--topologies: ${JSON.stringify(t)} is not MASTERSxWORKERS (e.g. 2x2)`);
      }
      return [Number(m[1]), Number(m[2])];
    });
    await speed(topologies, {
      shellTasks: number('shell-tasks', 600),
      emptyTasks: number('empty-tasks', 1500),
      latencyRuns: number('latency-runs', 60),
      chain40Runs: number('chain40-runs', 5),
      types: (arg('types') ?? 'EMPTY,SHELL').split(',').map((t): TaskType => {
        if (t !== 'EMPTY' && t !== 'SHELL') {
          throw new Error(`--types: ${JSON.stringify(t)} is not EMPTY or SHELL`);
        }
        return t;
      }),
    });
  }
  if (run('registry-expiry')) await registryExpiry(number('session-timeout-ms', 10_000), number('rounds', 3));
  if (run('failover')) {
    const timeouts = (arg('failover-timeouts') ?? '10000,5000').split(',').map(Number);
    if (timeouts.some((t) => !Number.isInteger(t) || t < 400)) {
      throw new Error('--failover-timeouts must be a comma-separated list of milliseconds (>= 400)');
    }
    await failover(timeouts, number('failover-rounds', 5));
  }
  if (run('cost')) await cost(number('cost-runs', 100));
  if (run('scale')) {
    const m = /^(\d+)x(\d+)$/.exec(arg('scale-topology') ?? '1x1');
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
      throw new Error('--scale-topology must be MASTERSxWORKERS (e.g. 1x1)');
    }
    await scale({
      commands: number('scale-commands', 100_000),
      masters: Number(m[1]),
      workers: Number(m[2]),
      taskRows: number('scale-task-rows', 1_000_000),
      tasksPerInstance: 5,
      requests: number('scale-requests', 20),
      dagTasks: number('dag-tasks', 5000),
      dagRuns: number('dag-runs', 3),
      parts: (arg('scale-parts') ?? SCALE_PARTS.join(',')).split(',').map((p): ScalePart => {
        if (!SCALE_PARTS.includes(p as ScalePart)) {
          throw new Error(`--scale-parts: ${JSON.stringify(p)} is not one of ${SCALE_PARTS.join(', ')}`);
        }
        return p as ScalePart;
      }),
    });
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
