import { Inject, Injectable } from '@nestjs/common';
import { PORPOISE_CONFIG, type PorpoiseConfig } from '@porpoise/common';
import {
  MasterEventClient,
  type EventAck,
  type TaskFinishedEvent,
  type TaskStartedEvent,
} from '@porpoise/rpc';
import { requireClusterSecret } from '../worker.config';

/** The worker's calls to masters (TaskStarted, TaskFinished), one channel per master address. */
@Injectable()
export class MasterEvents {
  private readonly client: MasterEventClient;

  constructor(@Inject(PORPOISE_CONFIG) config: PorpoiseConfig) {
    this.client = new MasterEventClient(requireClusterSecret(config));
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
