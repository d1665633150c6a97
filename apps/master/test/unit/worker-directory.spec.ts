import type { Registry, RegistryEvent, RegistryListener, Subscription } from '@porpoise/registry';
import { DEFAULT_MASTER_OPTIONS } from '../../src/master.constants';
import { WorkerDirectoryService } from '../../src/registry/worker-directory.service';

const KEY = '/nodes/worker/default/10.0.0.5:1234';
const beat = (startTime: number) =>
  JSON.stringify({
    host: '10.0.0.5',
    port: 1234,
    startTime,
    heartbeatTime: startTime + 1,
    cpuUsage: 0.1,
    memoryUsage: 0.2,
    loadAverage: 0.3,
    group: 'default',
    runningTasks: 0,
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
    const removed: Array<[string, string | undefined, number | undefined]> = [];
    directory.addListener({ available: () => undefined, removed: (...args) => removed.push(args) });
    await directory.start();

    registry.emit({ type: 'ADD', key: KEY, value: beat(1_000) });
    registry.emit({ type: 'UPDATE', key: KEY, value: beat(1_000) });
    expect(removed).toEqual([]);
    // A new process re-created the key before the old one's removal was seen.
    registry.emit({ type: 'UPDATE', key: KEY, value: beat(2_000) });
    expect(removed).toEqual([['10.0.0.5:1234', 'default', 1_000]]);
    expect(directory.isLive('10.0.0.5:1234')).toBe(true);
    registry.emit({ type: 'REMOVE', key: KEY, value: null });
    expect(removed).toEqual([
      ['10.0.0.5:1234', 'default', 1_000],
      ['10.0.0.5:1234', 'default', 2_000],
    ]);
    expect(directory.isLive('10.0.0.5:1234')).toBe(false);
    directory.stop();
  });
});
