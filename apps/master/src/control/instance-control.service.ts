import { Inject, Injectable, Logger } from '@nestjs/common';
import { PgNotificationListener } from '../db/pg-notification-listener.service';
import { WorkflowEngineService } from '../engine/workflow-engine.service';

/**
 * Stop / pause requests. The API sets READY_STOP or READY_PAUSE and NOTIFYs
 * porpoise_instance_control with the instance id in the same transaction; the owning master's
 * runner reads the state (fenced) and acts. A NOTIFY sent while the LISTEN connection was down
 * is lost, so every (re)connect re-checks the states of all owned instances.
 *
 * Also the wake-up of DEPENDENT tasks: NOTIFY porpoise_instance_end (`{"id": n, "code": "..."}`,
 * a trigger, when any instance ends) makes those waiting for that workflow check at once; a
 * reconnect checks them all (their checkIntervalMs timer covers what is lost meanwhile too).
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
      // A run ended somewhere: DEPENDENT tasks waiting for its workflow check now.
      this.listener.on('porpoise_instance_end', (payload) => {
        const code = endedWorkflowCode(payload);
        if (code === undefined) {
          this.logger.warn(`ignoring porpoise_instance_end payload ${JSON.stringify(payload)}`);
          return;
        }
        this.engine.dependencyWake(code);
      }),
      // Task groups (DESIGN.md section 10): a slot was freed; the grants NOTIFY the channel above.
      this.listener.on('porpoise_task_group', (group) => this.engine.groupFreed(group)),
      this.listener.onConnected(() => {
        this.engine
          .sweepControl()
          .catch((err: Error) => this.logger.warn(`control sweep failed: ${err.message}`));
        this.engine.wakeAllDependents();
        this.engine.wakeAllChildren();
        this.engine.sweepGroups();
      }),
    );
  }

  stop(): void {
    for (const u of this.unsubscribe.splice(0)) u();
  }
}

/** The workflow code of a porpoise_instance_end payload (undefined: not one). */
export function endedWorkflowCode(payload: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(payload);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const code = (parsed as { code?: unknown }).code;
    return typeof code === 'string' && code !== '' ? code : undefined;
  } catch {
    return undefined;
  }
}
