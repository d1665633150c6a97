import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { configSecrets, exitOnSignals, loadConfigFromProcess, NodeLogger } from '@porpoise/common';
import { MasterModule } from './master.module';

const logger = new Logger('Master');

async function bootstrap(): Promise<void> {
  const config = loadConfigFromProcess('master');
  // LOG_FORMAT (text or json) for every log line of the node, Nest's own included.
  const nodeLogger = new NodeLogger({ format: config.logFormat, secrets: configSecrets(config) });
  Logger.overrideLogger(nodeLogger);
  const app = await NestFactory.createApplicationContext(MasterModule.forRoot(config), {
    logger: nodeLogger,
  });
  exitOnSignals(app, logger);
  logger.log(`master ready as ${config.nodeHost}:${config.masterPort}`);
}

bootstrap().catch((err: Error) => {
  logger.error(`failed to start: ${err.message}`);
  process.exit(1);
});
