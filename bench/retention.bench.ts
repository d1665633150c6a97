/**
 * The retention sweep at scale (docs/security.md, Bounds): N ended instances past the retention
 * (3 task rows each), next to recent and unfinished ones that must stay; the sweep's batches
 * timed, statements counted (each batch is one statement).
 *
 *   npx tsx bench/retention.bench.ts [--instances 100000]
 *
 * Uses TEST_DATABASE_URL when set, else an embedded Postgres of its own.
 */
import { createDataSource, RetentionRepository, runMigrations } from '@porpoise/dao';
import { startPostgres } from '../test/harness';

const BATCH = 1000;

async function main(): Promise<void> {
  const i = process.argv.indexOf('--instances');
  const n = i > 0 ? Number(process.argv[i + 1]) : 100_000;
  const pg = await startPostgres();
  try {
    await runMigrations(pg.endpoint);
    const source = await createDataSource(pg.endpoint, 'retention-bench').initialize();
    try {
      await source.query(
        `INSERT INTO workflow_definition (code, name, version) VALUES ('bench', 'bench', 1)`,
      );
      await source.query(
        `INSERT INTO workflow_definition_version (code, version, name, tasks, edges) VALUES ('bench', 1, 'bench', '[]', '[]')`,
      );
      const seed = async (count: number, state: string, endedDaysAgo: number | null) => {
        await source.query(
          `WITH i AS (
             INSERT INTO workflow_instance (workflow_code, workflow_version, state, epoch, command_type, start_time, end_time)
             SELECT 'bench', 1, $2, 1, 'START_PROCESS', now() - interval '400 days',
               CASE WHEN $3::int IS NULL THEN NULL ELSE now() - make_interval(days => $3::int) - g * interval '1 second' END
             FROM generate_series(1, $1::int) g RETURNING id)
           INSERT INTO task_instance (workflow_instance_id, name, state)
           SELECT i.id, t, 'SUCCESS' FROM i CROSS JOIN unnest(ARRAY['a', 'b', 'c']) t`,
          [count, state, endedDaysAgo],
        );
      };
      const started = performance.now();
      await seed(n, 'SUCCESS', 60);
      await seed(Math.ceil(n / 10), 'SUCCESS', 1);
      await seed(1000, 'RUNNING_EXECUTION', null);
      await source.query('ANALYZE');
      console.log(`seeded ${n} old + ${Math.ceil(n / 10)} recent + 1000 running in ${ms(started)}`);

      const retention = new RetentionRepository(source);
      const times: number[] = [];
      let deleted = 0;
      const sweepStart = performance.now();
      for (;;) {
        const t = performance.now();
        const r = await retention.deleteEndedInstances(30, BATCH);
        times.push(performance.now() - t);
        deleted += r.deleted;
        if (r.deleted < BATCH) break;
      }
      const total = performance.now() - sweepStart;
      const left = await source.query<Array<{ n: number }>>(
        'SELECT count(*)::int AS n FROM workflow_instance',
      );
      const tasks = await source.query<Array<{ n: number }>>('SELECT count(*)::int AS n FROM task_instance');
      times.sort((a, b) => a - b);
      console.log(
        JSON.stringify({
          instancesDeleted: deleted,
          taskRowsDeleted: n * 3,
          statements: times.length,
          totalMs: Math.round(total),
          batchMsMedian: Math.round(times[Math.floor(times.length / 2)] ?? 0),
          batchMsMax: Math.round(times[times.length - 1] ?? 0),
          instancesLeft: left[0]?.n,
          taskRowsLeft: tasks[0]?.n,
        }),
      );
    } finally {
      await source.destroy();
    }
  } finally {
    await pg.dispose();
  }
}

function ms(since: number): string {
  return `${Math.round(performance.now() - since)} ms`;
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
