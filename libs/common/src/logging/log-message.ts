import { inspect } from 'node:util';

/** The ids a log line is about (DESIGN.md section 12): a workflow instance, a task attempt. */
export interface LogIds {
  readonly instanceId?: number;
  readonly taskInstanceId?: number;
}

/**
 * A log message with the ids it is about. Passed to a Nest logger in place of the text: the
 * node's logger (NodeLogger) prints the text, and in JSON puts the ids in fields of their own.
 * Any other logger prints the text too (toString, and util.inspect for Nest's ConsoleLogger).
 */
export class LogMessage {
  constructor(
    readonly text: string,
    readonly ids: LogIds,
  ) {}

  toString(): string {
    return this.text;
  }

  toJSON(): string {
    return this.text;
  }

  [inspect.custom](): string {
    return this.text;
  }
}

/** `logger.log(withIds({ instanceId: 7 }, 'instance 7: started'))` */
export function withIds(ids: LogIds, text: string): LogMessage {
  return new LogMessage(text, ids);
}
