import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { exitOnSignals, loadConfigFromProcess } from '@porpoise/common';
import { WorkerModule } from './worker.module';

const logger = new Logger('Worker');

async function bootstrap(): Promise<void> {
  const config = loadConfigFromProcess('worker');
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config));
  exitOnSignals(app, logger);
  logger.log(`worker ready as ${config.nodeHost}:${config.workerPort} in group ${config.workerGroup}`);
}

bootstrap().catch((err: Error) => {
  logger.error(`failed to start: ${err.message}`);
  process.exit(1);
});
