/**
 * How the cluster behaves with a lot of data (`npm run build` first): Postgres, ZooKeeper, an
 * api-server, masters and workers from dist.
 *
 * - commands: `commands` START_PROCESS commands of a one-task EMPTY workflow, each with its
 *   SUBMITTED_SUCCESS instance, are written straight into the database (the same rows as the
 *   API's trigger writes, WorkflowRunRepository.trigger) while no master runs; then the masters
 *   are started. Measured: commands taken per second (first instance start → command table
 *   empty) and runs completed per second (first instance start → last instance end), with the
 *   committed transactions per run over that time (pg_stat_database).
 * - backlog: while the commands wait (before any master runs), the routes that read waiting runs
 *   are timed: a queued run's diagnosis and instance, the SUBMITTED_SUCCESS list.
 * - REST at size: `taskRows` finished task rows (and their instances, `tasksPerInstance` each,
 *   over 10 workflows) are inserted with generate_series, the tables are vacuumed and analysed,
 *   and every list route of the API is timed (`requests` requests each, one at a time, after
 *   one untimed request), beside GET /health as the floor of one request through the API.
 * - a big DAG: one root, layers of EMPTY tasks (each after two tasks of the layer before), one
 *   sink; created through the API at `dagTasks` tasks, or at the API's task limit when that
 *   size is refused (the refusal is reported). Measured: trigger → instance SUCCESS, tasks/s.
 */
import { DEFINITION_LIMITS } from '@porpoise/common';
import { readFileSync } from 'node:fs';
import type { Pool } from 'pg';
import { sleep } from '../test/harness';
import { ChaosCluster } from '../test/chaos/cluster';
import { measureMachine, type MachineLimits } from './machine-limits.bench';
import { percentiles, type Percentiles } from './throughput.bench';
import { authHeaders } from '../test/harness/api-token';

export interface CommandFigure {
  readonly commands: number;
  readonly masters: number;
  readonly workers: number;
  /** Writing the commands and instances (SQL, batches of 10,000). */
  readonly insertSeconds: number;
  /** Masters started → first instance taken (their start-up included). */
  readonly firstTakenAfterStartSeconds: number;
  readonly takenPerSecond: number;
  readonly completedPerSecond: number;
  readonly completeSeconds: number;
  readonly failedRuns: number;
  readonly transactionsPerRun: number;
  /** The highest resident memory of a master while it consumed (MB). */
  readonly masterPeakRssMb: number;
}

export interface RouteFigure {
  readonly route: string;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  /** Items in the answer (a list), or its size in bytes. */
  readonly answer: string;
}

export interface RestFigure {
  readonly taskRows: number;
  readonly instanceRows: number;
  readonly insertSeconds: number;
  readonly requests: number;
  readonly routes: RouteFigure[];
}

export interface DagFigure {
  readonly requestedTasks: number;
  /** The API's answer to the requested size when it refused it; null when accepted. */
  readonly refused: { status: number; message: string } | null;
  readonly tasks: number;
  readonly edges: number;
  readonly layers: number;
  readonly runs: number;
  /** Median over the runs: trigger sent → instance end_time. */
  readonly seconds: number;
  readonly tasksPerSecond: number;
  readonly transactionsPerTask: number;
  readonly failedRuns: number;
}

export const SCALE_PARTS = ['backlog', 'commands', 'dag', 'rest'] as const;
export type ScalePart = (typeof SCALE_PARTS)[number];

export interface ScaleResult {
  readonly limits: MachineLimits;
  /** Each undefined when its part was not asked for. */
  readonly backlog?: {
    commands: number;
    routes: RouteFigure[];
    /** Deleting the queued runs (the cascade to their commands); null: not done in 120 s. */
    deleteSeconds: number | null;
  };
  readonly commands?: CommandFigure;
  readonly rest?: RestFigure;
  readonly dag?: DagFigure;
}

export interface ScaleOptions {
  readonly commands: number;
  readonly masters: number;
  readonly workers: number;
  readonly taskRows: number;
  readonly tasksPerInstance: number;
  readonly requests: number;
  readonly dagTasks: number;
  readonly dagRuns: number;
  readonly parts: readonly ScalePart[];
  readonly log: (line: string) => void;
}

const FINAL = `('SUCCESS', 'FAILURE', 'STOP', 'PAUSE')`;
const BATCH = 10_000;
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

function rssMb(pid: number): number {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch {
    return 0;
  }
}

async function committed(cluster: ChaosCluster): Promise<number> {
  const { rows } = await cluster.db.query<{ n: string }>(
    'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(rows[0]?.n ?? 0);
}

// ------------------------------------------------------------------ commands

interface Queued {
  readonly code: string;
  /** The first and last instance id written (nothing else takes ids meanwhile). */
  readonly range: [number, number];
  readonly insertSeconds: number;
}

async function queue(cluster: ChaosCluster, opts: ScaleOptions): Promise<Queued> {
  const code = await cluster.createWorkflow({
    name: 'scale-commands',
    tasks: [{ name: 'only', type: 'EMPTY' }],
  });
  opts.log(`  commands: writing ${opts.commands} commands and their instances (no master runs) ...`);
  const t0 = Date.now();
  let firstId: number | undefined;
  let lastId = 0;
  for (let done = 0; done < opts.commands; done += BATCH) {
    const n = Math.min(BATCH, opts.commands - done);
    // What WorkflowRunRepository.trigger writes per run (ids from the same sequences, the instance
    // SUBMITTED_SUCCESS with no host, the command's insert NOTIFYing the masters), n at a time.
    const { rows } = await cluster.db.query<{ lo: string; hi: string }>(
      `WITH def AS (SELECT code, version FROM workflow_definition WHERE code = $1),
       ids AS (
         SELECT nextval('command_id_seq') AS command_id, nextval('workflow_instance_id_seq') AS workflow_instance_id
         FROM def, generate_series(1, $2::int)),
       wi AS (
         INSERT INTO workflow_instance (id, workflow_code, workflow_version, state, host, epoch, command_type, params)
         SELECT ids.workflow_instance_id, def.code, def.version, 'SUBMITTED_SUCCESS', NULL, 0, 'START_PROCESS', '{}'::jsonb
         FROM ids, def
         RETURNING id, workflow_code, workflow_version),
       cmd AS (
         INSERT INTO command (id, type, workflow_code, workflow_version, workflow_instance_id, params)
         SELECT ids.command_id, 'START_PROCESS', wi.workflow_code, wi.workflow_version, wi.id, '{}'::jsonb
         FROM ids JOIN wi ON wi.id = ids.workflow_instance_id
         RETURNING workflow_instance_id)
       SELECT min(workflow_instance_id) AS lo, max(workflow_instance_id) AS hi FROM cmd`,
      [code, n],
    );
    firstId ??= Number(rows[0]?.lo);
    lastId = Number(rows[0]?.hi);
    opts.log(`    ${done + n} written`);
  }
  return { code, range: [firstId ?? 0, lastId], insertSeconds: (Date.now() - t0) / 1000 };
}

/** The routes that look at waiting runs, timed while the whole backlog waits (no master runs). */
async function backlogRoutes(cluster: ChaosCluster, opts: ScaleOptions, q: Queued): Promise<RouteFigure[]> {
  const [lo, hi] = q.range;
  const anyQueued = () => lo + Math.floor(Math.random() * (hi - lo + 1));
  // A backlog that stands has been analysed by autovacuum; one just written has not (the planner
  // would still take the command table for empty), and autovacuum would be busy meanwhile.
  await cluster.db.query('VACUUM ANALYZE command, workflow_instance');
  const routes: Array<[string, () => string]> = [
    ['GET /health (the floor)', () => '/health'],
    [
      'GET /workflow-instances/{id}/diagnosis (a queued run, random)',
      () => `/api/v1/workflow-instances/${anyQueued()}/diagnosis`,
    ],
    [
      'GET /workflow-instances/{id} (a queued run, random)',
      () => `/api/v1/workflow-instances/${anyQueued()}`,
    ],
    [
      'GET /workflow-instances?state=SUBMITTED_SUCCESS',
      () => '/api/v1/workflow-instances?state=SUBMITTED_SUCCESS',
    ],
  ];
  opts.log(`  backlog: routes timed with ${opts.commands} commands waiting ...`);
  const figures: RouteFigure[] = [];
  for (const [route, path] of routes) {
    const f = await timeRoute(cluster, route, path, opts.requests);
    opts.log(`    ${route}: p50 ${f.p50Ms} ms, p95 ${f.p95Ms} ms`);
    figures.push(f);
  }
  return figures;
}

const UNQUEUE_TIMEOUT_S = 120;

/**
 * Takes the backlog away again when only its routes were asked for: deletes the queued runs,
 * their commands going by the foreign key's cascade (one lookup of the command table per run),
 * timed; bounded, and done the cheap way (commands first) when the bound is hit. Seconds, or
 * null when the bound was hit.
 */
async function unqueue(cluster: ChaosCluster, opts: ScaleOptions, q: Queued): Promise<number | null> {
  opts.log(`  backlog: deleting the ${opts.commands} queued runs (cascade to their commands) ...`);
  const client = await cluster.db.connect();
  try {
    const t0 = Date.now();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL statement_timeout = '${UNQUEUE_TIMEOUT_S}s'`);
      await client.query('DELETE FROM workflow_instance WHERE id BETWEEN $1 AND $2', q.range);
      await client.query('COMMIT');
      return (Date.now() - t0) / 1000;
    } catch (err) {
      await client.query('ROLLBACK');
      if ((err as { code?: string }).code !== '57014') throw err; // not the statement timeout
    }
    opts.log(`    not done in ${UNQUEUE_TIMEOUT_S} s: commands first, then the runs`);
    await client.query('DELETE FROM command WHERE workflow_code = $1', [q.code]);
    await client.query('VACUUM command');
    await client.query('DELETE FROM workflow_instance WHERE id BETWEEN $1 AND $2', q.range);
    return null;
  } finally {
    client.release();
  }
}

async function consume(cluster: ChaosCluster, opts: ScaleOptions, q: Queued): Promise<CommandFigure> {
  const { code, range, insertSeconds } = q;
  const xactsBefore = await committed(cluster);
  opts.log(`  commands: starting ${opts.masters} master(s) ...`);
  const started = Date.now();
  const masters = await Promise.all(Array.from({ length: opts.masters }, () => cluster.addNode('master')));
  let peakRss = 0;
  let commandsGoneAt: number | undefined;
  let lastLog = 0;
  for (;;) {
    const { rows } = await cluster.db.query<{ left: number; final: number }>(
      `SELECT (SELECT count(*) FROM command WHERE workflow_code = $3)::int AS left,
              (SELECT count(*) FROM workflow_instance WHERE id BETWEEN $1 AND $2 AND state IN ${FINAL})::int AS final`,
      [range[0], range[1], code],
    );
    const left = rows[0]?.left ?? 0;
    const final = rows[0]?.final ?? 0;
    for (const m of masters) if (m.pid !== undefined) peakRss = Math.max(peakRss, rssMb(m.pid));
    if (left === 0 && commandsGoneAt === undefined) commandsGoneAt = Date.now();
    if (Date.now() - lastLog > 5_000) {
      lastLog = Date.now();
      const s = Math.round((Date.now() - started) / 1000);
      opts.log(`    ${s} s: ${opts.commands - left} taken, ${final} ended (master RSS ${peakRss} MB peak)`);
    }
    if (final >= opts.commands) break;
    if (Date.now() - started > 3 * 3600_000) throw new Error('commands: not all runs ended after 3 hours');
    await sleep(1_000);
  }
  const xacts = (await committed(cluster)) - xactsBefore;
  const { rows } = await cluster.db.query<{ first_ms: string; end_ms: string; failed: number }>(
    `SELECT floor(extract(epoch FROM min(start_time)) * 1000)::bigint AS first_ms,
            floor(extract(epoch FROM max(end_time)) * 1000)::bigint AS end_ms,
            count(*) FILTER (WHERE state <> 'SUCCESS')::int AS failed
     FROM workflow_instance WHERE id BETWEEN $1 AND $2`,
    range,
  );
  const firstMs = Number(rows[0]?.first_ms);
  const endMs = Number(rows[0]?.end_ms);
  // Polled each second: the moment the table was seen empty, at most a second late.
  const takenSeconds = ((commandsGoneAt ?? endMs) - firstMs) / 1000;
  const completeSeconds = (endMs - firstMs) / 1000;
  return {
    commands: opts.commands,
    masters: opts.masters,
    workers: opts.workers,
    insertSeconds: round(insertSeconds, 1),
    firstTakenAfterStartSeconds: round((firstMs - started) / 1000, 1),
    takenPerSecond: Math.round(opts.commands / takenSeconds),
    completedPerSecond: Math.round(opts.commands / completeSeconds),
    completeSeconds: round(completeSeconds, 1),
    failedRuns: rows[0]?.failed ?? 0,
    transactionsPerRun: round(xacts / opts.commands),
    masterPeakRssMb: peakRss,
  };
}

// ------------------------------------------------------------------ REST at size

/**
 * Inserts finished runs of the given workflows (version 1 of each) holding `taskRows` task rows,
 * `tasksPerInstance` per run, as driven by master and run on worker ("address:port").
 */
export async function fillFinishedRuns(
  db: Pick<Pool, 'query'>,
  opts: Pick<ScaleOptions, 'taskRows' | 'tasksPerInstance' | 'log'>,
  codes: readonly string[],
  master: string,
  worker: string,
): Promise<number> {
  const instances = Math.ceil(opts.taskRows / opts.tasksPerInstance);
  const per = Math.max(1, Math.floor(50_000 / opts.tasksPerInstance));
  for (let from = 1; from <= instances; from += per) {
    const to = Math.min(instances, from + per - 1);
    // Finished runs, one per second of the past (ids grow with time), 10 workflows in turn (3 runs
    // each, so that every workflow has runs of every state); 1 in 20
    // FAILURE (its last task failed), 1 in 50 STOP (its last task killed), the rest SUCCESS.
    await db.query(
      `WITH wi AS (
         INSERT INTO workflow_instance (workflow_code, workflow_version, state, host, epoch, command_type, params,
           start_time, end_time, created_at, updated_at)
         SELECT ($1::text[])[1 + (g / 3) % cardinality($1::text[])], 1,
           CASE WHEN g % 50 = 0 THEN 'STOP' WHEN g % 20 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END,
           $2, 1, 'START_PROCESS', '{}'::jsonb, ts, ts + interval '2 seconds', ts, ts + interval '2 seconds'
         FROM generate_series($3::int, $4::int) g,
              LATERAL (SELECT now() - ($5::int - g) * interval '1 second' AS ts) t
         RETURNING id, state, start_time)
       INSERT INTO task_instance (workflow_instance_id, name, state, host, attempt, start_time, end_time, exit_code,
         log_path, created_at, updated_at)
       SELECT wi.id, 't' || k,
         CASE WHEN k < $6 OR wi.state = 'SUCCESS' THEN 'SUCCESS' WHEN wi.state = 'FAILURE' THEN 'FAILURE' ELSE 'KILL' END,
         $7, 1, wi.start_time, wi.start_time + interval '300 milliseconds',
         CASE WHEN k < $6 OR wi.state = 'SUCCESS' THEN 0 ELSE 1 END,
         'logs/' || wi.id || '/0.log', wi.start_time, wi.start_time
       FROM wi, generate_series(1, $6::int) k`,
      [codes, master, from, to, instances, opts.tasksPerInstance, worker],
    );
    opts.log(`    ${Math.min(to * opts.tasksPerInstance, opts.taskRows)} task rows written`);
  }
  return instances;
}

async function timeRoute(
  cluster: ChaosCluster,
  route: string,
  paths: () => string,
  requests: number,
): Promise<RouteFigure> {
  const get = async (path: string) => {
    const t = performance.now();
    const res = await fetch(`${cluster.apiUrl}${path}`, {
      headers: authHeaders(),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    const ms = performance.now() - t;
    if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${text.slice(0, 300)}`);
    return { ms, text, json: res.headers.get('content-type')?.includes('json') };
  };
  const first = await get(paths()); // untimed: connections, caches, the first plan
  const samples: number[] = [];
  for (let i = 0; i < requests; i++) samples.push((await get(paths())).ms);
  const p: Percentiles = percentiles(samples);
  let answer = `${first.text.length} bytes`;
  if (first.json) {
    const body = JSON.parse(first.text) as { items?: unknown[]; total?: number; tasks?: unknown[] };
    if (Array.isArray(body.items)) answer = `${body.items.length} items of ${body.total ?? '?'}`;
    else if (Array.isArray(body.tasks)) answer = `${body.tasks.length} tasks`;
  }
  return {
    route,
    p50Ms: round(p.p50, 1),
    p95Ms: round(p.p95, 1),
    maxMs: round(Math.max(...samples), 1),
    answer,
  };
}

async function rest(cluster: ChaosCluster, opts: ScaleOptions): Promise<RestFigure> {
  opts.log(`  REST: 10 workflows, 100 schedules, ${opts.taskRows} finished task rows ...`);
  const codes: string[] = [];
  for (let i = 1; i <= 10; i++) {
    const names = Array.from({ length: opts.tasksPerInstance }, (_, k) => `t${k + 1}`);
    codes.push(
      await cluster.createWorkflow({
        name: `scale-rest-${i}`,
        tasks: names.map((name) => ({ name, type: 'EMPTY' })),
        edges: names.slice(1).map((to, k) => ({ from: names[k], to })),
      }),
    );
  }
  // Yearly schedules: listed, never fired while the benchmark runs.
  for (let i = 0; i < 100; i++) {
    const res = await cluster.api('POST', '/schedules', {
      workflowCode: codes[i % codes.length],
      cron: '0 0 1 1 *',
      timezone: 'UTC',
    });
    if (res.status !== 201) {
      throw new Error(`POST /schedules answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
  }
  const t0 = Date.now();
  await fillFinishedRuns(
    cluster.db,
    opts,
    codes,
    cluster.masters()[0]?.address ?? '127.0.0.1:1',
    cluster.workers()[0]?.address ?? '127.0.0.1:2',
  );
  const insertSeconds = (Date.now() - t0) / 1000;
  // What autovacuum would have done by the time a table is this big: statistics and the
  // visibility map (index-only scans), done now so every route meets the same state.
  opts.log('    VACUUM ANALYZE ...');
  // A VACUUM that runs beside autovacuum's own ANALYZE (started by the inserts) cannot mark pages
  // all-visible (that ANALYZE's snapshot is older): again until the visibility map is complete.
  for (let i = 0; i < 10; i++) {
    await cluster.db.query(
      'VACUUM ANALYZE workflow_instance, task_instance, command, schedule, workflow_definition',
    );
    const { rows } = await cluster.db.query<{ done: boolean }>(
      `SELECT bool_and(relallvisible >= relpages) AS done FROM pg_class
       WHERE relname IN ('workflow_instance', 'task_instance')`,
    );
    if (rows[0]?.done) break;
    await sleep(1_000);
  }
  const counts = await cluster.db.query<{ instances: string; tasks: string }>(
    'SELECT (SELECT count(*) FROM workflow_instance) AS instances, (SELECT count(*) FROM task_instance) AS tasks',
  );

  // A few real SHELL runs: a log the worker really has, a diagnosis of a real run.
  const logCode = await cluster.createWorkflow({
    name: 'scale-log',
    tasks: [{ name: 'say', type: 'SHELL', command: 'echo hello from the scale benchmark' }],
  });
  const real: number[] = [];
  for (let i = 0; i < 3; i++) real.push((await cluster.trigger(logCode)).instanceId);
  await cluster.waitFinal(real, 60_000);
  const realTasks = (
    await cluster.db.query<{ id: string }>(
      'SELECT id FROM task_instance WHERE workflow_instance_id = ANY($1::bigint[])',
      [real],
    )
  ).rows.map((r) => Number(r.id));
  const ids = await cluster.db.query<{ lo: string; hi: string }>(
    'SELECT min(id) AS lo, max(id) AS hi FROM workflow_instance',
  );
  const lo = Number(ids.rows[0]?.lo);
  const hi = Number(ids.rows[0]?.hi);
  const total = hi - lo + 1;
  const anyInstance = () => lo + Math.floor(Math.random() * total);
  const pick = <T>(list: readonly T[]) => list[Math.floor(Math.random() * list.length)] as T;
  const code = codes[3] as string;
  const deep = Math.floor(Number(counts.rows[0]?.instances) / 2);
  const deepInCode = Math.floor(Number(counts.rows[0]?.instances) / codes.length / 2);

  const routes: Array<[string, () => string]> = [
    ['GET /health (the floor: one request, Postgres and registry reached)', () => '/health'],
    ['GET /workflow-instances', () => '/api/v1/workflow-instances'],
    ['GET /workflow-instances?workflowCode=', () => `/api/v1/workflow-instances?workflowCode=${code}`],
    ['GET /workflow-instances?state=FAILURE', () => '/api/v1/workflow-instances?state=FAILURE'],
    [
      'GET /workflow-instances?state=RUNNING_EXECUTION',
      () => '/api/v1/workflow-instances?state=RUNNING_EXECUTION',
    ],
    [
      'GET /workflow-instances?workflowCode=&state=FAILURE',
      () => `/api/v1/workflow-instances?workflowCode=${code}&state=FAILURE`,
    ],
    ['GET /workflow-instances?limit=1000', () => '/api/v1/workflow-instances?limit=1000'],
    [`GET /workflow-instances?offset=${deep}`, () => `/api/v1/workflow-instances?offset=${deep}`],
    [
      `GET /workflow-instances?workflowCode=&offset=${deepInCode}`,
      () => `/api/v1/workflow-instances?workflowCode=${code}&offset=${deepInCode}`,
    ],
    [
      `GET /workflow-instances?state=SUCCESS&offset=${deep}`,
      () => `/api/v1/workflow-instances?state=SUCCESS&offset=${deep}`,
    ],
    ['GET /workflow-instances/{id} (random id)', () => `/api/v1/workflow-instances/${anyInstance()}`],
    [
      'GET /workflow-instances/{id}/diagnosis (random id)',
      () => `/api/v1/workflow-instances/${anyInstance()}/diagnosis`,
    ],
    [
      'GET /task-instances/{id}/log (a real SHELL task)',
      () => `/api/v1/task-instances/${pick(realTasks)}/log`,
    ],
    ['GET /workflows', () => '/api/v1/workflows'],
    ['GET /schedules', () => '/api/v1/schedules'],
    ['GET /cluster/nodes', () => '/api/v1/cluster/nodes'],
  ];
  const figures: RouteFigure[] = [];
  for (const [route, path] of routes) {
    const f = await timeRoute(cluster, route, path, opts.requests);
    opts.log(`    ${route}: p50 ${f.p50Ms} ms, p95 ${f.p95Ms} ms`);
    figures.push(f);
  }
  return {
    taskRows: Number(counts.rows[0]?.tasks),
    instanceRows: Number(counts.rows[0]?.instances),
    insertSeconds: round(insertSeconds, 1),
    requests: opts.requests,
    routes: figures,
  };
}

// ------------------------------------------------------------------ the big DAG

/** One root, layers of `width` EMPTY tasks (each after two of the layer before), one sink. */
export function layeredDag(tasks: number, width = 50) {
  const middle = Math.max(0, tasks - 2);
  const layers: string[][] = [];
  for (let i = 0; i < middle; i++) {
    const layer = Math.floor(i / width);
    (layers[layer] ??= []).push(`n${layer}_${i % width}`);
  }
  const edges: Array<{ from: string; to: string }> = [];
  const hasChild = new Set<string>(['root']);
  layers.forEach((layer, k) => {
    const above = layers[k - 1];
    layer.forEach((name, j) => {
      const parents = above ? [above[j], above[(j + 1) % above.length]] : ['root'];
      for (const from of new Set(parents)) {
        if (from === undefined) continue;
        edges.push({ from, to: name });
        hasChild.add(from);
      }
    });
  });
  const names = layers.flat();
  // Every task nothing else waits for (the last layer, and the few a shorter last layer leaves).
  for (const name of names) if (!hasChild.has(name)) edges.push({ from: name, to: 'sink' });
  if (names.length === 0) edges.push({ from: 'root', to: 'sink' });
  return {
    definition: {
      name: `scale-dag-${tasks}`,
      tasks: [
        { name: 'root', type: 'EMPTY' },
        ...names.map((name) => ({ name, type: 'EMPTY' })),
        { name: 'sink', type: 'EMPTY' },
      ],
      edges,
    },
    layers: layers.length + 2,
  };
}

async function dag(cluster: ChaosCluster, opts: ScaleOptions): Promise<DagFigure> {
  let tasks = opts.dagTasks;
  let shape = layeredDag(tasks);
  opts.log(`  DAG: creating a ${tasks}-task DAG (${shape.definition.edges.length} edges) ...`);
  let res = await cluster.api<{ code?: string; message?: unknown }>('POST', '/workflows', shape.definition);
  let refused: DagFigure['refused'] = null;
  if (res.status !== 201) {
    refused = { status: res.status, message: JSON.stringify(res.body).slice(0, 300) };
    opts.log(`    refused (${res.status}): ${refused.message}`);
    if (tasks <= DEFINITION_LIMITS.tasks) throw new Error(`a ${tasks}-task DAG was refused`);
    tasks = DEFINITION_LIMITS.tasks;
    shape = layeredDag(tasks);
    opts.log(`    using the API's limit instead: ${tasks} tasks (${shape.definition.edges.length} edges)`);
    res = await cluster.api('POST', '/workflows', shape.definition);
    if (res.status !== 201) {
      throw new Error(`POST /workflows answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
  }
  const code = res.body.code as string;
  const seconds: number[] = [];
  let failedRuns = 0;
  let xacts = 0;
  for (let i = 0; i < opts.dagRuns; i++) {
    const before = await committed(cluster);
    const sent = Date.now();
    const { instanceId } = await cluster.trigger(code);
    const left = await cluster.waitFinal([instanceId], 600_000);
    if (left.length > 0) throw new Error(`the ${tasks}-task DAG did not end within 600 s`);
    const { rows } = await cluster.db.query<{ end_ms: string; state: string }>(
      'SELECT floor(extract(epoch FROM end_time) * 1000)::bigint AS end_ms, state FROM workflow_instance WHERE id = $1',
      [instanceId],
    );
    if (rows[0]?.state !== 'SUCCESS') failedRuns++;
    seconds.push((Number(rows[0]?.end_ms) - sent) / 1000);
    // The waitFinal polls (4 a second) are in here too: a few per second against hundreds of tasks.
    xacts += (await committed(cluster)) - before;
    opts.log(`    run ${i + 1}: ${rows[0]?.state} in ${round(seconds.at(-1) ?? 0)} s`);
  }
  const median = percentiles(seconds).p50;
  return {
    requestedTasks: opts.dagTasks,
    refused,
    tasks,
    edges: shape.definition.edges.length,
    layers: shape.layers,
    runs: opts.dagRuns,
    seconds: round(median),
    tasksPerSecond: Math.round(tasks / median),
    transactionsPerTask: round(xacts / (tasks * opts.dagRuns)),
    failedRuns,
  };
}

export async function benchScale(opts: ScaleOptions): Promise<ScaleResult> {
  opts.log(`scale: ${opts.workers} worker(s) now, ${opts.masters} master(s) once the commands are written`);
  const cluster = await ChaosCluster.start({
    registry: 'zookeeper',
    masters: 0,
    workers: opts.workers,
    sessionTimeoutMs: 10_000,
    heartbeatIntervalMs: 2_000,
    audit: false,
  });
  try {
    opts.log('  machine limits: spawn rate, gRPC loopback rate, pgbench ...');
    const limits = await measureMachine(cluster.databaseUrl);
    const want = (p: ScalePart) => opts.parts.includes(p);
    let commandFigure: CommandFigure | undefined;
    let backlog: ScaleResult['backlog'];
    if (want('backlog') || want('commands')) {
      const queued = await queue(cluster, opts);
      const routes = want('backlog') ? await backlogRoutes(cluster, opts, queued) : [];
      if (want('commands')) {
        commandFigure = await consume(cluster, opts, queued);
        opts.log(
          `    ${commandFigure.takenPerSecond} commands taken/s, ${commandFigure.completedPerSecond} runs completed/s`,
        );
      }
      if (want('backlog')) {
        // After the consumption there is no backlog left to delete: that figure only without it.
        const deleteSeconds = want('commands') ? null : await unqueue(cluster, opts, queued);
        backlog = { commands: opts.commands, routes, deleteSeconds };
      }
    }
    if (!want('commands')) {
      await Promise.all(Array.from({ length: opts.masters }, () => cluster.addNode('master')));
    }
    const dagFigure = want('dag') ? await dag(cluster, opts) : undefined;
    const restFigure = want('rest') ? await rest(cluster, opts) : undefined;
    return { limits, backlog, commands: commandFigure, rest: restFigure, dag: dagFigure };
  } finally {
    await cluster.dispose();
  }
}
