import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ConfigError,
  configSecrets,
  exitOnSignals,
  loadConfigFromProcess,
  NodeLogger,
} from '@porpoise/common';
import { WorkerModule } from './worker.module';

const logger = new Logger('Worker');

async function bootstrap(): Promise<void> {
  const config = loadConfigFromProcess('worker');
  // LOG_FORMAT (text or json) for every log line of the node, Nest's own included.
  const nodeLogger = new NodeLogger({
    format: config.logFormat,
    secrets: configSecrets({
      clusterSecret: config.clusterSecret,
      databaseUrl: config.registry.type === 'jdbc' ? config.registry.databaseUrl : undefined,
      registry: config.registry,
    }),
  });
  Logger.overrideLogger(nodeLogger);
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), {
    logger: nodeLogger,
  });
  exitOnSignals(app, logger);
  logger.log(`worker ready as ${config.nodeHost}:${config.workerPort} in group ${config.workerGroup}`);
}

bootstrap().catch((err: Error) => {
  logger.error(`failed to start: ${err.message}`);
  // A TASK_USER that does not exist is bad configuration too (found at start, not in loadConfig).
  process.exit(err instanceof ConfigError ? 78 : 1);
});
