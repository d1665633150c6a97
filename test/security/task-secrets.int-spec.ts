/**
 * A task is untrusted code (DESIGN.md section 11, docs/security.md "Tasks and the node's
 * secrets"). A real standalone node (built code, embedded Postgres, the worker as root, as the
 * test runs here) runs a SHELL task that hunts for the node's secrets: its own environment, its
 * parent's (/proc/$PPID/environ), every process's environment and command line, and every file of
 * DATA_DIR (the cluster secret file, admin-token, datasource.key, the embedded Postgres's password
 * and data directory, another task's log). None of the secrets may appear in what it printed, and
 * it must have run as nobody. Also: the embedded Postgres password is on no command line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeUnless, freePort, notRootReason, stopProcess, waitFor } from '@porpoise/test-harness';

const ROOT = join(__dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'apps', 'standalone', 'src', 'main.js');
const FINAL = ['SUCCESS', 'FAILURE', 'STOP'];

interface Instance {
  state: string;
  tasks: Array<{ id: number; name: string; state: string }>;
}

/** Every value of /proc/<pid>/<file> for all processes this test (root) can read. */
function procFiles(file: 'cmdline' | 'environ'): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      out.push(readFileSync(`/proc/${pid}/${file}`).toString('utf8'));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

// Tasks switch to another user only when the worker runs as root.
const describeAsRoot = describeUnless(notRootReason('tasks switch to another user only under a root worker'));

describeAsRoot('tasks and the node’s secrets (a standalone node run as root)', () => {
  let scratch = '';
  let dataDir = '';
  let node: ChildProcess | undefined;
  let output = '';
  let api = '';
  const clusterSecret = `cluster-${randomBytes(16).toString('hex')}`;
  const adminToken = `admin-${randomBytes(24).toString('hex')}`;
  const otherTaskSecret = `other-task-${randomBytes(12).toString('hex')}`;

  /**
   * Every API call's headers: the one place that changes when the API needs a bearer token (the
   * node is given ADMIN_TOKEN, an admin token once the API checks tokens).
   */
  const headers = (): Record<string, string> => ({
    'content-type': 'application/json',
    authorization: `Bearer ${adminToken}`,
  });

  async function call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${api}/api/v1${path}`, {
      method,
      headers: headers(),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: (res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text) as T,
    };
  }

  /** Runs a one-task SHELL workflow to its end; the task's log and the instance. */
  async function runTask(
    name: string,
    command: string,
    tenant?: string,
  ): Promise<{ instance: Instance; log: string }> {
    const created = await call<{ code: string }>('POST', '/workflows', {
      name,
      ...(tenant === undefined ? {} : { tenant }),
      tasks: [{ name, type: 'SHELL', command, timeoutMs: 60_000 }],
    });
    expect(created.status).toBe(201);
    const started = await call<{ workflowInstanceId: number }>(
      'POST',
      `/workflows/${created.body.code}/runs`,
    );
    expect(started.status).toBe(202);
    const id = started.body.workflowInstanceId;
    const instance = await waitFor(
      `instance ${id} to finish`,
      async () => {
        const res = await call<Instance>('GET', `/workflow-instances/${id}`);
        return FINAL.includes(res.body.state) ? res.body : undefined;
      },
      90_000,
      200,
    );
    const task = instance.tasks[0];
    if (!task) throw new Error(`instance ${id} has no task`);
    const log = await call<string>('GET', `/task-instances/${task.id}/log`);
    expect(log.status).toBe(200);
    return { instance, log: log.body };
  }

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'porpoise-task-secrets-'));
    // The task user passes through to its working directory under scratch/tasks.
    chmodSync(scratch, 0o711);
    dataDir = join(scratch, 'data');
    const [apiPort, masterPort, workerPort] = [await freePort(), await freePort(), await freePort()];
    api = `http://127.0.0.1:${apiPort}`;
    // The cluster secret as a file in DATA_DIR (CLUSTER_SECRET_FILE), as an operator may keep it.
    mkdirSync(dataDir, { mode: 0o700 });
    writeFileSync(join(dataDir, 'cluster-secret'), `${clusterSecret}\n`, { mode: 0o600 });
    node = spawn(process.execPath, [MAIN], {
      cwd: scratch,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        DATA_DIR: dataDir,
        CLUSTER_SECRET_FILE: join(dataDir, 'cluster-secret'),
        // In the node's environment (readable in /proc/<pid>/environ by its own user only).
        ADMIN_TOKEN: adminToken,
        API_PORT: String(apiPort),
        MASTER_PORT: String(masterPort),
        WORKER_PORT: String(workerPort),
        METRICS_PORT: '0',
        TASK_WORK_DIR: join(scratch, 'tasks'),
        // TASK_USER unset: the default, nobody.
        // A system user every Debian has, allowed as a workflow's tenant (API server and worker).
        TASK_TENANTS: 'daemon',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-30_000));
    node.stdout?.on('data', keep);
    node.stderr?.on('data', keep);
    await waitFor(
      'the standalone node to be ready',
      () => {
        if (node?.exitCode !== null) throw new Error(`standalone exited ${node?.exitCode}: ${output}`);
        return output.includes('Porpoise is ready at');
      },
      180_000,
      200,
    );
    // What the auth work writes (DATA_DIR/admin-token, mode 600), unless it already did.
    const tokenFile = join(dataDir, 'admin-token');
    if (!existsSync(tokenFile)) writeFileSync(tokenFile, `${adminToken}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    if (node) await stopProcess(node, 'SIGTERM', 30_000);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  /** The node's secrets, as the node itself has them. */
  function secrets(): Record<string, string> {
    const postgres = JSON.parse(readFileSync(join(dataDir, 'postgres.json'), 'utf8')) as { password: string };
    return {
      'cluster secret': clusterSecret,
      'admin token': adminToken,
      'database password': postgres.password,
      'datasource key': readFileSync(join(dataDir, 'datasource.key'), 'utf8').trim(),
      "another task's output": otherTaskSecret,
    };
  }

  it('a task that hunts for them finds none of them, and runs as nobody', async () => {
    // Another task's log, in DATA_DIR/logs, holds something the hunter must not read.
    const other = await runTask('other', `echo ${otherTaskSecret}`);
    expect(other.instance.state).toBe('SUCCESS');
    expect(other.log).toContain(otherTaskSecret);

    const hunt = [
      'echo "UID=$(id -u) GROUPS=$(id -G)"',
      'echo "--- env"; env',
      'echo "--- parent environ"; tr "\\0" "\\n" < /proc/$PPID/environ',
      'echo "--- parent cmdline"; tr "\\0" " " < /proc/$PPID/cmdline; echo',
      'echo "--- parent memory"; head -c 64 /proc/$PPID/mem | od -c | head -2',
      'echo "--- every environ"; for f in /proc/[0-9]*/environ; do tr "\\0" "\\n" < "$f"; done',
      'echo "--- every cmdline"; for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < "$f"; echo; done',
      `echo "--- data dir"; ls -laR ${dataDir} 2>&1 | head -100`,
      `for f in ${dataDir}/cluster-secret ${dataDir}/admin-token ${dataDir}/datasource.key ` +
        `${dataDir}/postgres.json ${dataDir}/logs/*/*.log ${dataDir}/postgres/pg_hba.conf; do cat "$f"; done`,
      `find ${dataDir} -type f -exec cat {} + | head -c 200000 | tr -c "[:print:]\\n" "."`,
      'echo "--- done"',
      // Never fail: what it found is the result, not its exit code.
      'exit 0',
    ].join('\n');
    const { instance, log } = await runTask('hunt', `(${hunt}) 2>&1`);
    expect(instance.state).toBe('SUCCESS');
    // It ran, tried, and was refused: the test can see a leak if there is one.
    expect(log).toMatch(/^UID=65534 GROUPS=65534$/m);
    expect(log).toContain('--- every cmdline');
    expect(log).toContain('--- done');
    expect(log).toMatch(/environ: Permission denied/);
    expect(log).toMatch(/Permission denied/);
    for (const [what, value] of Object.entries(secrets())) {
      expect({ what, found: log.includes(value) }).toEqual({ what, found: false });
    }
  });

  it('keeps DATA_DIR private: the node’s own user, and the postgres group only to pass through', () => {
    const stat = statSync(dataDir);
    expect(stat.mode & 0o777).toBe(0o710);
    expect(stat.uid).toBe(0);
    expect(stat.gid).not.toBe(0); // the postgres group: its user reaches DATA_DIR/postgres
    for (const name of ['cluster-secret', 'datasource.key', 'postgres.json']) {
      expect({ name, mode: statSync(join(dataDir, name)).mode & 0o777 }).toEqual({ name, mode: 0o600 });
    }
    expect(statSync(join(dataDir, 'logs')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dataDir, 'postgres')).mode & 0o077).toBe(0);
  });

  it('puts the embedded Postgres password on no command line and in no environment', () => {
    const password = (
      JSON.parse(readFileSync(join(dataDir, 'postgres.json'), 'utf8')) as { password: string }
    ).password;
    expect(password.length).toBeGreaterThan(10);
    // The embedded Postgres runs (its server process is one of them).
    expect(
      procFiles('cmdline').some((c) => c.includes('postgres') && c.includes(join(dataDir, 'postgres'))),
    ).toBe(true);
    expect(procFiles('cmdline').filter((c) => c.includes(password))).toEqual([]);
    expect(procFiles('environ').filter((e) => e.includes(password))).toEqual([]);
    // Nor the cluster secret: it came from a file.
    expect(procFiles('cmdline').filter((c) => c.includes(clusterSecret))).toEqual([]);
    expect(procFiles('environ').filter((e) => e.includes(clusterSecret))).toEqual([]);
  });

  it("runs a workflow's tasks as its tenant, one of TASK_TENANTS, and refuses any other tenant", async () => {
    const { instance, log } = await runTask('tenant', 'id -un; id -u; stat -c %U .', 'daemon');
    expect(instance.state).toBe('SUCCESS');
    expect(log.trim().split('\n')).toEqual(['daemon', '1', 'daemon']);
    // The stored definition keeps it.
    const stored = await call<{ items: Array<{ code: string; name: string }> }>(
      'GET',
      '/workflows?limit=100',
    );
    const tenantWorkflow = stored.body.items.find((w) => w.name === 'tenant');
    const got = await call<{ tenant?: string }>('GET', `/workflows/${tenantWorkflow?.code}`);
    expect(got.body.tenant).toBe('daemon');

    for (const tenant of ['root', 'postgres']) {
      const refused = await call<{ message: string }>('POST', '/workflows', {
        name: `as-${tenant}`,
        tenant,
        tasks: [{ name: 'a', type: 'SHELL', command: 'id' }],
      });
      expect(refused.status).toBe(400);
      expect(refused.body.message).toBe(`workflow: "tenant" "${tenant}" is not one of TASK_TENANTS (daemon)`);
    }
  });
});
