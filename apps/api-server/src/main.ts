import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { configSecrets, exitOnSignals, loadConfigFromProcess, NodeLogger } from '@porpoise/common';
import { createApiServerApp } from './api-app';

const logger = new Logger('ApiServer');

async function bootstrap(): Promise<void> {
  const config = loadConfigFromProcess('api-server');
  // LOG_FORMAT (text or json) for every log line of the node, Nest's own included.
  const nodeLogger = new NodeLogger({ format: config.logFormat, secrets: configSecrets(config) });
  Logger.overrideLogger(nodeLogger);
  const app = await createApiServerApp(config, { logger: nodeLogger });
  exitOnSignals(app, logger);
  await app.listen(config.apiPort, config.bindHost);
  logger.log(
    `API ready at http://${config.nodeHost}:${config.apiPort}/api/v1 (console at http://${config.nodeHost}:${config.apiPort}/)`,
  );
}

bootstrap().catch((err: Error) => {
  logger.error(`failed to start: ${err.message}`);
  process.exit(1);
});
