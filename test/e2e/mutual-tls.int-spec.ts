/**
 * A cluster whose nodes talk gRPC over mutual TLS only (TLS_CA_FILE, TLS_CERT_FILE,
 * TLS_KEY_FILE): API server, master and worker processes from the built code (`npm run build`
 * first) on a real Postgres (JDBC registry), certificates from the throwaway CA of `npm run
 * cluster -- --tls`. A task is dispatched (master -> worker), reports back (worker -> master),
 * and its log is read through the API (API server -> worker): every gRPC path, each over TLS.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, waitFor, type TestServer } from '@porpoise/test-harness';
import { createCertificateAuthority } from '../../scripts/cluster/certificates';
import { startNode, stopNodes, type NodeProcess } from './cluster-processes';

const SECRET = 'e2e-mutual-tls-secret-0123456789';
// Read by the API once bearer tokens are in (DESIGN.md section 11); ignored before.
const ADMIN_TOKEN = 'e2e-mutual-tls-admin-token-0123456789abcdef';

describe('a cluster over mutual TLS runs a task', () => {
  let pg: TestServer;
  let nodes: NodeProcess[] = [];
  let api = '';
  let scratch = '';

  const call = async <T>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${api}/api/v1${path}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: (text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as T,
    };
  };

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'porpoise-e2e-tls-'));
    const ca = await createCertificateAuthority();
    const leaf = await ca.issue('node', ['127.0.0.1']);
    const file = (name: string, text: string) => {
      writeFileSync(join(scratch, name), text, { mode: 0o600 });
      return join(scratch, name);
    };
    pg = await startPostgres();
    const env = {
      DATABASE_URL: pg.endpoint,
      REGISTRY_TYPE: 'jdbc',
      CLUSTER_SECRET: SECRET,
      ADMIN_TOKEN,
      REGISTRY_SESSION_TIMEOUT_MS: '4000',
      HEARTBEAT_INTERVAL_MS: '500',
      NODE_HOST: '127.0.0.1',
      TLS_CA_FILE: file('ca.pem', ca.cert),
      TLS_CERT_FILE: file('node.pem', leaf.cert),
      TLS_KEY_FILE: file('node.key', leaf.key),
    };
    const apiNode = await startNode('api-server', env, async (port) => {
      const res = await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined);
      return res?.status === 200;
    });
    nodes.push(apiNode);
    api = `http://127.0.0.1:${apiNode.port}`;
    const registered = (kind: 'masters' | 'workers') => async (port: number) => {
      const res = await call<Record<typeof kind, Array<{ port: number }>>>('GET', '/cluster/nodes');
      return res.status === 200 && res.body[kind].some((n) => n.port === port);
    };
    nodes.push(await startNode('master', env, registered('masters')));
    nodes.push(await startNode('worker', env, registered('workers')));
  });

  afterAll(async () => {
    await stopNodes(nodes);
    nodes = [];
    await pg?.dispose();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('dispatches, reports and serves the log of a task, all over TLS', async () => {
    const created = await call<{ code: string }>('POST', '/workflows', {
      name: 'over-tls',
      tasks: [{ name: 'hello', type: 'SHELL', command: 'echo hello over tls' }],
      edges: [],
    });
    expect(created.status).toBe(201);
    const run = await call<{ workflowInstanceId: number }>('POST', `/workflows/${created.body.code}/runs`);
    expect(run.status).toBe(202);
    const id = run.body.workflowInstanceId;
    let instance: { state: string; tasks: Array<{ id: number; state: string }> } | undefined;
    await waitFor(
      `instance ${id} to finish`,
      async () => {
        const res = await call<typeof instance>('GET', `/workflow-instances/${id}`);
        instance = res.body;
        return ['SUCCESS', 'FAILURE', 'STOP'].includes(instance?.state ?? '');
      },
      60_000,
      200,
    );
    expect(instance?.state).toBe('SUCCESS');
    const task = instance!.tasks[0]!;
    expect(task.state).toBe('SUCCESS');
    const log = await call<string>('GET', `/task-instances/${task.id}/log`);
    expect(log.status).toBe(200);
    expect(log.body).toContain('hello over tls');
  });
});
