import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfigFromProcess } from '@porpoise/common';
import { WorkerModule } from './worker.module';

async function bootstrap(): Promise<void> {
  const config = loadConfigFromProcess('worker');
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config));
  app.enableShutdownHooks();
  new Logger('Worker').log(
    `worker ready as ${config.nodeHost}:${config.workerPort} in group ${config.workerGroup}`,
  );
}

bootstrap().catch((err: Error) => {
  new Logger('Worker').error(`failed to start: ${err.message}`);
  process.exit(1);
});
