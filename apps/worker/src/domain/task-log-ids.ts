import { withIds, type LogMessage } from '@porpoise/common';

/**
 * A log line about one task attempt: the text as before ("task 12: ..."), and with
 * LOG_FORMAT=json its workflow instance and task instance ids as fields of their own.
 */
export function aboutTask(
  task: { readonly taskInstanceId: number; readonly workflowInstanceId: number },
  text: string,
): LogMessage {
  return withIds({ instanceId: task.workflowInstanceId, taskInstanceId: task.taskInstanceId }, text);
}
