/**
 * `npm run cluster -- --masters N --workers M [--api-servers K] [--registry zookeeper|jdbc|etcd]`
 * (DESIGN.md section 2). Run with `node --import tsx scripts/cluster/main.ts`; the data goes
 * under .porpoise/ in the working directory, the code is found beside this file.
 *
 * Exit status: 0 after a stop by SIGINT/SIGTERM, 1 when the cluster could not start, 2 for a
 * bad command line or environment, 130 when a signal interrupted the start.
 */
import { resolve } from 'node:path';
import { parseClusterArgs, UsageError, USAGE, type ClusterArgs } from './args';
import { build, staleBuildReason } from './build';
import { ClusterLauncher, launcherPaths, StartInterrupted } from './launcher';
import { resolveSettings, type ClusterSettings } from './settings';

const REPO_ROOT = resolve(__dirname, '..', '..');
/** A second signal this long after the first forces the stop (npm forwards the terminal's Ctrl-C once more at once). */
const FORCE_AFTER_MS = 2_000;

const log = (line: string) => process.stdout.write(`cluster: ${line}\n`);

async function main(): Promise<void> {
  let args: ClusterArgs;
  let settings: ClusterSettings;
  try {
    args = parseClusterArgs(process.argv.slice(2), process.env);
    if (args.help) {
      process.stdout.write(USAGE + '\n');
      return;
    }
    settings = resolveSettings(process.env, args.registry);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`npm run cluster: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  if (args.build) {
    const reason = staleBuildReason(REPO_ROOT);
    if (reason) {
      log(`building first (${reason})`);
      build(REPO_ROOT);
    }
  } else if (staleBuildReason(REPO_ROOT)?.endsWith('is missing')) {
    process.stderr.write(`npm run cluster: ${staleBuildReason(REPO_ROOT)}: run npm run build first\n`);
    process.exit(1);
  }

  const launcher = new ClusterLauncher(args, settings, launcherPaths(REPO_ROOT, process.cwd()), log);
  let ready = false;
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (launcher.isStopping) {
      if (Date.now() - firstSignalAt > FORCE_AFTER_MS) launcher.forceStop();
      return;
    }
    firstSignalAt = Date.now();
    void launcher.stop(signal).then(
      () => process.exit(ready ? 0 : 130),
      (err: Error) => {
        log(`stopping failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  // A bug here must not leave the nodes running without their launcher.
  process.on('uncaughtException', (err) => {
    log(`unexpected error: ${err.stack ?? err.message}`);
    void launcher.stop('error').finally(() => process.exit(1));
  });

  if (!settings.secretFromEnv) log('CLUSTER_SECRET: generated for this cluster (see .porpoise/cluster.json)');
  try {
    const file = await launcher.start();
    ready = true;
    process.stdout.write(`\nPorpoise cluster is ready at ${file.apiUrl}/api/v1\n${launcher.describe()}\n\n`);
  } catch (err) {
    if (err instanceof StartInterrupted || launcher.isStopping) return; // the signal handler exits
    log(`could not start the cluster: ${err instanceof Error ? err.message : String(err)}`);
    await launcher.stop('start failed').catch((e: Error) => log(`stopping failed: ${e.message}`));
    process.exit(1);
  }
}

process.on('unhandledRejection', (reason) => {
  log(`unexpected error: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
});

main().catch((err: Error) => {
  process.stderr.write(`npm run cluster: ${err.message}\n`);
  process.exit(1);
});
