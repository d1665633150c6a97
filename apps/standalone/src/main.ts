/**
 * `npm start`: API server, master and worker in one process, on an embedded Postgres (data
 * under DATA_DIR, default .porpoise/, kept across restarts) and the JDBC registry on that same
 * database, unless DATABASE_URL / REGISTRY_TYPE say otherwise. The composition root is the
 * one place allowed to import the other apps' modules.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Logger, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  configSecrets,
  ensurePrivateDir,
  loadConfigFromProcess,
  loadOrCreateAdminTokenFile,
  loadOrCreateKeyFile,
  NodeLogger,
  standaloneRoles,
} from '@porpoise/common';
import { ApiServerModule } from '../../api-server/src/api-server.module';
import { configureApiApp } from '../../api-server/src/api-app';
import { MasterModule } from '../../master/src/master.module';
import { WorkerModule } from '../../worker/src/worker.module';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from './embedded-postgres';

const logger = new Logger('Standalone');

async function bootstrap(): Promise<void> {
  const loaded = loadConfigFromProcess('standalone');
  // LOG_FORMAT for the whole process (the three nodes share it: a line's context says whose it is).
  let nodeLogger = new NodeLogger({ format: loaded.logFormat, secrets: configSecrets(loaded) });
  Logger.overrideLogger(nodeLogger);
  let postgres: EmbeddedPostgresHandle | undefined;
  const apps: INestApplicationContext[] = [];
  let stopping = false;

  const stop = async (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    logger.log(`${signal}: stopping`);
    // API first (no new requests), then the worker, then the master, then the database.
    for (const app of [...apps].reverse()) await app.close().catch((e: Error) => logger.error(e.message));
    await postgres?.stop().catch((e: Error) => logger.error(e.message));
    process.exit(0);
  };
  process.on('SIGINT', (s) => void stop(s));
  process.on('SIGTERM', (s) => void stop(s));

  // DATA_DIR holds the data-source key, the admin token, task logs, undelivered results and the
  // embedded database: the node's own, mode 700 (docs/security.md), also when it existed before.
  ensurePrivateDir(loaded.dataDir);
  // Before the embedded Postgres, which (as root) opens the data directory to its own user.
  const adminToken = loaded.adminToken ?? generatedAdminToken(loaded.dataDir);
  if (!loaded.databaseUrl) postgres = await startEmbeddedPostgres(loaded.dataDir, (m) => logger.log(m));
  const databaseUrl = loaded.databaseUrl ?? postgres?.url;
  if (databaseUrl === undefined) throw new Error('the embedded Postgres did not report its URL');
  const roles = standaloneRoles(loaded, {
    databaseUrl,
    // One process: the secret only has to be shared with itself.
    clusterSecret: loaded.clusterSecret ?? randomBytes(24).toString('base64url'),
    // Kept in the data directory: the secret above is new at each start, the data sources are not.
    datasourceKey: loadOrCreateKeyFile(join(loaded.dataDir, 'datasource.key')),
    adminToken,
  });
  // Now that they are known: the generated secret and the embedded database's password.
  nodeLogger = new NodeLogger({
    format: loaded.logFormat,
    secrets: configSecrets({ clusterSecret: roles.master.clusterSecret, databaseUrl, adminToken }),
  });
  Logger.overrideLogger(nodeLogger);

  // abortOnError false: a failing start rejects here (and is reported) instead of Nest exiting.
  apps.push(
    await NestFactory.createApplicationContext(MasterModule.forRoot(roles.master), {
      abortOnError: false,
      logger: nodeLogger,
    }),
  );
  apps.push(
    await NestFactory.createApplicationContext(WorkerModule.forRoot(roles.worker), {
      abortOnError: false,
      logger: nodeLogger,
    }),
  );
  const api = await NestFactory.create(ApiServerModule.forRoot(roles.api), {
    abortOnError: false,
    logger: nodeLogger,
  });
  configureApiApp(api);
  apps.push(api);
  await api.listen(roles.api.apiPort, roles.api.bindHost);
  const url = `http://${roles.api.nodeHost}:${roles.api.apiPort}`;
  const metrics = (role: { metricsPort: number }) =>
    role.metricsPort === 0 ? 'off' : `http://${roles.api.nodeHost}:${role.metricsPort}/metrics`;
  logger.log(
    `Porpoise standalone is ready: console at ${url}/, API at ${url}/api/v1 (docs at ${url}/api/docs); metrics: API ${url}/metrics, ` +
      `master ${metrics(roles.master)}, worker ${metrics(roles.worker)}`,
  );
  process.stdout.write(`Porpoise is ready at ${url}/api/v1\n`);
}

/**
 * The admin token where ADMIN_TOKEN is unset: DATA_DIR/admin-token (mode 600), made once and
 * kept. The log says where it is, never what it is.
 */
function generatedAdminToken(dataDir: string): string {
  const path = join(dataDir, 'admin-token');
  const { token, created } = loadOrCreateAdminTokenFile(path);
  logger.log(
    `admin token ${created ? 'generated in' : 'read from'} ${path} (ADMIN_TOKEN unset); ` +
      `call the API with: -H "Authorization: Bearer $(cat ${path})"`,
  );
  return token;
}

bootstrap().catch((err: Error) => {
  logger.error(`failed to start: ${err.message}`);
  process.exit(1);
});
