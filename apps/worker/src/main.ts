import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ConfigError,
  configSecrets,
  exitOnConfigError,
  exitOnSignals,
  loadConfigFromProcess,
  NodeLogger,
} from '@porpoise/common';
import { SystemUserDirectory } from './adapters/user-directory';
import { decideTaskUser, decideTenants } from './domain/task-user';
import { WorkerModule } from './worker.module';

const logger = new Logger('Worker');

async function bootstrap(): Promise<void> {
  const config = loadConfigFromProcess('worker');
  // TASK_USER and TASK_TENANTS must name users of this system: checked before anything starts (LocalTaskSandbox
  // decides the same again when the module is built, for embedders such as standalone).
  try {
    const users = new SystemUserDirectory();
    const lookup = (nameOrUid: string) => users.lookup(nameOrUid);
    const workerUid = process.getuid?.() ?? 0;
    decideTaskUser({ workerUid, workerGid: process.getgid?.() ?? 0, setting: config.taskUser, lookup });
    decideTenants({ workerUid, tenants: config.taskTenants, lookup });
  } catch (err) {
    if (err instanceof ConfigError) exitOnConfigError('worker', err, config.logFormat);
    throw err;
  }
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
