import type { BackfillAdvance, BackfillRepository } from '@porpoise/dao';
import { ManualClock } from '@porpoise/test-harness';
import { BackfillService } from '../../src/backfill/backfill.service';
import type { PgNotificationListener } from '../../src/db/pg-notification-listener.service';
import { BACKFILL_CHANNEL, DEFAULT_MASTER_OPTIONS, INSTANCE_END_CHANNEL } from '../../src/master.constants';
import type { SessionStateService } from '../../src/registry/session-state.service';

/**
 * When a master advances backfills: on a new backfill's NOTIFY, on the end of a run of a
 * workflow with a running backfill, on every LISTEN (re)connect and on the periodic sweep; never
 * while its registry session is not usable. The advance itself is the repository's (int test).
 */
describe('BackfillService', () => {
  const flush = () => new Promise((resolve) => setImmediate(resolve));

  function setup(running: Array<{ id: number; workflowCode: string }>) {
    const advanced: number[] = [];
    const handlers = new Map<string, (payload: string) => void>();
    const connected: Array<() => void> = [];
    let usable = true;
    const states = new Map<number, BackfillAdvance['state']>();
    const repo = {
      running: () => Promise.resolve(running.filter((b) => (states.get(b.id) ?? 'RUNNING') === 'RUNNING')),
      advance: (id: number): Promise<BackfillAdvance> => {
        advanced.push(id);
        return Promise.resolve({
          state: states.get(id) ?? 'RUNNING',
          ended: false,
          createdRuns: [],
          active: 0,
        });
      },
    } as unknown as BackfillRepository;
    const listener = {
      on: (channel: string, handler: (payload: string) => void) => {
        handlers.set(channel, handler);
        return () => handlers.delete(channel);
      },
      onConnected: (handler: () => void) => {
        connected.push(handler);
        return () => undefined;
      },
    } as unknown as PgNotificationListener;
    const session = { canStartWork: () => usable } as unknown as SessionStateService;
    const clock = new ManualClock();
    const service = new BackfillService(
      repo,
      listener,
      session,
      { host: '127.0.0.1', port: 5678, address: '127.0.0.1:5678' },
      DEFAULT_MASTER_OPTIONS,
      clock,
    );
    const notify = (channel: string, payload: unknown) => handlers.get(channel)?.(JSON.stringify(payload));
    return {
      service,
      clock,
      advanced,
      notify,
      connected,
      states,
      setUsable: (u: boolean) => (usable = u),
    };
  }

  it('sweeps at start and every backfillSweepMs, advancing every running backfill', async () => {
    const t = setup([
      { id: 1, workflowCode: 'a' },
      { id: 2, workflowCode: 'b' },
    ]);
    t.service.start();
    await flush();
    expect(t.advanced).toEqual([1, 2]);
    t.clock.advance(DEFAULT_MASTER_OPTIONS.backfillSweepMs);
    await flush();
    expect(t.advanced).toEqual([1, 2, 1, 2]);
    // An ended backfill is no longer swept.
    t.states.set(1, 'SUCCESS');
    t.clock.advance(DEFAULT_MASTER_OPTIONS.backfillSweepMs);
    await flush();
    expect(t.advanced).toEqual([1, 2, 1, 2, 2]);
    await t.service.stop();
  });

  it('a run ending wakes only the backfills of its workflow; a new backfill wakes itself', async () => {
    const t = setup([{ id: 1, workflowCode: 'a' }]);
    t.service.start();
    await flush();
    t.advanced.length = 0;
    t.notify(INSTANCE_END_CHANNEL, { id: 100, code: 'other' });
    await flush();
    expect(t.advanced).toEqual([]);
    t.notify(INSTANCE_END_CHANNEL, { id: 101, code: 'a' });
    await flush();
    expect(t.advanced).toEqual([1]);
    t.notify(BACKFILL_CHANNEL, { id: 7, code: 'c' });
    await flush();
    expect(t.advanced).toEqual([1, 7]);
    // Backfill 7's workflow is now known: its runs' ends wake it.
    t.notify(INSTANCE_END_CHANNEL, { id: 102, code: 'c' });
    await flush();
    expect(t.advanced).toEqual([1, 7, 7]);
    t.notify(INSTANCE_END_CHANNEL, 'not json');
    await flush();
    expect(t.advanced).toEqual([1, 7, 7]);
    await t.service.stop();
  });

  it('a LISTEN reconnect sweeps; nothing is advanced while the session is not usable', async () => {
    const t = setup([{ id: 3, workflowCode: 'a' }]);
    t.setUsable(false);
    t.service.start();
    await flush();
    t.notify(BACKFILL_CHANNEL, { id: 3, code: 'a' });
    t.clock.advance(DEFAULT_MASTER_OPTIONS.backfillSweepMs);
    await flush();
    expect(t.advanced).toEqual([]);
    t.setUsable(true);
    for (const c of t.connected) c();
    await flush();
    expect(t.advanced).toEqual([3]);
    await t.service.stop();
    t.notify(BACKFILL_CHANNEL, { id: 3, code: 'a' });
    t.clock.advance(10 * DEFAULT_MASTER_OPTIONS.backfillSweepMs);
    await flush();
    expect(t.advanced).toEqual([3]);
  });
});
