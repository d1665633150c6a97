#!/usr/bin/env node
'use strict';
/*
 * Health check of one Porpoise node, for a container (deploy/docker-compose.yml) or by hand:
 *
 *   node deploy/healthcheck.js api-server|master|worker
 *
 * api-server: GET /health answers 200 (the node reaches Postgres and the registry).
 * master, worker: the standard gRPC health check (grpc.health.v1 Check) answers SERVING; the
 * call carries CLUSTER_SECRET, as every call to a node must. A draining node, or one whose
 * registry session is suspended, answers NOT_SERVING.
 *
 * It reads the node's own documented variables: NODE_HOST, BIND_HOST, API_PORT / MASTER_PORT /
 * WORKER_PORT, CLUSTER_SECRET (or CLUSTER_SECRET_FILE) and TLS_CA_FILE / TLS_CERT_FILE / TLS_KEY_FILE (mutual TLS; the
 * node is then dialed by NODE_HOST, the name its certificate carries). Exit status 0 when
 * healthy, 1 otherwise, with one line saying why.
 */
const { join } = require('node:path');

const ROLES = {
  'api-server': { variable: 'API_PORT', port: 12345 },
  master: { variable: 'MASTER_PORT', port: 5678 },
  worker: { variable: 'WORKER_PORT', port: 1234 },
};
const TIMEOUT_MS = 4000;

function fail(message) {
  process.stdout.write(`unhealthy: ${message}\n`);
  process.exit(1);
}

async function main() {
  const role = process.argv[2];
  const spec = ROLES[role];
  if (!spec) fail(`usage: node deploy/healthcheck.js ${Object.keys(ROLES).join('|')}`);
  const port = Number(process.env[spec.variable] || spec.port);
  // The node listens on BIND_HOST (default NODE_HOST); a wildcard bind is reached on loopback.
  const bind = (process.env.BIND_HOST || process.env.NODE_HOST || '127.0.0.1').trim();
  const host = bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind;
  setTimeout(() => fail(`no answer from ${host}:${port} within ${TIMEOUT_MS} ms`), TIMEOUT_MS + 500).unref();

  if (role === 'api-server') {
    let res;
    try {
      res = await fetch(`http://${host}:${port}/health`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      fail(`GET http://${host}:${port}/health: ${err.cause?.code ?? err.message}`);
    }
    const body = await res.text();
    if (res.status !== 200) fail(`GET /health answered ${res.status}: ${body.slice(0, 200)}`);
    process.stdout.write(`healthy: ${body.slice(0, 200)}\n`);
    return;
  }

  const { HealthClient } = require(join(__dirname, '..', 'dist', 'libs', 'rpc', 'src', 'grpc-clients.js'));
  // The secret (CLUSTER_SECRET or, in compose, CLUSTER_SECRET_FILE) and mutual TLS (TLS_*_FILE):
  // read by the config loader's own functions as the node reads them. With TLS the node is dialed
  // by NODE_HOST, the name its certificate carries.
  const config = join(__dirname, '..', 'dist', 'libs', 'common', 'src', 'config');
  const { loadTlsMaterial } = require(join(config, 'cluster-security.config.js'));
  const { resolveSecretFiles } = require(join(config, 'secret-files.js'));
  let secret;
  let tls;
  try {
    secret = resolveSecretFiles(
      { CLUSTER_SECRET: process.env.CLUSTER_SECRET, CLUSTER_SECRET_FILE: process.env.CLUSTER_SECRET_FILE },
      ['CLUSTER_SECRET'],
    ).CLUSTER_SECRET;
    tls = loadTlsMaterial({
      TLS_CA_FILE: process.env.TLS_CA_FILE || undefined,
      TLS_CERT_FILE: process.env.TLS_CERT_FILE || undefined,
      TLS_KEY_FILE: process.env.TLS_KEY_FILE || undefined,
    });
  } catch (err) {
    fail(err.message);
  }
  if (!secret) fail('CLUSTER_SECRET is not set (every call to a node carries it)');
  const target = `${tls ? (process.env.NODE_HOST || '127.0.0.1').trim() : host}:${port}`;
  const client = new HealthClient(secret, tls);
  try {
    const status = await client.check(target, TIMEOUT_MS);
    if (status !== 'SERVING') fail(`${role} at ${target} answers ${status}`);
    process.stdout.write(`healthy: ${role} at ${target} is SERVING\n`);
  } catch (err) {
    fail(`${role} at ${target}: ${err.message}`);
  } finally {
    client.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => fail(err.message),
);
