import type { INestApplicationContext, LoggerService } from '@nestjs/common';

/**
 * On SIGTERM or SIGINT: close the application (every onApplicationShutdown hook runs, so the
 * registry session is closed and this node's ephemeral keys vanish at once), then exit 0.
 * A second signal while closing exits at once with 130. Nest's own shutdown hooks re-raise the
 * signal instead, which makes a clean stop look like a crash to supervisors.
 */
export function exitOnSignals(app: INestApplicationContext, logger: LoggerService, graceMs = 30_000): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) process.exit(130);
    closing = true;
    logger.log(`${signal}: shutting down`);
    const force = setTimeout(() => {
      logger.error(`shutdown took longer than ${graceMs} ms; exiting`);
      process.exit(1);
    }, graceMs);
    force.unref();
    app.close().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error(`shutdown failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
