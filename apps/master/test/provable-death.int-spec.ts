/**
 * Provable death (docs/failover.md): a node whose process is gone (its gRPC port refuses, twice)
 * is failed over without waiting for its registry session, and a frozen or draining one is not.
 * Every node is a real process from the built code (`npm run build` first), on a real Postgres
 * and each registry. The session timeout is long (60 s) and every wait for a failover is bounded
 * by half of it: a failover seen within the bound happened while the dead node's session was
 * still alive, so it was the death watch, not the expiry (an order, not a timing; nothing here
 * measures how long it took — `npm run bench -- --only failover` does).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMigrations } from '@porpoise/dao';
import { createRegistry, type Registry } from '@porpoise/registry';
import {
  sleep,
  startEtcd,
  startPostgres,
  startZooKeeper,
  stopProcess,
  waitFor,
  type TestServer,
} from '@porpoise/test-harness';
import { startNode, type NodeProcess } from '../../../test/e2e/cluster-processes';
import { Db } from './support/db';
import { task } from './support/tasks';

const SECRET = 'provable-death-secret-0123456789abcdef';
const SESSION_TIMEOUT_MS = 60_000;
/** How long a wait for a failover may take: well inside the dead node's session. */
const BOUND_MS = SESSION_TIMEOUT_MS / 2;
const FINAL = ['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'];
const REGISTRIES = ['zookeeper', 'etcd', 'jdbc'] as const;

interface Node {
  readonly node: NodeProcess;
  readonly address: string;
  log(): string;
}

/** Live (non-zombie) members of a process group. */
function liveMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(name));
    } catch {
      // Exited while we looked.
    }
  }
  return members;
}

describe('provable death: a node whose port refuses is failed over before its session expires', () => {
  let pg: TestServer;
  let db: Db;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    db = new Db(pg.endpoint);
  });

  afterAll(async () => {
    await db?.close();
    await pg?.dispose();
  });

  describe.each(REGISTRIES)('%s registry', (type) => {
    let server: TestServer | undefined;
    let registry: Registry;
    let scratch = '';
    let witness = '';
    let code = '';
    const nodes: Node[] = [];
    const runs: number[] = [];
    let m1: Node;
    let x: Node;
    let y: Node;
    let z: Node;

    const env = (): Record<string, string> => ({
      DATABASE_URL: pg.endpoint,
      REGISTRY_TYPE: type,
      ...(type === 'zookeeper' ? { ZOOKEEPER_CONNECT: server!.endpoint } : {}),
      ...(type === 'etcd' ? { ETCD_ENDPOINTS: server!.endpoint } : {}),
      CLUSTER_SECRET: SECRET,
      REGISTRY_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
      HEARTBEAT_INTERVAL_MS: '500',
      NO_COLOR: '1',
    });

    const masterKey = (n: Node) => `/nodes/master/${n.address}`;
    const workerKey = (n: Node) => `/nodes/worker/default/${n.address}`;

    const start = async (role: 'master' | 'worker'): Promise<Node> => {
      const node = await startNode(role, env(), async (port) =>
        role === 'master'
          ? (await registry.children('/nodes/master')).includes(`127.0.0.1:${port}`)
          : (await registry.children('/nodes/worker/default')).includes(`127.0.0.1:${port}`),
      );
      let full = node.output();
      const append = (d: Buffer) => (full += d.toString());
      node.child.stdout?.on('data', append);
      node.child.stderr?.on('data', append);
      const n: Node = { node, address: `127.0.0.1:${node.port}`, log: () => full };
      nodes.push(n);
      return n;
    };

    const exited = (n: Node) =>
      n.node.child.exitCode !== null || n.node.child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((r) => n.node.child.once('exit', () => r()));

    const kill = async (n: Node, signal: NodeJS.Signals) => {
      const done = exited(n);
      n.node.child.kill(signal);
      await done;
    };

    const openGate = (run: number) => writeFileSync(join(scratch, `gate-${run}`), '');
    const pidOf = (run: number, attempt: number) =>
      Number(readFileSync(join(scratch, `pid-${run}-${attempt}`), 'utf8').trim());
    const witnessLines = () => (existsSync(witness) ? readFileSync(witness, 'utf8').trim().split('\n') : []);
    /** The death watch's own line: this failover was its doing, not a session expiry. */
    const judgedDead = (key: string) =>
      nodes.some((n) => n.log().includes(`${key}: its process is gone (gRPC port refused twice`));

    beforeAll(async () => {
      if (type === 'zookeeper') server = await startZooKeeper();
      if (type === 'etcd') server = await startEtcd();
      registry = createRegistry(
        type === 'zookeeper'
          ? { type, connect: server!.endpoint, sessionTimeoutMs: 10_000 }
          : type === 'etcd'
            ? { type, endpoints: [server!.endpoint], sessionTimeoutMs: 10_000 }
            : { type, databaseUrl: pg.endpoint, sessionTimeoutMs: 10_000 },
      );
      await registry.start();
      scratch = mkdtempSync(join(tmpdir(), `porpoise-death-${type}-`));
      witness = join(scratch, 'witness.txt');
      const line = (what: string) =>
        `echo "${what} $PORPOISE_WORKFLOW_INSTANCE_ID $PORPOISE_ATTEMPT" >> ${witness}`;
      code = await db.createWorkflow([
        task('a', {
          command:
            `echo $$ > ${scratch}/pid-$PORPOISE_WORKFLOW_INSTANCE_ID-$PORPOISE_ATTEMPT; ${line('start')}; ` +
            `while [ ! -f ${scratch}/gate-$PORPOISE_WORKFLOW_INSTANCE_ID ]; do sleep 0.1; done; ${line('end')}`,
        }),
      ]);
    });

    afterAll(async () => {
      for (const n of nodes) {
        try {
          n.node.child.kill('SIGCONT');
        } catch {
          // already gone
        }
      }
      for (const run of runs) openGate(run);
      await Promise.all(nodes.map((n) => stopProcess(n.node.child, 'SIGTERM', 15_000)));
      await registry?.close();
      await server?.dispose();
      if (scratch) rmSync(scratch, { recursive: true, force: true });
      for (const n of nodes) rmSync(n.node.dataDir, { recursive: true, force: true });
    });

    it('SIGKILL of a worker: its tasks run again elsewhere before its session ends, its own already dead; a frozen (SIGSTOP) and a draining worker beside it are left alone', async () => {
      m1 = await start('master');
      const workers = [await start('worker'), await start('worker'), await start('worker')];
      // One run per worker: each triggered once the previous one runs (lowest load spreads them).
      const hostOf = new Map<number, string>();
      for (let i = 0; i < 3; i++) {
        const id = await db.trigger(code);
        runs.push(id);
        hostOf.set(id, (await db.waitForTask(id, 'a', 'RUNNING_EXECUTION')).host ?? '');
      }
      const byHost = (run: number) => workers.find((w) => w.address === hostOf.get(run));
      expect(new Set(hostOf.values()).size).toBe(3);
      const [r1, r2, r3] = runs as [number, number, number];
      [x, y, z] = [byHost(r1)!, byHost(r2)!, byHost(r3)!];

      x.node.child.kill('SIGSTOP');
      y.node.child.kill('SIGTERM');
      await waitFor('the draining worker to say serving=false', async () => {
        const v = await registry.get(workerKey(y));
        return v !== null && (JSON.parse(v) as { serving: boolean }).serving === false;
      });
      const pgid = pidOf(r3, 1);
      await kill(z, 'SIGKILL');

      // Re-dispatched as a new attempt while the dead worker's session would still be alive.
      await waitFor(
        `a second attempt of run ${r3}'s task`,
        async () => (await db.tasks(r3)).some((t) => t.attempt === 2),
        BOUND_MS,
        50,
      );
      expect(judgedDead(workerKey(z))).toBe(true);
      expect(await registry.get(workerKey(z))).toBeNull();
      // The killed worker's task died with it (its watchdog's pipe), before the re-run.
      expect(liveMembers(pgid)).toEqual([]);

      // The watch goes on probing every node meanwhile (each round probes all of them).
      await sleep(2_000);
      expect(await registry.get(workerKey(x))).not.toBeNull();
      expect(await registry.get(workerKey(y))).not.toBeNull();
      for (const run of [r1, r2]) {
        expect((await db.tasks(run)).map((t) => [t.attempt, t.state])).toEqual([[1, 'RUNNING_EXECUTION']]);
      }
      expect(judgedDead(workerKey(x)) || judgedDead(workerKey(y))).toBe(false);

      x.node.child.kill('SIGCONT');
      // The draining worker finishes its task, delivers it, and leaves.
      openGate(r2);
      await exited(y);
      expect((await db.waitForTask(r2, 'a', 'SUCCESS')).attempt).toBe(1);
    }, 240_000);

    it('SIGKILL of a master: its instances are owned by another master before its session ends; nothing runs twice', async () => {
      const [r1, , r3] = runs as [number, number, number];
      const m2 = await start('master');
      const owned = async () =>
        (
          await db.pool.query<{ id: string; host: string | null; state: string }>(
            'SELECT id, host, state FROM workflow_instance WHERE id = ANY($1::bigint[])',
            [[r1, r3]],
          )
        ).rows;
      expect((await owned()).every((r) => r.host === m1.address)).toBe(true);
      await kill(m1, 'SIGKILL');
      await waitFor(
        'the killed master’s instances owned by the other one',
        async () => (await owned()).every((r) => r.host === m2.address),
        BOUND_MS,
        50,
      );
      expect(judgedDead(masterKey(m1))).toBe(true);

      openGate(r1);
      openGate(r3);
      await waitFor(
        'every run to finish',
        async () => (await owned()).every((r) => FINAL.includes(r.state)),
        90_000,
        200,
      );
      expect((await owned()).map((r) => r.state)).toEqual(['SUCCESS', 'SUCCESS']);
      const lines = witnessLines();
      // The frozen worker's task was re-attached, never run again; the killed worker's ran again
      // and its first attempt never ended (killed with the worker).
      expect(lines.filter((l) => l.startsWith(`start ${r1} `))).toEqual([`start ${r1} 1`]);
      const ends = lines.filter((l) => l.startsWith(`end ${r3} `));
      expect(ends).toHaveLength(1);
      expect(ends).not.toContain(`end ${r3} 1`);
    }, 240_000);
  });
});
