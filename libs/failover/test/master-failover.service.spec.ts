/**
 * MasterFailoverService with in-memory stand-ins for the registry (live masters, REMOVE events,
 * the lock) and the database (the hand-back's compare-and-set, the same guard as the SQL): who
 * gets taken, what is skipped, and what is left behind when a pass stops half-way.
 */
import { LockTimeoutError, type RegistryEvent, type RegistryLock } from '@porpoise/registry';
import { ManualClock } from '@porpoise/test-harness/manual-clock';
import {
  MasterFailoverService,
  type FailoverRegistry,
  type FailoverRepository,
  type HandBackFence,
  type OwnedInstance,
} from '../src';

const ME = '10.0.0.1:5678';
const B = '10.0.0.2:5678';
const DEAD = '10.0.0.3:5678';
const OTHER_DEAD = '10.0.0.4:5678';

interface Row {
  id: number;
  host: string | null;
  epoch: number;
  final: boolean;
}

/** workflow_instance + command, with handBack's exact guard (id, host, epoch, unfinished). */
class FakeDb implements FailoverRepository {
  rows = new Map<number, Row>();
  commands: Array<{ id: number; instanceId: number }> = [];
  /** Called before each hand-back statement; may throw (a crash) or change the world. */
  beforeHandBack: (fence: HandBackFence, index: number) => void = () => undefined;
  handBacks = 0;

  add(id: number, host: string | null, epoch = 1, final = false): void {
    this.rows.set(id, { id, host, epoch, final });
  }

  async unfinishedOwnedBy(hosts: readonly string[]): Promise<OwnedInstance[]> {
    return this.select((host) => hosts.includes(host));
  }

  async unfinishedNotOwnedBy(hosts: readonly string[]): Promise<OwnedInstance[]> {
    return this.select((host) => !hosts.includes(host));
  }

  async handBack(fence: HandBackFence): Promise<number | undefined> {
    this.beforeHandBack(fence, this.handBacks++);
    const r = this.rows.get(fence.instanceId);
    if (!r || r.final || r.host !== fence.host || r.epoch !== fence.epoch) return undefined;
    r.host = null;
    r.epoch++;
    const id = this.commands.length + 1;
    this.commands.push({ id, instanceId: r.id });
    return id;
  }

  row(id: number): Row {
    const r = this.rows.get(id);
    if (!r) throw new Error(`no instance ${id} in the fake database`);
    return r;
  }

  /** A master's consume of the instance's command: host = master, epoch + 1. */
  consume(id: number, host: string): void {
    const r = this.row(id);
    r.host = host;
    r.epoch++;
  }

  commandsFor(id: number): number {
    return this.commands.filter((c) => c.instanceId === id).length;
  }

  /** Unfinished instances with a host that pred accepts, by id. */
  private select(pred: (host: string) => boolean): OwnedInstance[] {
    const found: OwnedInstance[] = [];
    for (const { id, host, epoch, final } of this.rows.values()) {
      if (!final && host !== null && pred(host)) found.push({ id, host, epoch });
    }
    return found.sort((a, b) => a.id - b.id);
  }
}

class FakeLock implements RegistryLock {
  readonly path = '/lock/failover';
  private readonly controller = new AbortController();
  released = false;
  constructor(private readonly onRelease: () => void) {}
  get lost(): AbortSignal {
    return this.controller.signal;
  }
  loseIt(): void {
    this.controller.abort(new Error('session expired'));
  }
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.onRelease();
  }
}

/** Live masters, REMOVE events and a mutual-exclusion lock shared by every master's service. */
class FakeRegistry {
  live = new Set<string>();
  private readonly listeners = new Set<(e: RegistryEvent) => void>();
  private holder: FakeLock | undefined;
  private readonly waiters: Array<() => void> = [];
  busy = false;
  locks: FakeLock[] = [];
  /** The lock taken last. */
  get lastLock(): FakeLock {
    const lock = this.locks.at(-1);
    if (!lock) throw new Error('no lock was taken');
    return lock;
  }
  /** Called on each children() read (a master may appear between two reads). */
  onChildren: (read: number) => void = () => undefined;
  private reads = 0;

  client(): FailoverRegistry {
    return {
      subscribe: async (_prefix, listener) => {
        this.listeners.add(listener);
        return { unsubscribe: () => this.listeners.delete(listener) };
      },
      children: async () => {
        this.onChildren(++this.reads);
        return [...this.live].sort();
      },
      acquireLock: async (path, options) => {
        if (this.busy) throw new LockTimeoutError(path, options?.timeoutMs ?? 0);
        while (this.holder) await new Promise<void>((r) => this.waiters.push(r));
        const lock = new FakeLock(() => {
          if (this.holder === lock) this.holder = undefined;
          this.waiters.shift()?.();
        });
        this.holder = lock;
        this.locks.push(lock);
        return lock;
      },
    };
  }

  /** A master's key disappears (its session expired); the event carries the key's last value. */
  remove(address: string, value: string | null = '{}'): void {
    this.live.delete(address);
    const event: RegistryEvent = { type: 'REMOVE', key: `/nodes/master/${address}`, value };
    for (const l of [...this.listeners]) l(event);
  }
}

const settle = async () => {
  for (let i = 0; i < 30; i++) await new Promise((r) => setImmediate(r));
};

interface Setup {
  db: FakeDb;
  registry: FakeRegistry;
  clock: ManualClock;
  session: { ok: boolean };
  logs: string[];
  /** porpoise_failover_duration_seconds as the service reports it: [dead master, seconds]. */
  failovers: Array<[string, number]>;
  make(me?: string): MasterFailoverService;
}

function setup(): Setup {
  const db = new FakeDb();
  const registry = new FakeRegistry();
  const clock = new ManualClock();
  const session = { ok: true };
  const logs: string[] = [];
  const failovers: Array<[string, number]> = [];
  return {
    db,
    registry,
    clock,
    session,
    logs,
    failovers,
    make: (me = ME) =>
      new MasterFailoverService(
        registry.client(),
        db,
        clock,
        { canStartWork: () => session.ok },
        { me, sessionTimeoutMs: 3000, random: () => 0.5 },
        { log: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) },
        { failoverCompleted: (dead, seconds) => failovers.push([dead, seconds]) },
      ),
  };
}

describe('MasterFailoverService', () => {
  it('on a REMOVE hands back every unfinished instance of the dead master, one command each, and nothing of live masters', async () => {
    const s = setup();
    s.registry.live = new Set([ME, B, DEAD]);
    s.db.add(1, DEAD, 3);
    s.db.add(2, DEAD, 1);
    s.db.add(3, B, 2);
    s.db.add(5, DEAD, 1, true); // finished: not failed over
    s.db.add(6, null, 2); // waiting for its command already
    const svc = s.make();
    const { startup } = await svc.start();
    expect((await startup).handedBack).toEqual({});
    s.db.add(4, ME, 5); // driven by this master

    const pass = svc.wake('manual');
    s.registry.remove(DEAD);
    const result = await pass;
    await settle();
    expect(s.db.rows.get(1)).toMatchObject({ host: null, epoch: 4 });
    expect(s.db.rows.get(2)).toMatchObject({ host: null, epoch: 2 });
    expect(s.db.rows.get(3)).toMatchObject({ host: B, epoch: 2 });
    expect(s.db.rows.get(5)).toMatchObject({ host: DEAD, epoch: 1 });
    expect(s.db.rows.get(6)).toMatchObject({ host: null, epoch: 2 });
    expect(s.db.rows.get(4)).toMatchObject({ host: ME, epoch: 5 });
    expect(s.db.commands.map((c) => c.instanceId).sort()).toEqual([1, 2]);
    expect(result.outcome).toBe('done');
    expect(s.registry.locks.every((l) => l.released)).toBe(true);
    expect(s.logs.join('\n')).toMatch(/handed 2 instance\(s\) back for recovery \(2 of 10\.0\.0\.3:5678\)/);
    await svc.stop();
  });

  it('at start-up hands back what an earlier process on this address left, never what a live master drives', async () => {
    const s = setup();
    s.registry.live = new Set([ME, B]);
    s.db.add(1, ME, 4); // left by the previous process on ME's address
    s.db.add(2, B, 1); // B is alive
    s.db.add(3, DEAD, 2); // nobody's (DEAD is not registered)
    const svc = s.make();
    const { startup } = await svc.start();
    // ME's consumer takes a command after start() returned: that instance is ME's now.
    s.db.add(4, ME, 1);
    const result = await startup;
    expect(result.handedBack).toEqual({ [ME]: 1, [DEAD]: 1 });
    expect(s.db.rows.get(1)).toMatchObject({ host: null, epoch: 5 });
    expect(s.db.rows.get(2)).toMatchObject({ host: B, epoch: 1 });
    expect(s.db.rows.get(3)).toMatchObject({ host: null, epoch: 3 });
    expect(s.db.rows.get(4)).toMatchObject({ host: ME, epoch: 1 });
    expect(svc.stats.selfOrphansLeft).toBe(0);
    // Later passes never touch this master's own instances.
    expect((await svc.wake('again')).handedBack).toEqual({});
    expect(s.db.rows.get(4)).toMatchObject({ host: ME, epoch: 1 });
    await svc.stop();
  });

  it('skips a host that registers between the database read and the second listing (it consumed, so it is live)', async () => {
    const s = setup();
    s.registry.live = new Set([ME]);
    const NEW = '10.0.0.9:5678';
    s.db.add(1, DEAD, 1);
    s.db.add(2, NEW, 1);
    const svc = s.make();
    // First listing: NEW not there yet; it registers and consumes before the second one.
    s.registry.onChildren = (read) => {
      if (read === 2) s.registry.live.add(NEW);
    };
    const { startup } = await svc.start();
    const result = await startup;
    expect(result.handedBack).toEqual({ [DEAD]: 1 });
    expect(result.skippedLive).toBe(1);
    expect(s.db.rows.get(2)).toMatchObject({ host: NEW, epoch: 1 });
    await svc.stop();
  });

  it('skips a dead master that re-appears (restarted on the same address) before the pass', async () => {
    const s = setup();
    s.registry.live = new Set([ME, DEAD]);
    s.db.add(1, DEAD, 1);
    const svc = s.make();
    await (
      await svc.start()
    ).startup;
    s.registry.remove(DEAD);
    s.registry.live.add(DEAD); // back already when the pass lists the masters
    await settle();
    const result = await svc.wake('check');
    expect(result.handedBack).toEqual({});
    expect(s.db.rows.get(1)).toMatchObject({ host: DEAD, epoch: 1 });
    expect(s.db.commands).toHaveLength(0);
    await svc.stop();
  });

  it('stops at once when the lock is lost half-way; the rest stays on the dead host and the next pass takes it', async () => {
    const s = setup();
    s.registry.live = new Set([ME]);
    for (let id = 1; id <= 5; id++) s.db.add(id, DEAD, 1);
    const svc = s.make();
    s.db.beforeHandBack = (_f, index) => {
      if (index === 2) s.registry.lastLock.loseIt(); // the session died during the 3rd statement
    };
    const first = await (await svc.start()).startup;
    expect(first.outcome).toBe('lock-lost');
    expect(first.handedBack).toEqual({ [DEAD]: 3 });
    expect(first.notReached).toBe(2);
    expect([...s.db.rows.values()].map((r) => r.host)).toEqual([null, null, null, DEAD, DEAD]);
    s.db.beforeHandBack = () => undefined;
    const second = await svc.wake('sweep');
    expect(second.handedBack).toEqual({ [DEAD]: 2 });
    for (let id = 1; id <= 5; id++) expect(s.db.commandsFor(id)).toBe(1);
    expect(s.logs.join('\n')).toMatch(/pass ended: lock-lost/);
    await svc.stop();
  });

  it('a winner that crashes half-way leaves each instance untouched or handed back with its command; another master finishes', async () => {
    const s = setup();
    s.registry.live = new Set([ME, B]);
    for (let id = 1; id <= 4; id++) s.db.add(id, DEAD, 7);
    const winner = s.make(ME);
    s.db.beforeHandBack = (_f, index) => {
      if (index === 2) throw new Error('connection terminated'); // the process dies here
    };
    const crashed = await (await winner.start()).startup;
    expect(crashed.outcome).toBe('error');
    expect(s.registry.lastLock.released).toBe(true);
    // Handed back with a command, or still on the dead host: nothing in between.
    for (const r of s.db.rows.values()) {
      if (r.host === null) expect(s.db.commandsFor(r.id)).toBe(1);
      else expect(r).toMatchObject({ host: DEAD, epoch: 7 });
      if (r.host !== null) expect(s.db.commandsFor(r.id)).toBe(0);
    }
    await winner.stop();
    // The winner is gone; B's REMOVE handler takes what is left.
    s.db.beforeHandBack = () => undefined;
    s.registry.live.delete(ME);
    const b = s.make(B);
    await (
      await b.start()
    ).startup;
    for (let id = 1; id <= 4; id++) {
      expect(s.db.rows.get(id)).toMatchObject({ host: null, epoch: 8 });
      expect(s.db.commandsFor(id)).toBe(1);
    }
    await b.stop();
  });

  it('two masters racing for the same dead master produce exactly one command per instance', async () => {
    const s = setup();
    s.registry.live = new Set([ME, B, DEAD]);
    for (let id = 1; id <= 20; id++) s.db.add(id, DEAD, 1);
    const a = s.make(ME);
    const b = s.make(B);
    await (
      await a.start()
    ).startup;
    await (
      await b.start()
    ).startup;
    const passA = a.wake('race');
    const passB = b.wake('race');
    s.registry.remove(DEAD);
    const results = await Promise.all([passA, passB]);
    await settle();
    await Promise.all([a.wake('after'), b.wake('after')]);
    for (let id = 1; id <= 20; id++) expect(s.db.commandsFor(id)).toBe(1);
    const total = results.reduce((n, r) => n + (r.handedBack[DEAD] ?? 0), 0);
    expect(total).toBe(20);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('does nothing while the session is suspended or when the lock stays busy', async () => {
    const s = setup();
    s.registry.live = new Set([ME]);
    s.db.add(1, DEAD, 1);
    s.session.ok = false;
    const svc = s.make();
    expect((await (await svc.start()).startup).outcome).toBe('suspended');
    s.session.ok = true;
    s.registry.busy = true;
    expect((await svc.wake('busy')).outcome).toBe('lock-busy');
    expect(s.db.rows.get(1)).toMatchObject({ host: DEAD, epoch: 1 });
    s.registry.busy = false;
    expect((await svc.wake('free')).handedBack).toEqual({ [DEAD]: 1 });
    await svc.stop();
  });

  it('ignores the REMOVE of its own key and of keys that are not masters', async () => {
    const s = setup();
    s.registry.live = new Set([ME]);
    s.db.add(1, ME, 1);
    const svc = s.make();
    const started = await svc.start();
    await started.startup; // hands back instance 1 (an earlier process's)
    s.db.add(2, ME, 1); // driven by this process now
    const passes = svc.stats.passes;
    s.registry.remove(ME);
    s.registry.remove(`${DEAD}/not-a-master-key`);
    await settle();
    expect(svc.stats.passes).toBe(passes);
    expect(s.db.rows.get(2)).toMatchObject({ host: ME, epoch: 1 });
    await svc.stop();
  });

  it('sweeps periodically (jittered around 2 × the session timeout) and takes instances of hosts that vanished unseen', async () => {
    const s = setup();
    s.registry.live = new Set([ME, DEAD]);
    s.db.add(1, DEAD, 2);
    const svc = s.make();
    await (
      await svc.start()
    ).startup;
    // DEAD's key is gone but no REMOVE reached us (a missed event).
    s.registry.live.delete(DEAD);
    s.clock.advance(5999);
    await settle();
    expect(s.db.rows.get(1)).toMatchObject({ host: DEAD });
    s.clock.advance(1);
    await settle();
    expect(s.db.rows.get(1)).toMatchObject({ host: null, epoch: 3 });
    // The next sweep is scheduled again.
    expect(s.clock.pending).toBe(1);
    await svc.stop();
    expect(s.clock.pending).toBe(0);
  });

  it('coalesces REMOVE bursts into one pass queued behind the running one', async () => {
    const s = setup();
    s.registry.live = new Set([ME, DEAD, OTHER_DEAD]);
    s.db.add(1, DEAD, 1);
    s.db.add(2, OTHER_DEAD, 1);
    const svc = s.make();
    await (
      await svc.start()
    ).startup;
    const before = svc.stats.passes;
    s.registry.remove(DEAD);
    s.registry.remove(OTHER_DEAD);
    s.registry.remove(DEAD);
    await settle();
    await svc.wake('drain');
    expect(svc.stats.passes - before).toBeLessThanOrEqual(3);
    expect(s.db.commands.map((c) => c.instanceId).sort()).toEqual([1, 2]);
    await svc.stop();
  });

  it('a pass that gets the lock after stop() releases it at once and changes nothing', async () => {
    const s = setup();
    s.registry.live = new Set([ME]);
    s.db.add(1, DEAD, 1);
    const svc = s.make();
    // Someone else holds the lock while we start.
    const other = await s.registry.client().acquireLock('/lock/failover');
    const { startup } = await svc.start();
    await svc.stop();
    await other.release();
    expect((await startup).outcome).toBe('stopped');
    expect(s.db.rows.get(1)).toMatchObject({ host: DEAD, epoch: 1 });
    expect(s.registry.locks.every((l) => l.released)).toBe(true);
  });

  it('an instance consumed by a live master between the read and the hand-back is not taken (compare on epoch)', async () => {
    const s = setup();
    s.registry.live = new Set([ME, B]);
    s.db.add(1, DEAD, 1);
    s.db.add(2, DEAD, 1);
    const svc = s.make();
    s.db.beforeHandBack = (fence) => {
      // Instance 2 was handed back by someone else and consumed by B meanwhile.
      if (fence.instanceId === 2) {
        s.db.row(2).host = null;
        s.db.row(2).epoch = 2;
        s.db.consume(2, B);
      }
    };
    const result = await (await svc.start()).startup;
    expect(result.handedBack).toEqual({ [DEAD]: 1 });
    expect(result.alreadyTaken).toBe(1);
    expect(s.db.rows.get(2)).toMatchObject({ host: B, epoch: 3 });
    expect(s.db.commandsFor(2)).toBe(0);
    await svc.stop();
  });
  it('reports each failover it completes, from the dead master’s last heartbeat to the commands written, once', async () => {
    const s = setup();
    s.clock.advance(100_000);
    s.registry.live = new Set([ME, B, DEAD, OTHER_DEAD]);
    s.db.add(1, DEAD, 1);
    s.db.add(2, DEAD, 1);
    const svc = s.make();
    await (
      await svc.start()
    ).startup;
    expect(s.failovers).toEqual([]);

    // DEAD's last heartbeat was 2.5 s into the second below; the REMOVE comes 7.5 s later.
    s.clock.advance(10_000);
    s.registry.remove(DEAD, JSON.stringify({ host: '10.0.0.3', port: 5678, heartbeatTime: 102_500 }));
    await svc.idle();
    expect(s.db.commands).toHaveLength(2);
    expect(s.failovers).toEqual([[DEAD, 7.5]]);

    // A master that drove nothing: nothing failed over, nothing reported, now or later.
    s.registry.remove(OTHER_DEAD, '{"heartbeatTime": "not a number"}');
    await svc.idle();
    expect((await svc.wake('sweep')).outcome).toBe('done');
    expect(s.failovers).toHaveLength(1);

    // No plausible heartbeat (a clock ahead of ours, or no value): counted from the REMOVE itself.
    s.registry.live.add('10.0.0.5:5678');
    s.db.add(3, '10.0.0.5:5678', 1);
    s.registry.remove('10.0.0.5:5678', JSON.stringify({ heartbeatTime: s.clock.now() + 60_000 }));
    await svc.idle();
    expect(s.failovers.at(-1)).toEqual(['10.0.0.5:5678', 0]);

    // Another master holds the lock and does the work: this one reports nothing, then forgets it.
    s.registry.live.add(B);
    s.db.add(4, B, 1);
    s.registry.busy = true;
    s.registry.remove(B, null);
    await svc.idle();
    expect(await s.db.handBack({ instanceId: 4, host: B, epoch: 1 })).toBeDefined();
    s.registry.busy = false;
    expect((await svc.wake('sweep')).outcome).toBe('done');
    expect(s.failovers).toHaveLength(2);
    await svc.stop();
  });
});
