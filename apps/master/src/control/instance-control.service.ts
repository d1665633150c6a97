import { Inject, Injectable, Logger } from '@nestjs/common';
import { PgNotificationListener } from '../db/pg-notification-listener.service';
import { WorkflowEngineService } from '../engine/workflow-engine.service';

/**
 * Stop / pause requests. The API sets READY_STOP or READY_PAUSE and NOTIFYs
 * porpoise_instance_control with the instance id in the same transaction; the owning master's
 * runner reads the state (fenced) and acts. A NOTIFY sent while the LISTEN connection was down
 * is lost, so every (re)connect re-checks the states of all owned instances.
 */
@Injectable()
export class InstanceControlService {
  private readonly logger = new Logger('InstanceControl');
  private readonly unsubscribe: Array<() => void> = [];

  constructor(
    @Inject(PgNotificationListener) private readonly listener: PgNotificationListener,
    @Inject(WorkflowEngineService) private readonly engine: WorkflowEngineService,
  ) {}

  start(): void {
    this.unsubscribe.push(
      this.listener.on('porpoise_instance_control', (payload) => {
        const id = Number(payload);
        if (!Number.isSafeInteger(id) || id <= 0) {
          this.logger.warn(
            `ignoring porpoise_instance_control payload ${JSON.stringify(payload)}: not an instance id`,
          );
          return;
        }
        this.engine.control(id);
      }),
      this.listener.onConnected(() => {
        this.engine
          .sweepControl()
          .catch((err: Error) => this.logger.warn(`control sweep failed: ${err.message}`));
      }),
    );
  }

  stop(): void {
    for (const u of this.unsubscribe.splice(0)) u();
  }
}
