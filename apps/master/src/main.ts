import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfigFromProcess } from '@porpoise/common';
import { MasterModule } from './master.module';

async function bootstrap(): Promise<void> {
  const config = loadConfigFromProcess('master');
  const app = await NestFactory.createApplicationContext(MasterModule.forRoot(config));
  app.enableShutdownHooks();
  new Logger('Master').log(`master ready as ${config.nodeHost}:${config.masterPort}`);
}

bootstrap().catch((err: Error) => {
  new Logger('Master').error(`failed to start: ${err.message}`);
  process.exit(1);
});
