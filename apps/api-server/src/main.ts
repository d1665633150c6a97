import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { exitOnSignals, loadConfigFromProcess } from '@porpoise/common';
import { createApiServerApp } from './api-app';

const logger = new Logger('ApiServer');

async function bootstrap(): Promise<void> {
  const config = loadConfigFromProcess('api-server');
  const app = await createApiServerApp(config);
  exitOnSignals(app, logger);
  await app.listen(config.apiPort, config.bindHost);
  logger.log(`API ready at http://${config.nodeHost}:${config.apiPort}/api/v1`);
}

bootstrap().catch((err: Error) => {
  logger.error(`failed to start: ${err.message}`);
  process.exit(1);
});
