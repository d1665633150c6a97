// Rebuilds the `zookeeper` package's native client, once, after install, with two fixes.
//
// 1. SOCK_CLOEXEC. The package compiles ZooKeeper's C client without close-on-exec on its sockets, so every
// process a node spawns (a worker's shell tasks, a test's child processes) inherits the client's
// socket. After a reconnect the inherited old socket keeps waking the new connection and the
// binding drops a healthy session. The C client's configure honours CPPFLAGS; the package's own
// install script skips the build when it finds an earlier one, so this clears that first.
//
// 2. A stale poll handle in the binding (src/node-zk.cpp, yield()). When zookeeper_interest()
// fails (ZOPERATIONTIMEOUT after the event loop stalled past 2/3 of the session timeout: a
// SIGSTOP, a long GC), the C client has already closed its socket, but the binding keeps the
// libuv poll handle of that fd. The process's next socket (a Postgres or gRPC connection) gets
// the same fd number, and when the binding later closes the stale handle libuv removes that
// socket from epoll: it never reports an event again, and whatever waits on it waits forever (a
// master's consume query, a worker's connection to a restarted master; both seen in the chaos
// suite). The patch closes the handle in the same synchronous call, before the number can be
// reused, whenever the call failed or the C client's fd changed.
//
// Runs as the root package's postinstall (npm ci included); a marker makes it a no-op after.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let pkgDir;
try {
  pkgDir = dirname(require.resolve('zookeeper/package.json'));
} catch {
  console.log('build-zookeeper-client: the zookeeper package is not installed; nothing to do');
  process.exit(0);
}
const marker = join(pkgDir, 'build', '.porpoise-cloexec-pollfix');
if (existsSync(marker)) process.exit(0);
if (process.platform === 'win32') process.exit(0);

patchStalePollHandle(join(pkgDir, 'src', 'node-zk.cpp'));
console.log('build-zookeeper-client: rebuilding the ZooKeeper C client with SOCK_CLOEXEC (about a minute)');
rmSync(join(pkgDir, 'build'), { recursive: true, force: true });
rmSync(join(pkgDir, 'deps', 'zookeeper-client-c'), { recursive: true, force: true });
const env = { ...process.env, CPPFLAGS: `${process.env.CPPFLAGS ?? ''} -DSOCK_CLOEXEC_ENABLED=1`.trim() };
execFileSync(process.execPath, [join(pkgDir, 'scripts', 'prepublish.js')], {
  cwd: pkgDir,
  env,
  stdio: 'inherit',
});
// node-gyp is npm's own; the package's binding.gyp builds the C library (scripts/build.js) first.
const npmCli = process.env.npm_execpath;
const candidates = [
  npmCli && join(dirname(dirname(npmCli)), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  join(
    dirname(process.execPath),
    '..',
    'lib',
    'node_modules',
    'npm',
    'node_modules',
    'node-gyp',
    'bin',
    'node-gyp.js',
  ),
].filter(Boolean);
const nodeGyp = candidates.find((c) => existsSync(c));
if (!nodeGyp) {
  console.error(`build-zookeeper-client: cannot find npm's node-gyp (looked in ${candidates.join(', ')})`);
  process.exit(1);
}
// Node's headers: npm passes its nodedir setting down; else the system's, as npm was set up here.
const nodedir =
  process.env.npm_config_nodedir ?? (existsSync('/usr/include/node/node.h') ? '/usr' : undefined);
const args = [nodeGyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
execFileSync(process.execPath, args, { cwd: pkgDir, env, stdio: 'inherit' });
writeFileSync(marker, 'built with -DSOCK_CLOEXEC_ENABLED=1 and the stale poll handle fix\n');
console.log('build-zookeeper-client: done');

/** Fix 2 above; idempotent, and loud when the binding's source is not the one it was written for. */
function patchStalePollHandle(file) {
  const PATCHED = '/* porpoise: stale poll handle fix */';
  let src = readFileSync(file, 'utf8');
  if (src.includes(PATCHED)) return;
  const replace = (from, to) => {
    if (!src.includes(from)) {
      console.error(
        `build-zookeeper-client: ${file} is not the expected source; cannot apply the poll handle fix`,
      );
      process.exit(1);
    }
    src = src.replace(from, to);
  };
  replace(
    `        int rc = zookeeper_interest(zhandle, &fd, &interest, &tv);

        if (zk_io && uv_is_active((uv_handle_t*) zk_io)) {
            uv_poll_stop(zk_io);
        }

        if (rc) {
            LOG_ERROR("yield:zookeeper_interest returned error: %d - %s\\n", rc, zerror(rc));
            return;
        }`,
    `        int rc = zookeeper_interest(zhandle, &fd, &interest, &tv);

        ${PATCHED}
        if (zk_io && (rc != ZOK || fd != oldFd)) {
            uv_close((uv_handle_t*) zk_io, delete_on_close);
            zk_io = NULL;
        } else if (zk_io && uv_is_active((uv_handle_t*) zk_io)) {
            uv_poll_stop(zk_io);
        }

        if (rc) {
            LOG_ERROR("yield:zookeeper_interest returned error: %d - %s\\n", rc, zerror(rc));
            fd = -1;
            return;
        }`,
  );
  replace('        if (oldFd != fd) {', '        if (oldFd != fd || !zk_io) {');
  writeFileSync(file, src);
  console.log('build-zookeeper-client: patched the stale poll handle in src/node-zk.cpp');
}
