import { Client } from 'pg';
import { connect } from 'node:net';
import { startEtcd, startPostgres, startZooKeeper, type TestServer } from '.';

async function zkRuok(endpoint: string): Promise<string> {
  const [host, port] = endpoint.split(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port) }, () => socket.write('ruok'));
    let data = '';
    socket.on('data', (d) => (data += d.toString()));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

async function pgNow(url: string): Promise<Date> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const [row] = (await c.query<{ now: Date }>('SELECT now()')).rows;
    if (!row) throw new Error('SELECT now() returned no row');
    return row.now;
  } finally {
    await c.end();
  }
}

async function etcdVersion(endpoint: string): Promise<string> {
  const res = await fetch(`${endpoint}/version`);
  return ((await res.json()) as { etcdserver: string }).etcdserver;
}

describe.each<[string, () => Promise<TestServer>, (endpoint: string) => Promise<unknown>]>([
  ['postgres', startPostgres, pgNow],
  ['zookeeper', startZooKeeper, zkRuok],
  ['etcd', startEtcd, etcdVersion],
])('test harness: %s', (_name, start, probe) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await start();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('serves a real server, and a controllable one survives stop and start on the same endpoint', async () => {
    expect(await probe(server.endpoint)).toBeTruthy();
    if (!server.controllable) return;
    const endpoint = server.endpoint;
    await server.stop();
    await expect(probe(endpoint)).rejects.toBeDefined();
    await server.start();
    expect(server.endpoint).toBe(endpoint);
    expect(await probe(server.endpoint)).toBeTruthy();
  });
});
