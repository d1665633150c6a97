// Rebuilds the `zookeeper` package's native client with SOCK_CLOEXEC, once, after install.
//
// Why: the package compiles ZooKeeper's C client without close-on-exec on its sockets, so every
// process a node spawns (a worker's shell tasks, a test's child processes) inherits the client's
// socket. After a reconnect the inherited old socket keeps waking the new connection and the
// binding drops a healthy session. The C client's configure honours CPPFLAGS; the package's own
// install script skips the build when it finds an earlier one, so this clears that first.
// Runs as the root package's postinstall (npm ci included); a marker makes it a no-op after.
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
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
const marker = join(pkgDir, 'build', '.porpoise-cloexec');
if (existsSync(marker)) process.exit(0);
if (process.platform === 'win32') process.exit(0);

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
writeFileSync(marker, 'built with -DSOCK_CLOEXEC_ENABLED=1\n');
console.log('build-zookeeper-client: done');
