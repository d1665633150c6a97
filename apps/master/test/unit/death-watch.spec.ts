import type { Registry } from '@porpoise/registry';
import { ManualClock } from '@porpoise/test-harness';
import { DeathWatchService } from '../../src/registry/death-watch.service';
import type { MasterMembershipService } from '../../src/registry/master-membership.service';
import type { LiveNode } from '../../src/registry/node-directory';
import { PortProber } from '../../src/registry/port-prober';
import type { ProbeOutcome } from '../../src/registry/provable-death';
import type { SessionStateService } from '../../src/registry/session-state.service';
import type { WorkerDirectoryService } from '../../src/registry/worker-directory.service';
import { DEFAULT_MASTER_OPTIONS, type MasterIdentity } from '../../src/master.constants';

const INTERVAL = 200;
const CONFIRM = 100;

/** A prober that answers from a script, one outcome per probe of an address, and counts probes. */
class ScriptedProber extends PortProber {
  readonly probes: string[] = [];
  /** Outcomes still to give per "host:port"; when empty, 'accepted'. */
  readonly script = new Map<string, ProbeOutcome[]>();
  /** Probes held open until the test releases them. */
  hold = false;
  readonly held: Array<() => void> = [];

  probe(host: string, port: number): Promise<ProbeOutcome> {
    const address = `${host}:${port}`;
    this.probes.push(address);
    const outcome = this.script.get(address)?.shift() ?? 'accepted';
    if (!this.hold) return Promise.resolve(outcome);
    return new Promise((resolve) => this.held.push(() => resolve(outcome)));
  }
}

const worker = (port: number, startTime = 1000, serving = true): LiveNode => ({
  key: `/nodes/worker/127.0.0.1:${port}`,
  address: `127.0.0.1:${port}`,
  heartbeat: {
    host: '127.0.0.1',
    port,
    startTime,
    heartbeatTime: startTime,
    cpuUsage: 0,
    memoryUsage: 0,
    loadAverage: 0,
    serving,
  },
});

/** Lets the service's promise chains (probe → sleep → probe → registry read) run. */
const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

function setUp(nodes: LiveNode[]) {
  const clock = new ManualClock(0);
  const prober = new ScriptedProber();
  const entries = new Map(nodes.map((n) => [n.key, JSON.stringify(n.heartbeat)]));
  const deleted: string[] = [];
  const registry = {
    get: (key: string) => Promise.resolve(entries.get(key) ?? null),
    delete: (key: string) => {
      deleted.push(key);
      entries.delete(key);
      return Promise.resolve();
    },
  } as unknown as Registry;
  let connected = true;
  const session = { canStartWork: () => connected } as unknown as SessionStateService;
  const masters = { entries: () => [] } as unknown as MasterMembershipService;
  const workers = {
    entries: () => nodes.filter((n) => entries.has(n.key)),
  } as unknown as WorkerDirectoryService;
  const identity: MasterIdentity = { host: '127.0.0.1', port: 5678, address: '127.0.0.1:5678' };
  const watch = new DeathWatchService(registry, masters, workers, session, identity, prober, clock, {
    ...DEFAULT_MASTER_OPTIONS,
    deathProbeIntervalMs: INTERVAL,
    deathConfirmMs: CONFIRM,
  });
  return {
    clock,
    prober,
    deleted,
    entries,
    watch,
    disconnect: () => (connected = false),
  };
}

describe('DeathWatchService (its loop driven by a manual clock)', () => {
  it('removes the entry of a worker whose port refused twice a confirmation interval apart', async () => {
    const t = setUp([worker(1234), worker(1235)]);
    t.prober.script.set('127.0.0.1:1234', ['refused', 'refused']);
    t.watch.start();
    t.clock.advance(INTERVAL);
    await settle();
    // First round: both probed once; the refusing one waits for its confirmation.
    expect(t.prober.probes.sort()).toEqual(['127.0.0.1:1234', '127.0.0.1:1235']);
    expect(t.deleted).toEqual([]);
    t.clock.advance(CONFIRM + 5);
    await settle();
    expect(t.deleted).toEqual(['/nodes/worker/127.0.0.1:1234']);
    t.watch.stop();
  });

  it('spares a worker whose port refused once and then accepted', async () => {
    const t = setUp([worker(1234)]);
    t.prober.script.set('127.0.0.1:1234', ['refused', 'accepted']);
    t.watch.start();
    t.clock.advance(INTERVAL);
    await settle();
    t.clock.advance(CONFIRM + 5);
    await settle();
    expect(t.prober.probes).toEqual(['127.0.0.1:1234', '127.0.0.1:1234']);
    expect(t.deleted).toEqual([]);
    t.watch.stop();
  });

  it('spares a worker whose entry changed start time between the probes (a new process)', async () => {
    const t = setUp([worker(1234, 1000)]);
    t.prober.script.set('127.0.0.1:1234', ['refused', 'refused']);
    t.watch.start();
    t.clock.advance(INTERVAL);
    await settle();
    t.entries.set(worker(1234).key, JSON.stringify(worker(1234, 2000).heartbeat));
    t.clock.advance(CONFIRM + 5);
    await settle();
    expect(t.deleted).toEqual([]);
    t.watch.stop();
  });

  it('probes nothing while its session is not connected', async () => {
    const t = setUp([worker(1234)]);
    t.prober.script.set('127.0.0.1:1234', ['refused', 'refused']);
    t.disconnect();
    t.watch.start();
    t.clock.advance(INTERVAL * 5);
    await settle();
    expect(t.prober.probes).toEqual([]);
    expect(t.deleted).toEqual([]);
    t.watch.stop();
  });

  it('does not probe a node again while its last probe is still out', async () => {
    const t = setUp([worker(1234)]);
    t.prober.hold = true;
    t.watch.start();
    t.clock.advance(INTERVAL * 5);
    await settle();
    expect(t.prober.probes).toEqual(['127.0.0.1:1234']);
    t.prober.held.splice(0).forEach((release) => release());
    await settle();
    t.clock.advance(INTERVAL);
    await settle();
    expect(t.prober.probes).toEqual(['127.0.0.1:1234', '127.0.0.1:1234']);
    t.watch.stop();
  });

  it('sets no timer once stopped', async () => {
    const t = setUp([worker(1234)]);
    t.watch.start();
    t.clock.advance(INTERVAL);
    await settle();
    t.watch.stop();
    expect(t.clock.pending).toBe(0);
    const before = t.prober.probes.length;
    t.clock.advance(INTERVAL * 5);
    await settle();
    expect(t.prober.probes).toHaveLength(before);
  });
});
