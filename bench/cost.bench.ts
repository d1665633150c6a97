/**
 * What a task costs Postgres, counted by Postgres itself (`npm run build` first): an embedded
 * Postgres started with pg_stat_statements preloaded, ZooKeeper (so the registry adds no
 * statements), an api-server, 1 master and 1 worker from dist.
 *
 * Per scenario (a burst of `runs` runs of a 5-task chain, SHELL `true` or EMPTY, triggered
 * through the REST API, 8 requests in flight): pg_stat_statements and the database's row of
 * pg_stat_database are reset, the runs are triggered and waited for, and after the statistics
 * are flushed both are read again. Per task:
 * - statements: calls of every statement the cluster sent (api-server, master, worker), BEGIN
 *   and COMMIT included, split by normalised statement;
 * - transactions: the xact_commit (and xact_rollback) delta of the database.
 *
 * Left out of the figures:
 * - the benchmark's own statements (the reset, the polling for the runs' end): they run on a
 *   connection of their own role, `porpoise_bench`, so pg_stat_statements tells them apart by
 *   userid; each is one autocommit transaction, so their count is taken off xact_commit too;
 * - the idle cluster's background (heartbeats, poll fallbacks, sweeps): measured in an idle
 *   window first, per statement, and its rate × the window's length taken off each figure.
 */
import { Client } from 'pg';
import { sleep } from '../test/harness';
import { ChaosCluster } from '../test/chaos/cluster';
import { measureMachine, type MachineLimits } from './machine-limits.bench';

export interface StatementCost {
  /** pg_stat_statements' normalised text, whitespace collapsed, cut at 80 characters. */
  readonly statement: string;
  /** The same, cut at 600 characters (the JSON only). */
  readonly text: string;
  readonly callsPerTask: number;
  readonly meanMs: number;
}

export interface CostFigure {
  readonly scenario: string;
  readonly runs: number;
  readonly tasks: number;
  readonly failedRuns: number;
  /** First trigger → last instance end. */
  readonly seconds: number;
  readonly tasksPerSecond: number;
  readonly statementsPerTask: number;
  readonly transactionsPerTask: number;
  readonly rollbacksPerTask: number;
  /** Postgres execution time of the statements, summed, per task (ms). */
  readonly dbMsPerTask: number;
  /** The window (reset → read), whose background was taken off. */
  readonly windowSeconds: number;
  /** What was taken off: the benchmark's own statements, and the idle background. */
  readonly excluded: {
    benchStatements: number;
    backgroundStatements: number;
    backgroundTransactions: number;
  };
  readonly top: StatementCost[];
}

export interface Background {
  readonly seconds: number;
  readonly statementsPerSecond: number;
  readonly transactionsPerSecond: number;
}

export interface CostResult {
  readonly limits: MachineLimits;
  readonly background: Background;
  readonly figures: CostFigure[];
}

export interface CostOptions {
  /** Runs of each 5-task chain. */
  readonly runs: number;
  readonly log: (line: string) => void;
}

const BENCH_ROLE = 'porpoise_bench';
/**
 * Postgres flushes a backend's transaction counts to pg_stat_database when it is idle, at most
 * once a second, else after a 10 s idle timeout (PGSTAT_IDLE_INTERVAL): wait past that.
 */
const STATS_FLUSH_MS = 11_500;
const TOP_STATEMENTS = 12;

interface Snapshot {
  readonly at: number;
  readonly xactCommit: number;
  readonly xactRollback: number;
  /** Per queryid: the cluster's calls and execution time. */
  readonly statements: Map<string, { query: string; calls: number; totalMs: number }>;
  readonly benchCalls: number;
}

const flatten = (query: string) => query.replace(/\s+/g, ' ').trim();

/**
 * The master's fenced writes all open with the same ownership CTE (OWN_CTE in libs/dao), which
 * would fill the 80 characters alike: it is shown as "[fenced]" and the rest follows.
 */
const FENCE =
  /^WITH own AS \(SELECT id FROM workflow_instance WHERE id = \$1 AND host = \$2 AND epoch = \$3 FOR SHARE\), /;

const shorten = (query: string) => {
  const flat = flatten(query).replace(FENCE, '[fenced] WITH ');
  return flat.length > 80 ? `${flat.slice(0, 79)}…` : flat;
};

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/**
 * The benchmark's own connection, as its own role: every statement it sends is told apart from
 * the cluster's by userid. It may reset and read every statistic, and read the instances.
 */
async function benchConnection(cluster: ChaosCluster): Promise<Client> {
  const password = 'porpoise-bench';
  await cluster.db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  // Role and grant names cannot be bind parameters; both are constants of this file.
  await cluster.db.query(`CREATE ROLE ${BENCH_ROLE} LOGIN PASSWORD '${password}'`);
  await cluster.db.query(`GRANT pg_read_all_stats TO ${BENCH_ROLE}`);
  await cluster.db.query(`GRANT EXECUTE ON FUNCTION pg_stat_statements_reset TO ${BENCH_ROLE}`);
  await cluster.db.query(`GRANT EXECUTE ON FUNCTION pg_stat_reset() TO ${BENCH_ROLE}`);
  await cluster.db.query(`GRANT SELECT ON workflow_instance TO ${BENCH_ROLE}`);
  const url = new URL(cluster.databaseUrl);
  url.username = BENCH_ROLE;
  url.password = password;
  const client = new Client({ connectionString: url.toString(), application_name: 'porpoise-bench' });
  await client.connect();
  return client;
}

/** One statement: nothing of the benchmark's own falls between the two resets. */
async function reset(bench: Client): Promise<number> {
  await bench.query('SELECT pg_stat_statements_reset(), pg_stat_reset()');
  return Date.now();
}

/**
 * Both statistics in ONE statement, after the flush delay: neither includes this read (a
 * statement enters pg_stat_statements when it ends, its commit reaches pg_stat_database later).
 */
async function snapshot(bench: Client): Promise<Snapshot> {
  await sleep(STATS_FLUSH_MS);
  const { rows } = await bench.query<{
    queryid: string | null;
    query: string | null;
    calls: string | null;
    total_ms: number | null;
    bench: boolean | null;
    xact_commit: string;
    xact_rollback: string;
  }>(
    `SELECT s.queryid::text, s.query, s.calls, s.total_ms, s.bench, d.xact_commit, d.xact_rollback
     FROM pg_stat_database d
     LEFT JOIN (
       SELECT queryid, min(query) AS query, sum(calls) AS calls, sum(total_exec_time) AS total_ms,
              userid = (SELECT oid FROM pg_roles WHERE rolname = $1) AS bench
       FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
       GROUP BY queryid, bench) s ON true
     WHERE d.datname = current_database()`,
    [BENCH_ROLE],
  );
  const statements = new Map<string, { query: string; calls: number; totalMs: number }>();
  let benchCalls = 0;
  for (const r of rows) {
    if (r.queryid === null || r.query === null) continue;
    if (r.bench) {
      benchCalls += Number(r.calls);
      continue;
    }
    const prev = statements.get(r.queryid);
    statements.set(r.queryid, {
      query: r.query,
      calls: (prev?.calls ?? 0) + Number(r.calls),
      totalMs: (prev?.totalMs ?? 0) + Number(r.total_ms),
    });
  }
  const first = rows[0];
  return {
    at: Date.now(),
    xactCommit: Number(first?.xact_commit ?? 0),
    xactRollback: Number(first?.xact_rollback ?? 0),
    statements,
    benchCalls,
  };
}

interface IdleRates {
  readonly seconds: number;
  readonly perStatement: Map<string, number>;
  readonly statements: number;
  readonly commits: number;
  readonly rollbacks: number;
}

async function idleRates(bench: Client, log: (line: string) => void, ms = 20_000): Promise<IdleRates> {
  log(`  idle background: ${(ms + STATS_FLUSH_MS) / 1000} s with nothing to do ...`);
  const start = await reset(bench);
  await sleep(ms);
  const s = await snapshot(bench);
  const seconds = (s.at - start) / 1000;
  const perStatement = new Map<string, number>();
  let statements = 0;
  for (const [id, v] of s.statements) {
    perStatement.set(id, v.calls / seconds);
    statements += v.calls;
  }
  return {
    seconds,
    perStatement,
    statements: statements / seconds,
    commits: (s.xactCommit - s.benchCalls) / seconds,
    rollbacks: s.xactRollback / seconds,
  };
}

function chain5(type: 'SHELL' | 'EMPTY') {
  const names = ['t1', 't2', 't3', 't4', 't5'];
  return {
    name: `cost-chain5-${type.toLowerCase()}`,
    tasks: names.map((name) => (type === 'SHELL' ? { name, type, command: 'true' } : { name, type })),
    edges: names.slice(1).map((to, i) => ({ from: names[i], to })),
  };
}

async function scenario(
  cluster: ChaosCluster,
  bench: Client,
  idle: IdleRates,
  type: 'SHELL' | 'EMPTY',
  opts: CostOptions,
): Promise<CostFigure> {
  const name = `chain5 ${type}`;
  // Created before the window: a workflow is made once, its runs are what a task costs.
  const code = await cluster.createWorkflow(chain5(type));
  // Whatever the previous step left pending reaches the statistics before the reset.
  await sleep(STATS_FLUSH_MS);
  opts.log(`  ${name}: ${opts.runs} runs × 5 tasks, statistics reset ...`);
  const start = await reset(bench);
  const t0 = Date.now();
  const ids = new Array<number>(opts.runs);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(8, opts.runs) }, async () => {
      while (next < opts.runs) {
        const i = next++;
        ids[i] = (await cluster.trigger(code)).instanceId;
      }
    }),
  );
  for (;;) {
    const { rows } = await bench.query<{ open: number; failed: number; end_ms: string | null }>(
      `SELECT count(*) FILTER (WHERE state NOT IN ('SUCCESS', 'FAILURE', 'STOP', 'PAUSE'))::int AS open,
              count(*) FILTER (WHERE state <> 'SUCCESS')::int AS failed,
              floor(extract(epoch FROM max(end_time)) * 1000)::bigint AS end_ms
       FROM workflow_instance WHERE id = ANY($1::bigint[])`,
      [ids],
    );
    const r = rows[0];
    if (r && r.open === 0) {
      opts.log(`    all ended; waiting ${STATS_FLUSH_MS / 1000} s for the statistics to be flushed ...`);
      const s = await snapshot(bench);
      return figure(name, opts.runs, r.failed, (Number(r.end_ms) - t0) / 1000, start, s, idle);
    }
    if (Date.now() - t0 > 600_000) throw new Error(`${name}: runs not ended after 600 s`);
    await sleep(200);
  }
}

function figure(
  name: string,
  runs: number,
  failedRuns: number,
  seconds: number,
  start: number,
  s: Snapshot,
  idle: IdleRates,
): CostFigure {
  const tasks = runs * 5;
  const windowSeconds = (s.at - start) / 1000;
  let statements = 0;
  let backgroundStatements = 0;
  let dbMs = 0;
  const per: StatementCost[] = [];
  for (const [id, v] of s.statements) {
    const background = Math.min(v.calls, (idle.perStatement.get(id) ?? 0) * windowSeconds);
    const calls = v.calls - background;
    statements += calls;
    backgroundStatements += background;
    dbMs += v.totalMs * (calls / v.calls);
    if (calls > 0) {
      per.push({
        statement: shorten(v.query),
        text: flatten(v.query).slice(0, 600),
        callsPerTask: calls / tasks,
        meanMs: round(v.totalMs / v.calls, 3),
      });
    }
  }
  per.sort((a, b) => b.callsPerTask - a.callsPerTask);
  const top = per.slice(0, TOP_STATEMENTS).map((p) => ({ ...p, callsPerTask: round(p.callsPerTask) }));
  const rest = per.slice(TOP_STATEMENTS);
  if (rest.length > 0) {
    const restCalls = rest.reduce((sum, p) => sum + p.callsPerTask, 0);
    top.push({
      statement: `(${rest.length} other statements)`,
      text: '',
      callsPerTask: round(restCalls),
      meanMs: round(rest.reduce((sum, p) => sum + p.meanMs * p.callsPerTask, 0) / (restCalls || 1), 3),
    });
  }
  const backgroundTransactions = idle.commits * windowSeconds;
  return {
    scenario: name,
    runs,
    tasks,
    failedRuns,
    seconds: round(seconds),
    tasksPerSecond: Math.round(tasks / seconds),
    statementsPerTask: round(statements / tasks),
    transactionsPerTask: round((s.xactCommit - s.benchCalls - backgroundTransactions) / tasks),
    rollbacksPerTask: round((s.xactRollback - idle.rollbacks * windowSeconds) / tasks),
    dbMsPerTask: round(dbMs / tasks, 3),
    windowSeconds: round(windowSeconds, 1),
    excluded: {
      benchStatements: s.benchCalls,
      backgroundStatements: Math.round(backgroundStatements),
      backgroundTransactions: Math.round(backgroundTransactions),
    },
    top,
  };
}

export async function benchCost(opts: CostOptions): Promise<CostResult> {
  opts.log('cost: 1 master, 1 worker, ZooKeeper, Postgres with pg_stat_statements');
  const cluster = await ChaosCluster.start({
    registry: 'zookeeper',
    masters: 1,
    workers: 1,
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 2_000,
    audit: false,
    postgresPreload: ['pg_stat_statements'],
  });
  let bench: Client | undefined;
  try {
    const preload = await cluster.db.query<{ shared_preload_libraries: string }>(
      'SHOW shared_preload_libraries',
    );
    if (!/pg_stat_statements/.test(preload.rows[0]?.shared_preload_libraries ?? '')) {
      // TEST_DATABASE_URL or a container: a server this benchmark could not start itself.
      throw new Error(
        'the cost benchmark needs pg_stat_statements in shared_preload_libraries: run it on the embedded Postgres (unset TEST_DATABASE_URL)',
      );
    }
    opts.log('  machine limits: spawn rate, gRPC loopback rate, pgbench ...');
    const limits = await measureMachine(cluster.databaseUrl);
    bench = await benchConnection(cluster);
    const idle = await idleRates(bench, opts.log);
    const figures: CostFigure[] = [];
    for (const type of ['SHELL', 'EMPTY'] as const) {
      const f = await scenario(cluster, bench, idle, type, opts);
      opts.log(
        `    ${f.statementsPerTask} statements, ${f.transactionsPerTask} transactions per task (${f.tasksPerSecond} tasks/s)`,
      );
      figures.push(f);
    }
    return {
      limits,
      background: {
        seconds: round(idle.seconds, 1),
        statementsPerSecond: round(idle.statements),
        transactionsPerSecond: round(idle.commits),
      },
      figures,
    };
  } finally {
    await bench?.end().catch(() => undefined);
    await cluster.dispose();
  }
}
