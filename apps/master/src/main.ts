import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { exitOnSignals, loadConfigFromProcess } from '@porpoise/common';
import { MasterModule } from './master.module';

const logger = new Logger('Master');

async function bootstrap(): Promise<void> {
  const config = loadConfigFromProcess('master');
  const app = await NestFactory.createApplicationContext(MasterModule.forRoot(config));
  exitOnSignals(app, logger);
  logger.log(`master ready as ${config.nodeHost}:${config.masterPort}`);
}

bootstrap().catch((err: Error) => {
  logger.error(`failed to start: ${err.message}`);
  process.exit(1);
});
