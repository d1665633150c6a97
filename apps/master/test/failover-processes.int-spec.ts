/**
 * Master failover, fencing and graceful hand-over with every node a real process from the built
 * code (`npm run build` first): masters and a worker on a real Postgres and a real ZooKeeper
 * (2.5 s sessions). Tasks are shell commands that append start and end lines to a witness file,
 * so a task run twice shows up there. Rows are written the way the API server writes them.
 * Nothing here asserts timings (every wait is bounded); the kill → takeover times are printed.
 */
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMigrations } from '@porpoise/dao';
import { createRegistry, type Registry } from '@porpoise/registry';
import { startPostgres, startZooKeeper, stopProcess, waitFor, type TestServer } from '@porpoise/test-harness';
import { startNode, type NodeProcess } from '../../../test/e2e/cluster-processes';
import { Db } from './support/db';
import { task } from './support/tasks';

const SECRET = 'failover-processes-secret-0123456789';
const SESSION_TIMEOUT_MS = 2500;
const FINAL = ['SUCCESS', 'FAILURE', 'STOP', 'PAUSE'];

interface Node {
  readonly node: NodeProcess;
  readonly address: string;
  /** Everything the process printed (startNode keeps only a tail). */
  log(): string;
}

describe('master failover with master and worker processes (Postgres, ZooKeeper)', () => {
  let pg: TestServer;
  let zk: TestServer;
  let registry: Registry;
  let db: Db;
  let scratch = '';
  let witness = '';
  let code = '';
  const nodes: Node[] = [];
  const timings: string[] = [];

  const env = () => ({
    DATABASE_URL: pg.endpoint,
    REGISTRY_TYPE: 'zookeeper',
    ZOOKEEPER_CONNECT: zk.endpoint,
    CLUSTER_SECRET: SECRET,
    REGISTRY_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS),
    HEARTBEAT_INTERVAL_MS: '500',
    NO_COLOR: '1',
  });

  const liveMasters = () => registry.children('/nodes/master');

  const start = async (role: 'master' | 'worker'): Promise<Node> => {
    const node = await startNode(role, env(), async (port) =>
      role === 'master'
        ? (await liveMasters()).includes(`127.0.0.1:${port}`)
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

  /** Triggers n runs and waits until task `a` of each runs on the worker. */
  const startRuns = async (n: number) => {
    const ids = await Promise.all(Array.from({ length: n }, () => db.trigger(code)));
    for (const id of ids) await db.waitForTask(id, 'a', 'RUNNING_EXECUTION');
    return ids;
  };

  const instances = async (ids: number[]) =>
    (
      await db.pool.query<{
        id: string;
        host: string | null;
        epoch: string;
        state: string;
        command_type: string;
      }>(
        `SELECT id, host, epoch, state, command_type FROM workflow_instance WHERE id = ANY($1::bigint[]) ORDER BY id`,
        [ids],
      )
    ).rows.map((r) => ({ ...r, id: Number(r.id), epoch: Number(r.epoch) }));

  const allFinished = (ids: number[]) =>
    waitFor(
      `instances ${ids.join(', ')} to finish`,
      async () => {
        const rows = await instances(ids);
        return rows.every((r) => FINAL.includes(r.state)) ? rows : undefined;
      },
      90_000,
      200,
    );

  /**
   * From the witness file: every task of these runs started exactly once (one start line per
   * task and attempt, and only one attempt ever started), and ended.
   */
  const expectEachTaskRanOnce = (ids: number[]) => {
    const lines = readFileSync(witness, 'utf8').trim().split('\n');
    for (const id of ids) {
      for (const name of ['a', 'b']) {
        const starts = lines.filter((l) => l.startsWith(`start ${name} ${id} `));
        const ends = lines.filter((l) => l.startsWith(`end ${name} ${id} `));
        expect({ id, name, starts: starts.length }).toEqual({ id, name, starts: 1 });
        expect({ id, name, ends: ends.length }).toEqual({ id, name, ends: 1 });
      }
    }
  };

  beforeAll(async () => {
    [pg, zk] = await Promise.all([startPostgres(), startZooKeeper()]);
    registry = createRegistry({ type: 'zookeeper', connect: zk.endpoint, sessionTimeoutMs: 10_000 });
    await registry.start();
    db = new Db(pg.endpoint);
    scratch = mkdtempSync(join(tmpdir(), 'porpoise-failover-'));
    witness = join(scratch, 'witness.txt');
    await runMigrations(pg.endpoint);
    await start('worker');
    const line = (what: string) =>
      `echo "${what} $PORPOISE_TASK_NAME $PORPOISE_WORKFLOW_INSTANCE_ID $PORPOISE_TASK_INSTANCE_ID $PORPOISE_ATTEMPT" >> ${witness}`;
    code = await db.createWorkflow(
      [
        task('a', { command: `${line('start')}; sleep 5; ${line('end')}` }),
        task('b', { command: `${line('start')}; sleep 1; ${line('end')}` }),
      ],
      [{ from: 'a', to: 'b' }],
    );
  });

  afterAll(async () => {
    for (const n of nodes) {
      try {
        n.node.child.kill('SIGCONT');
      } catch {
        // already gone
      }
    }
    await Promise.all(nodes.map((n) => stopProcess(n.node.child, 'SIGTERM', 15_000)));
    await registry?.close();
    await db?.close();
    await Promise.all([pg?.dispose(), zk?.dispose()]);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    for (const n of nodes) rmSync(n.node.dataDir, { recursive: true, force: true });
    // Informal numbers for the report (not asserted).
    if (timings.length > 0) console.log(`failover timings:\n${timings.join('\n')}`);
  });

  let a: Node;
  let b: Node;

  it('a master started beside a live one takes none of its instances; a SIGKILLed master’s instances are taken over, finish, and no running task runs twice', async () => {
    a = await start('master');
    const ids = await startRuns(3);
    const before = await instances(ids);
    expect(before.every((r) => r.host === a.address)).toBe(true);

    b = await start('master');
    await waitFor('B’s start-up failover pass', () => /failover \(start-up/.test(b.log()), 30_000);
    // A is alive: B's start-up pass took nothing of it.
    expect(await instances(ids)).toEqual(before);

    const killedAt = Date.now();
    await kill(a, 'SIGKILL');
    await waitFor(
      'B to take A’s instances over',
      async () => (await instances(ids)).every((r) => r.host === b.address),
      60_000,
      50,
    );
    timings.push(
      `SIGKILL master → its ${ids.length} instances owned by another: ${Date.now() - killedAt} ms`,
    );

    const done = await allFinished(ids);
    for (const r of done) {
      const was = before.find((x) => x.id === r.id)!;
      expect(r).toMatchObject({
        state: 'SUCCESS',
        host: b.address,
        command_type: 'RECOVER_TOLERANCE_FAULT_PROCESS',
      });
      // One hand-back (+1) and one consume (+1).
      expect(r.epoch).toBe(was.epoch + 2);
    }
    expect(b.log()).toMatch(
      new RegExp(`failover \\(master ${a.address} gone.*handed 3 instance\\(s\\) back`),
    );
    // B timed that failover (porpoise_failover_duration_seconds, DESIGN.md section 12).
    const metrics = await (await fetch(`http://127.0.0.1:${b.node.metricsPort}/metrics`)).text();
    const count = /^porpoise_failover_duration_seconds_count (\d+)$/m.exec(metrics);
    expect(Number(count?.[1])).toBe(1);
    expectEachTaskRanOnce(ids);
    for (const id of ids) {
      expect((await db.tasks(id)).map((t) => [t.name, t.attempt, t.state])).toEqual([
        ['a', 1, 'SUCCESS'],
        ['b', 1, 'SUCCESS'],
      ]);
    }
  });

  it('with every master killed, the first master to start recovers all instances (start-up failover)', async () => {
    const ids = await startRuns(3);
    expect((await instances(ids)).every((r) => r.host === b.address)).toBe(true);
    await kill(b, 'SIGKILL');
    // No master at all until B's session has expired and its key is gone: no REMOVE handler
    // can be the one that recovers them.
    await waitFor('B’s key to expire', async () => (await liveMasters()).length === 0, 30_000, 100);
    const c = await start('master');
    const done = await allFinished(ids);
    for (const r of done) expect(r).toMatchObject({ state: 'SUCCESS', host: c.address });
    expect(c.log()).toMatch(
      new RegExp(
        `failover \\(start-up\\): handed 3 instance\\(s\\) back for recovery \\(3 of ${b.address}\\)`,
      ),
    );
    expectEachTaskRanOnce(ids);
    a = c; // the master left alive for the next test
  });

  it('a master frozen (SIGSTOP) past the session timeout is fenced: its instances are taken over and after SIGCONT it drives none of them', async () => {
    const c = a;
    const d = await start('master');
    await waitFor('C to see D', () => c.log().includes(d.address), 20_000);
    const ids = await startRuns(4);
    const owned = await instances(ids);
    const counts = new Map<string, number>();
    for (const r of owned) counts.set(r.host!, (counts.get(r.host!) ?? 0) + 1);
    const victim = (counts.get(c.address) ?? 0) >= (counts.get(d.address) ?? 0) ? c : d;
    const survivor = victim === c ? d : c;
    const victims = owned.filter((r) => r.host === victim.address);
    const victimIds = victims.map((r) => r.id);
    expect(victimIds.length).toBeGreaterThan(0);

    const frozenAt = Date.now();
    let mark = 0;
    victim.node.child.kill('SIGSTOP');
    try {
      await waitFor(
        'the survivor to take the frozen master’s instances over',
        async () => (await instances(victimIds)).every((r) => r.host === survivor.address),
        60_000,
        50,
      );
      timings.push(
        `SIGSTOP master → its ${victimIds.length} instance(s) owned by another: ${Date.now() - frozenAt} ms`,
      );
    } finally {
      mark = victim.log().length;
      victim.node.child.kill('SIGCONT');
    }

    const done = await allFinished(ids);
    expect(done.every((r) => r.state === 'SUCCESS')).toBe(true);
    for (const r of done.filter((x) => victimIds.includes(x.id))) {
      const was = victims.find((x) => x.id === r.id)!;
      expect(r.host).toBe(survivor.address);
      expect(r.epoch).toBe(was.epoch + 2);
    }
    expectEachTaskRanOnce(ids);
    // The woken master let go of each instance (session lost, or a refused write) and did not
    // record anything for them afterwards.
    await waitFor(
      'the woken master to let go of every instance',
      () =>
        victimIds.every((id) => victim.log().slice(mark).includes(`instance ${id}: no longer driven here`)),
      30_000,
    );
    const after = victim.log().slice(mark);
    for (const id of victimIds) {
      expect(after).not.toMatch(new RegExp(`instance ${id}: (task |finished|adopted)`));
    }
    // It is a live master again (a new session) and takes new work.
    await waitFor(
      'the woken master to register again',
      async () => (await liveMasters()).includes(victim.address),
      30_000,
    );
    a = victim;
    b = survivor;
  });

  it('SIGTERM hands a master’s instances over at once: recovery commands, no duplicate task run, registry key gone on exit', async () => {
    const ids = await startRuns(4);
    const owned = await instances(ids);
    const onA = owned.filter((r) => r.host === a.address).length;
    const onB = owned.filter((r) => r.host === b.address).length;
    const [leaving, staying] = onA >= onB ? [a, b] : [b, a];
    const handed = owned.filter((r) => r.host === leaving.address);
    const handedIds = handed.map((r) => r.id);
    expect(handedIds.length).toBeGreaterThan(0);

    const stoppedAt = Date.now();
    await kill(leaving, 'SIGTERM');
    expect(leaving.node.child.exitCode).toBe(0);
    // Deregistered on the way out (not left to the session timeout).
    expect(await liveMasters()).not.toContain(leaving.address);
    expect(leaving.log()).toContain(`handed ${handedIds.length} instance(s) over for recovery`);
    await waitFor(
      'the staying master to own them',
      async () => (await instances(handedIds)).every((r) => r.host === staying.address),
      60_000,
      50,
    );
    timings.push(
      `SIGTERM master → its ${handedIds.length} instance(s) owned by another: ${Date.now() - stoppedAt} ms`,
    );

    const done = await allFinished(ids);
    expect(done.every((r) => r.state === 'SUCCESS')).toBe(true);
    for (const r of done.filter((x) => handedIds.includes(x.id))) {
      const was = handed.find((x) => x.id === r.id)!;
      expect(r).toMatchObject({ host: staying.address, command_type: 'RECOVER_TOLERANCE_FAULT_PROCESS' });
      expect(r.epoch).toBe(was.epoch + 2);
    }
    expectEachTaskRanOnce(ids);
  });
});
