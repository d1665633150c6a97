import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopProcess, waitFor } from '@porpoise/test-harness';
import { TEST_ADMIN_TOKEN } from '@porpoise/test-harness/api-token';

const ROOT = join(__dirname, '..', '..');

export interface NodeProcess {
  readonly role: 'api-server' | 'master' | 'worker';
  readonly port: number;
  /** Where /health and /metrics answer: METRICS_PORT of a master or worker, the API server's port. */
  readonly metricsPort: number;
  readonly dataDir: string;
  readonly child: ChildProcess;
  output(): string;
}

/**
 * Starts one node from the built code (npm run build) as its own OS process, configured only
 * through the documented environment variables, and waits until it is registered / serving.
 */
export async function startNode(
  role: NodeProcess['role'],
  env: Record<string, string>,
  ready: (port: number) => Promise<boolean>,
): Promise<NodeProcess> {
  const port = await freePort();
  // Every master and worker gets its own METRICS_PORT (the role's default would be shared).
  let metricsPort = port;
  while (role !== 'api-server' && metricsPort === port) metricsPort = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), `porpoise-${role}-`));
  const portVariable = role === 'api-server' ? 'API_PORT' : role === 'master' ? 'MASTER_PORT' : 'WORKER_PORT';
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'apps', role, 'src', 'main.js')], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      // Every API server a test starts takes the tests' admin token (callers may override it).
      ...(role === 'api-server' ? { ADMIN_TOKEN: TEST_ADMIN_TOKEN } : {}),
      // These tests check scheduling: their tasks write witness files into the test's own private
      // (mode 700) directories, so tasks run as the test's user, explicitly. A test of task
      // isolation gives its own TASK_USER ('' = unset: the default, nobody).
      ...(process.getuid?.() === 0 ? { TASK_USER: 'root' } : {}),
      ...env,
      [portVariable]: String(port),
      ...(role === 'api-server' ? {} : { METRICS_PORT: String(metricsPort) }),
      DATA_DIR: dataDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (d: Buffer) => (output = (output + d.toString()).slice(-20_000));
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const node: NodeProcess = { role, port, metricsPort, dataDir, child, output: () => output };
  await waitFor(
    `${role} on port ${port} to be ready`,
    async () => {
      if (child.exitCode !== null) {
        throw new Error(`${role} exited ${child.exitCode}: ${output.slice(-3000)}`);
      }
      return ready(port);
    },
    60_000,
    100,
  );
  return node;
}

export async function stopNodes(nodes: NodeProcess[]): Promise<void> {
  await Promise.all(nodes.map((n) => stopProcess(n.child, 'SIGTERM', 15_000)));
}
