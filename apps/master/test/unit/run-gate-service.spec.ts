import type { GatePassOutcome, GateWorkflow, RunGateRepository } from '@porpoise/dao';
import { ManualClock } from '@porpoise/test-harness';
import type { PgNotificationListener } from '../../src/db/pg-notification-listener.service';
import { endedCode, RunGateService } from '../../src/gate/run-gate.service';
import { DEFAULT_MASTER_OPTIONS } from '../../src/master.constants';

/** A listener whose notifications the test sends by hand. */
class FakeListener {
  readonly handlers = new Map<string, Set<(payload: string) => void>>();
  readonly connected = new Set<() => void>();
  on(channel: string, handler: (payload: string) => void): () => void {
    const set = this.handlers.get(channel) ?? new Set();
    this.handlers.set(channel, set);
    set.add(handler);
    return () => set.delete(handler);
  }
  onConnected(handler: () => void): () => void {
    this.connected.add(handler);
    return () => this.connected.delete(handler);
  }
  send(channel: string, payload: string): void {
    for (const h of this.handlers.get(channel) ?? []) h(payload);
  }
}

/** A repository whose passes stay open until the test resolves them. */
class FakeGate {
  readonly passes: string[] = [];
  readonly open: Array<() => void> = [];
  workflowsList: GateWorkflow[] = [];
  sweeps = 0;
  pass(code: string): Promise<GatePassOutcome> {
    this.passes.push(code);
    return new Promise((resolve) => this.open.push(() => resolve({ admitted: [], discarded: [] })));
  }
  workflows(): Promise<GateWorkflow[]> {
    this.sweeps++;
    return Promise.resolve(this.workflowsList);
  }
  finishAll(): void {
    for (const f of this.open.splice(0)) f();
  }
}

const flush = () => new Promise((r) => setImmediate(r));

function setup(workflows: GateWorkflow[] = []) {
  const clock = new ManualClock();
  const gate = new FakeGate();
  gate.workflowsList = workflows;
  const listener = new FakeListener();
  const service = new RunGateService(
    { ...DEFAULT_MASTER_OPTIONS, gateSweepIntervalMs: 2000 },
    clock,
    gate as unknown as RunGateRepository,
    listener as unknown as PgNotificationListener,
  );
  return { clock, gate, listener, service };
}

describe('RunGateService', () => {
  it('sweeps at start: a pass for each workflow with waiting runs, and learns the limited ones', async () => {
    const { gate, listener, service } = setup([
      { code: 'serial', limited: true, waiting: false },
      { code: 'was_limited', limited: false, waiting: true },
    ]);
    service.start();
    await flush();
    expect(gate.passes).toEqual(['was_limited']);
    gate.finishAll();
    await flush();
    // A run of a limited workflow ended: a pass; of any other workflow: none.
    listener.send('porpoise_instance_end', JSON.stringify({ id: 1, code: 'serial' }));
    listener.send('porpoise_instance_end', JSON.stringify({ id: 2, code: 'plain' }));
    listener.send('porpoise_instance_end', 'not json');
    expect(gate.passes).toEqual(['was_limited', 'serial']);
    gate.finishAll();
    await service.stop();
  });

  it('coalesces requests per workflow: one pass at a time, one more after it when asked meanwhile', async () => {
    const { gate, listener, service } = setup();
    service.start();
    await flush();
    listener.send('porpoise_gate', 'a');
    listener.send('porpoise_gate', 'a');
    listener.send('porpoise_gate', 'a');
    listener.send('porpoise_gate', 'b');
    expect(gate.passes).toEqual(['a', 'b']);
    gate.finishAll();
    await flush();
    await flush();
    // The requests that came during the first pass of `a` make exactly one more.
    expect(gate.passes).toEqual(['a', 'b', 'a']);
    gate.finishAll();
    await flush();
    expect(gate.passes).toEqual(['a', 'b', 'a']);
    // A porpoise_gate code is limited from now on: its run ends wake it.
    listener.send('porpoise_instance_end', JSON.stringify({ id: 3, code: 'b' }));
    expect(gate.passes).toEqual(['a', 'b', 'a', 'b']);
    gate.finishAll();
    await service.stop();
  });

  it('sweeps again every gateSweepIntervalMs and on every LISTEN reconnect; nothing after stop', async () => {
    const { clock, gate, listener, service } = setup([{ code: 'serial', limited: true, waiting: true }]);
    service.start();
    await flush();
    expect(gate.sweeps).toBe(1);
    gate.finishAll();
    await flush();
    clock.advance(2000);
    await flush();
    expect(gate.sweeps).toBe(2);
    for (const h of listener.connected) h();
    await flush();
    expect(gate.sweeps).toBe(3);
    expect(gate.passes.length).toBeGreaterThanOrEqual(2);
    const stopping = service.stop();
    gate.finishAll();
    await stopping;
    const before = gate.passes.length;
    listener.send('porpoise_gate', 'serial');
    clock.advance(10_000);
    await flush();
    expect(gate.passes.length).toBe(before);
    expect(gate.sweeps).toBe(3);
  });

  it('reads the code of a porpoise_instance_end payload', () => {
    expect(endedCode('{"id": 4, "code": "wf_x"}')).toBe('wf_x');
    expect(endedCode('{"id": 4}')).toBeUndefined();
    expect(endedCode('wf_x')).toBeUndefined();
  });
});
