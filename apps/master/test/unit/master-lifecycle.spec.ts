import { MasterLifecycleService } from '../../src/lifecycle/master-lifecycle.service';
import { systemClock } from '@porpoise/common';
import { DEFAULT_MASTER_OPTIONS } from '../../src/master.constants';

/** A part whose stop records its call; `hang` never resolves, `fail` rejects. */
function part(calls: string[], name: string, how: 'ok' | 'hang' | 'fail' = 'ok') {
  return () => {
    calls.push(name);
    if (how === 'hang') return new Promise<void>(() => undefined);
    if (how === 'fail') return Promise.reject(new Error(`${name} broke`));
    return Promise.resolve();
  };
}

function lifecycle(calls: string[], hang: string, fail: string) {
  const how = (name: string) => (name === hang ? 'hang' : name === fail ? 'fail' : 'ok');
  const p = (name: string) => part(calls, name, how(name));
  const deps = [
    { address: 'm:1', host: 'm', port: 1 },
    { stop: p('session') },
    { stop: p('workers') },
    { handOver: p('hand-over'), stop: p('engine') },
    { setServing: p('health'), stop: p('grpc') },
    { stop: p('membership') },
    { drain: p('drain'), stop: p('deregister') },
    { stop: p('listen') },
    { stop: p('control') },
    { stop: p('consumer') },
    { stop: p('schedules') },
    { stop: p('failover') },
    { close: p('channels') },
    { ...DEFAULT_MASTER_OPTIONS, shutdownStepTimeoutMs: 50 },
    systemClock,
    { stop: p('backfills') },
    { stop: p('gate') },
    { stop: p('retention') },
    { stop: p('death watch') },
  ];
  return new (MasterLifecycleService as unknown as new (...args: unknown[]) => MasterLifecycleService)(
    ...deps,
  );
}

describe('MasterLifecycleService shutdown', () => {
  it('runs every step in order even when one hangs and another fails', async () => {
    const calls: string[] = [];
    await lifecycle(calls, 'consumer', 'listen').beforeApplicationShutdown();
    expect(calls).toEqual([
      'consumer',
      'schedules',
      'backfills',
      'gate',
      'retention',
      'control',
      'listen',
      'failover',
      'death watch',
      'health',
      'drain',
      'hand-over',
      'deregister',
      'grpc',
      'engine',
      'membership',
      'workers',
      'session',
      'channels',
    ]);
  });
});
