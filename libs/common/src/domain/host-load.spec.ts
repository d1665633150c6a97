import { ManualClock } from '@porpoise/test-harness';
import { hostLoad, HostLoadSampler, type HostSample } from './host-load';

const sample = (over: Partial<HostSample> = {}): HostSample => ({
  nowMs: 1000,
  cpuMicros: 0,
  wallMicros: 0,
  cpuCount: 2,
  freeMemoryBytes: 25,
  totalMemoryBytes: 100,
  loadAverage1m: 0.5,
  ...over,
});

describe('hostLoad', () => {
  it('counts cpu as a share of all cores: one busy core of two is 0.5, of four 0.25', () => {
    const before = sample({ cpuMicros: 500_000, wallMicros: 1_000_000 });
    // One second of CPU in one second of wall time.
    const after = sample({ cpuMicros: 1_500_000, wallMicros: 2_000_000 });
    expect(hostLoad(after, before)).toEqual({ cpuUsage: 0.5, memoryUsage: 0.75, loadAverage: 0.5 });
    expect(hostLoad({ ...after, cpuCount: 4 }, { ...before, cpuCount: 4 }).cpuUsage).toBe(0.25);
    // Two busy cores of two: the whole host, never more than 1.
    expect(hostLoad(sample({ cpuMicros: 2_000_000, wallMicros: 1_000_000 }), sample()).cpuUsage).toBe(1);
    expect(hostLoad(sample({ cpuMicros: 9_000_000, wallMicros: 1_000_000 }), sample()).cpuUsage).toBe(1);
  });

  it('is 0 without a previous sample or elapsed time, and never NaN', () => {
    expect(hostLoad(sample({ cpuMicros: 5, wallMicros: 5 })).cpuUsage).toBe(0);
    expect(hostLoad(sample({ wallMicros: 5 }), sample({ wallMicros: 5 })).cpuUsage).toBe(0);
    const odd = hostLoad(sample({ totalMemoryBytes: 0, loadAverage1m: Number.NaN, cpuCount: 0 }));
    expect(odd).toEqual({ cpuUsage: 0, memoryUsage: 0, loadAverage: 0 });
  });
});

describe('HostLoadSampler', () => {
  it('measures each sample against the previous one, stamped with the clock', () => {
    const clock = new ManualClock(10_000);
    const reads: HostSample[] = [
      sample({ nowMs: 10_000, cpuMicros: 0, wallMicros: 0 }),
      sample({ nowMs: 12_000, cpuMicros: 1_000_000, wallMicros: 2_000_000 }),
      sample({ nowMs: 14_000, cpuMicros: 5_000_000, wallMicros: 4_000_000 }),
    ];
    const seen: number[] = [];
    const sampler = new HostLoadSampler(clock, (now) => {
      seen.push(now);
      return reads.shift()!;
    });
    clock.advance(2000);
    expect(sampler.sample()).toEqual({
      heartbeatTime: 12_000,
      cpuUsage: 0.25,
      memoryUsage: 0.75,
      loadAverage: 0.5,
    });
    clock.advance(2000);
    // 4 s of CPU in 2 s on 2 cores: the whole host.
    expect(sampler.sample().cpuUsage).toBe(1);
    expect(seen).toEqual([10_000, 12_000, 14_000]);
  });
});
