/**
 * ResultDeliveryService with a stand-in outbox whose writes the test completes, and a stand-in
 * master: the call does not wait for the disk, and the removal never overtakes the write.
 */
import type { EventAck, TaskFinishedEvent } from '@porpoise/rpc';
import { ManualClock } from '@porpoise/test-harness';
import type { MasterEvents } from '../src/adapters/master-events';
import type { OutboxStore } from '../src/adapters/worker-stores';
import type { OutboxRecord } from '../src/domain/records';
import { ResultDeliveryService } from '../src/services/result-delivery.service';

/** Writes complete when the test says; removals queue behind the writes of the same id. */
class GatedOutbox {
  readonly ops: string[] = [];
  private readonly gates: Array<() => void> = [];
  private tail: Promise<void> = Promise.resolve();

  write(id: number, _record: OutboxRecord): Promise<void> {
    this.tail = this.tail.then(
      () =>
        new Promise<void>((done) =>
          this.gates.push(() => {
            this.ops.push(`write ${id}`);
            done();
          }),
        ),
    );
    return this.tail;
  }

  remove(id: number): Promise<void> {
    this.tail = this.tail.then(() => {
      this.ops.push(`remove ${id}`);
    });
    return this.tail;
  }

  completeWrites(): void {
    for (const open of this.gates.splice(0)) open();
  }
}

class RecordingMaster {
  readonly finished: TaskFinishedEvent[] = [];
  taskFinished(_address: string, event: TaskFinishedEvent): Promise<EventAck> {
    this.finished.push(event);
    return Promise.resolve({ status: 'ACCEPTED', reason: '' });
  }
  close(): void {}
}

const event: TaskFinishedEvent = {
  taskInstanceId: 7,
  workflowInstanceId: 1,
  attempt: 1,
  state: 'SUCCESS',
  exitCode: 0,
  startTimeMs: 1_000,
  endTimeMs: 1_005,
  workerAddress: '127.0.0.1:1234',
  epoch: 1,
  message: '',
  outputs: {},
};

const settle = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe('ResultDeliveryService', () => {
  it('sends a result while its outbox write is still under way, and removes the record only after the write', async () => {
    const outbox = new GatedOutbox();
    const master = new RecordingMaster();
    const delivery = new ResultDeliveryService(
      outbox as unknown as OutboxStore,
      master as unknown as MasterEvents,
      new ManualClock(1_000),
    );
    delivery.start();
    let persisted = false;
    void delivery.hold('127.0.0.1:5678', event).then(() => (persisted = true));
    await settle();
    // The master has the result; the disk does not yet.
    expect(master.finished).toEqual([event]);
    expect(persisted).toBe(false);
    expect(outbox.ops).toEqual([]);
    // Acknowledged: the removal waits for the write it follows.
    expect(delivery.holds(event.taskInstanceId)).toBe(false);
    outbox.completeWrites();
    await settle();
    expect(persisted).toBe(true);
    expect(outbox.ops).toEqual(['write 7', 'remove 7']);
  });
});
