import { Inject, Injectable } from '@nestjs/common';
import { PORPOISE_CONFIG, type WorkerConfig } from '@porpoise/common';
import {
  MasterEventClient,
  type EventAck,
  type TaskFinishedEvent,
  type TaskStartedEvent,
} from '@porpoise/rpc';

/** The worker's calls to masters (TaskStarted, TaskFinished), one channel per master address. */
@Injectable()
export class MasterEvents {
  private readonly client: MasterEventClient;

  constructor(@Inject(PORPOISE_CONFIG) config: WorkerConfig) {
    this.client = new MasterEventClient(config.clusterSecret, config.tls);
  }

  taskStarted(address: string, event: TaskStartedEvent, deadlineMs: number): Promise<EventAck> {
    return this.client.taskStarted(address, event, deadlineMs);
  }

  taskFinished(address: string, event: TaskFinishedEvent, deadlineMs: number): Promise<EventAck> {
    return this.client.taskFinished(address, event, deadlineMs);
  }

  close(): void {
    this.client.close();
  }
}
