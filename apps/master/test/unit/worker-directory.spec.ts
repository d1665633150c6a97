import type { Registry, RegistryEvent, RegistryListener, Subscription } from '@porpoise/registry';
import { DEFAULT_MASTER_OPTIONS } from '../../src/master.constants';
import { ManualClock } from '@porpoise/test-harness';
import { UNREACHABLE_FIRST_MS, WorkerDirectoryService } from '../../src/registry/worker-directory.service';

const KEY = '/nodes/worker/default/10.0.0.5:1234';
const beat = (startTime: number, runningTasks = 0, registration?: number) =>
  JSON.stringify({
    registration,
    host: '10.0.0.5',
    port: 1234,
    startTime,
    heartbeatTime: startTime + 1,
    cpuUsage: 0.1,
    memoryUsage: 0.2,
    loadAverage: 0.3,
    group: 'default',
    runningTasks,
    capacity: 4,
    serving: true,
  });

/** Only what the directory uses: one subscription fed by hand, and an empty listing. */
class FakeRegistry {
  listener: RegistryListener | undefined;
  subscribe = async (_prefix: string, listener: RegistryListener): Promise<Subscription> => {
    this.listener = listener;
    return { unsubscribe: () => undefined };
  };
  children = async (): Promise<string[]> => [];
  get = async (): Promise<string | null> => null;
  emit(event: RegistryEvent): void {
    this.listener!(event);
  }
}

describe('WorkerDirectoryService', () => {
  it('reports a worker process as gone when its key goes, or when another process takes its key over', async () => {
    const registry = new FakeRegistry();
    const directory = new WorkerDirectoryService(registry as unknown as Registry, DEFAULT_MASTER_OPTIONS);
    const removed: Array<[string, string | undefined, number | undefined, number | undefined]> = [];
    directory.addListener({
      available: () => undefined,
      removed: (address, group, startTime, registration) =>
        removed.push([address, group, startTime, registration]),
    });
    await directory.start();

    registry.emit({ type: 'ADD', key: KEY, value: beat(1_000) });
    registry.emit({ type: 'UPDATE', key: KEY, value: beat(1_000) });
    expect(removed).toEqual([]);
    // A new process re-created the key before the old one's removal was seen.
    registry.emit({ type: 'UPDATE', key: KEY, value: beat(2_000) });
    expect(removed).toEqual([['10.0.0.5:1234', 'default', 1_000, undefined]]);
    expect(directory.isLive('10.0.0.5:1234')).toBe(true);
    registry.emit({ type: 'REMOVE', key: KEY, value: null });
    expect(removed).toEqual([
      ['10.0.0.5:1234', 'default', 1_000, undefined],
      ['10.0.0.5:1234', 'default', 2_000, undefined],
    ]);
    expect(directory.isLive('10.0.0.5:1234')).toBe(false);
    directory.stop();
  });

  it('does not pick a worker it believes full, frees a slot on its TaskFinished, and starts over at its heartbeat', async () => {
    const registry = new FakeRegistry();
    const directory = new WorkerDirectoryService(registry as unknown as Registry, DEFAULT_MASTER_OPTIONS);
    const available: string[] = [];
    directory.addListener({ available: (g) => available.push(g), removed: () => undefined });
    await directory.start();
    const none = new Set<string>();
    registry.emit({ type: 'ADD', key: KEY, value: beat(1_000, 1) });
    available.length = 0;

    // Capacity 4, one running: three picks fit (each counted at once, answered or not).
    expect([1, 2, 3].map(() => directory.pick('default', none))).toEqual([
      '10.0.0.5:1234',
      '10.0.0.5:1234',
      '10.0.0.5:1234',
    ]);
    expect(directory.pick('default', none)).toBeUndefined();
    // Accepted: still counted, now as assigned.
    directory.noteAssigned('10.0.0.5:1234');
    expect(directory.pick('default', none)).toBeUndefined();

    // One of its tasks finished here: a slot is free, and the waiting runs are told.
    directory.noteFinished('10.0.0.5:1234');
    expect(available).toEqual(['default']);
    expect(directory.pick('default', none)).toBe('10.0.0.5:1234');
    expect(directory.pick('default', none)).toBeUndefined();

    // The heartbeat is the truth again: 2 running of 4.
    registry.emit({ type: 'UPDATE', key: KEY, value: beat(1_000, 2) });
    // Tasks sent since the heartbeat that finished (EMPTY ones end at once) free their slots too:
    // a burst never piles up as "assigned" until the next heartbeat.
    for (let i = 0; i < 10; i++) {
      const again = directory.pick('default', none);
      expect(again).toBe('10.0.0.5:1234');
      directory.noteAssigned('10.0.0.5:1234');
      directory.noteFinished('10.0.0.5:1234');
    }
    expect([
      directory.pick('default', none),
      directory.pick('default', none),
      directory.pick('default', none),
    ]).toEqual(['10.0.0.5:1234', '10.0.0.5:1234', undefined]);
    // A finish from a worker that is not live changes nothing.
    available.length = 0;
    directory.noteFinished('10.9.9.9:1');
    expect(available).toEqual([]);
    directory.stop();
  });

  it('reports a registration as gone when the same process registers anew, and names it on removal', async () => {
    const registry = new FakeRegistry();
    const directory = new WorkerDirectoryService(registry as unknown as Registry, DEFAULT_MASTER_OPTIONS);
    const removed: Array<[number | undefined, number | undefined]> = [];
    directory.addListener({
      available: () => undefined,
      removed: (_address, _group, startTime, registration) => removed.push([startTime, registration]),
    });
    await directory.start();
    registry.emit({ type: 'ADD', key: KEY, value: beat(1_000, 0, 1) });
    registry.emit({ type: 'UPDATE', key: KEY, value: beat(1_000, 3, 1) });
    expect(removed).toEqual([]);
    // Its session was lost (or it stalled) and it registered again: registration 1 is gone.
    registry.emit({ type: 'UPDATE', key: KEY, value: beat(1_000, 0, 2) });
    expect(removed).toEqual([[1_000, 1]]);
    expect(directory.addressee('10.0.0.5:1234')).toEqual({ startTimeMs: 1_000, registration: 2 });
    registry.emit({ type: 'REMOVE', key: KEY, value: null });
    expect(removed).toEqual([
      [1_000, 1],
      [1_000, 2],
    ]);
    directory.stop();
  });
});

describe('WorkerDirectoryService: workers that do not answer a Dispatch', () => {
  const beatOf = (host: string, startTime: number) =>
    JSON.stringify({ ...(JSON.parse(beat(startTime)) as object), host });
  const keyOf = (host: string) => `/nodes/worker/default/${host}:1234`;

  async function twoWorkers() {
    const registry = new FakeRegistry();
    const clock = new ManualClock(1_000_000);
    const directory = new WorkerDirectoryService(
      registry as unknown as Registry,
      DEFAULT_MASTER_OPTIONS,
      clock,
    );
    await directory.start();
    registry.emit({ type: 'ADD', key: keyOf('10.0.0.5'), value: beatOf('10.0.0.5', 1_000) });
    registry.emit({ type: 'ADD', key: keyOf('10.0.0.6'), value: beatOf('10.0.0.6', 1_000) });
    registryOfTest = registry;
    return { registry, clock, directory };
  }
  /**
   * Which workers three picks land on. A pick is counted against the worker until its next
   * heartbeat, so every worker's heartbeat comes first (capacity 4: three picks never fill one).
   */
  let registryOfTest: FakeRegistry;
  const picks = (directory: WorkerDirectoryService, exclude: ReadonlySet<string> = new Set()) => {
    for (const host of ['10.0.0.5', '10.0.0.6']) {
      registryOfTest.emit({ type: 'UPDATE', key: keyOf(host), value: beatOf(host, 1_000) });
    }
    return new Set(Array.from({ length: 3 }, () => directory.pick('default', exclude)));
  };

  it('chooses the others first for a while, doubling, and the worker again once it answers', async () => {
    const { clock, directory } = await twoWorkers();
    expect(picks(directory)).toEqual(new Set(['10.0.0.5:1234', '10.0.0.6:1234']));
    directory.noteReachability('10.0.0.5:1234', false);
    expect(picks(directory)).toEqual(new Set(['10.0.0.6:1234']));
    clock.advance(UNREACHABLE_FIRST_MS);
    expect(picks(directory)).toContain('10.0.0.5:1234');
    // No answer again: twice as long.
    directory.noteReachability('10.0.0.5:1234', false);
    clock.advance(UNREACHABLE_FIRST_MS);
    expect(picks(directory)).toEqual(new Set(['10.0.0.6:1234']));
    clock.advance(UNREACHABLE_FIRST_MS);
    expect(picks(directory)).toContain('10.0.0.5:1234');
    // It answered: chosen like any other at once, and a later miss starts from the first wait.
    directory.noteReachability('10.0.0.5:1234', false);
    directory.noteReachability('10.0.0.5:1234', true);
    expect(picks(directory)).toContain('10.0.0.5:1234');
    directory.stop();
  });

  it('still chooses a worker that did not answer when no other is left', async () => {
    const { directory } = await twoWorkers();
    directory.noteReachability('10.0.0.5:1234', false);
    expect(picks(directory, new Set(['10.0.0.6:1234']))).toEqual(new Set(['10.0.0.5:1234']));
    directory.stop();
  });

  it('forgets the miss when the worker leaves the registry', async () => {
    const { registry, directory } = await twoWorkers();
    directory.noteReachability('10.0.0.5:1234', false);
    registry.emit({ type: 'REMOVE', key: keyOf('10.0.0.5'), value: null });
    registry.emit({ type: 'ADD', key: keyOf('10.0.0.5'), value: beatOf('10.0.0.5', 1_000) });
    expect(picks(directory)).toContain('10.0.0.5:1234');
    directory.stop();
  });
});

describe('WorkerDirectoryService: history older than the entry held', () => {
  async function registeredAt3() {
    const registry = new FakeRegistry();
    const directory = new WorkerDirectoryService(registry as unknown as Registry, DEFAULT_MASTER_OPTIONS);
    const removed: Array<number | undefined> = [];
    directory.addListener({
      available: () => undefined,
      removed: (_a, _g, _s, registration) => removed.push(registration),
    });
    await directory.start();
    // As a resync after a lost session reads it: the worker already registered anew.
    registry.emit({ type: 'ADD', key: KEY, value: beat(1_000, 0, 3) });
    return { registry, directory, removed };
  }

  it('ignores a replayed removal of an earlier registration while the key is there', async () => {
    const { registry, directory, removed } = await registeredAt3();
    registry.get = async () => beat(1_000, 0, 3);
    registry.emit({ type: 'REMOVE', key: KEY, value: beat(1_000, 0, 2) });
    await new Promise((r) => setImmediate(r));
    expect(removed).toEqual([]);
    expect(directory.addressee('10.0.0.5:1234')).toEqual({ startTimeMs: 1_000, registration: 3 });
    directory.stop();
  });

  it('takes a removal named with an earlier registration when the key is really gone', async () => {
    const { registry, directory, removed } = await registeredAt3();
    registry.emit({ type: 'REMOVE', key: KEY, value: beat(1_000, 0, 2) });
    await new Promise((r) => setImmediate(r));
    expect(removed).toEqual([3]);
    expect(directory.addressee('10.0.0.5:1234')).toBeUndefined();
    directory.stop();
  });

  it('ignores a replayed write of an earlier registration or process', async () => {
    const { registry, directory, removed } = await registeredAt3();
    registry.emit({ type: 'UPDATE', key: KEY, value: beat(1_000, 0, 2) });
    registry.emit({ type: 'UPDATE', key: KEY, value: beat(500, 0, 9) });
    expect(removed).toEqual([]);
    expect(directory.addressee('10.0.0.5:1234')).toEqual({ startTimeMs: 1_000, registration: 3 });
    directory.stop();
  });
});
