import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '@porpoise/test-harness/manual-clock';
import { SupersededStore } from '../src/adapters/superseded-store';
import { SUPERSEDED_MAX_AGE_MS } from '../src/worker.constants';
import { workerConfig } from './support/worker-config';

describe('SupersededStore', () => {
  let dir: string;
  let clock: ManualClock;
  const store = () => new SupersededStore(workerConfig({ DATA_DIR: dir }), clock);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'porpoise-superseded-'));
    clock = new ManualClock(1_700_000_000_000);
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('remembers the newest epoch at once, and on disk across a restart', async () => {
    const a = store();
    expect(await a.load()).toBe(0);
    const written = a.record(7, 3);
    // Visible before the write completes: a Dispatch right after the TakeOver sees it.
    expect(a.epochOf(7)).toBe(3);
    await Promise.all([written, a.record(7, 5), a.record(8, 1), a.record(7, 4)]);
    expect(a.epochOf(7)).toBe(5);
    expect(a.epochOf(9)).toBeUndefined();

    const b = store();
    expect(await b.load()).toBe(2);
    expect(b.epochOf(7)).toBe(5);
    expect(b.epochOf(8)).toBe(1);
  });

  it('forgets entries older than the maximum age', async () => {
    const old = clock.now() - SUPERSEDED_MAX_AGE_MS - 1_000;
    writeFileSync(
      join(dir, 'superseded.json'),
      JSON.stringify({
        version: 1,
        entries: [
          { taskInstanceId: 1, epoch: 2, atMs: old },
          { taskInstanceId: 2, epoch: 3, atMs: clock.now() },
        ],
      }),
    );
    const s = store();
    expect(await s.load()).toBe(1);
    expect(s.epochOf(1)).toBeUndefined();
    expect(s.epochOf(2)).toBe(3);
  });

  it('drops entries that grew older than the maximum age when it records a new one', async () => {
    const s = store();
    await s.record(1, 2);
    clock.advance(SUPERSEDED_MAX_AGE_MS + 1);
    await s.record(2, 3);
    expect(s.epochOf(1)).toBeUndefined();
    expect(s.epochOf(2)).toBe(3);
    const reloaded = store();
    expect(await reloaded.load()).toBe(1);
  });

  it('sets an unreadable file aside and starts empty', async () => {
    const file = join(dir, 'superseded.json');
    writeFileSync(file, '{"version":1,"entries":[{"taskInstanceId":0}]}');
    const s = store();
    expect(await s.load()).toBe(0);
    expect(existsSync(`${file}.corrupt`)).toBe(true);
    await s.record(3, 1);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({
      version: 1,
      entries: [{ taskInstanceId: 3, epoch: 1 }],
    });
  });
});
