import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfigFromProcess } from '@porpoise/common';
import { ApiServerModule } from './api-server.module';

async function bootstrap(): Promise<void> {
  const config = loadConfigFromProcess('api-server');
  const app = await NestFactory.create(ApiServerModule.forRoot(config), { bufferLogs: false });
  app.enableShutdownHooks();
  await app.listen(config.apiPort, config.bindHost);
  new Logger('ApiServer').log(`API ready at http://${config.nodeHost}:${config.apiPort}/api/v1`);
}

bootstrap().catch((err: Error) => {
  new Logger('ApiServer').error(`failed to start: ${err.message}`);
  process.exit(1);
});
