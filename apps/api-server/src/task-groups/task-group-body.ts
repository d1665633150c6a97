import { TASK_GROUP_NAME_PATTERN } from '@porpoise/common';
import { BadRequestError } from '../common/api-errors';
import {
  describeType,
  isPlainObject,
  rejectUnknownFields,
  requiredString,
  type JsonObject,
} from '../common/input';

/** The largest capacity a group may have (more is no limit at all). */
export const MAX_TASK_GROUP_CAPACITY = 100_000;

export interface TaskGroupInput {
  readonly name: string;
  readonly capacity: number;
}

function bodyObject(body: unknown): JsonObject {
  if (!isPlainObject(body)) {
    throw new BadRequestError(
      `request body must be a JSON object (Content-Type: application/json), got ${describeType(body)}`,
    );
  }
  return body;
}

function capacityOf(body: JsonObject): number {
  if (!('capacity' in body) || body.capacity === undefined) {
    throw new BadRequestError('task group: missing field "capacity"');
  }
  const value = body.capacity;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new BadRequestError(`task group: "capacity" must be an integer, got ${describeType(value)}`);
  }
  if (value < 0 || value > MAX_TASK_GROUP_CAPACITY) {
    throw new BadRequestError(
      `task group: "capacity" must be between 0 and ${MAX_TASK_GROUP_CAPACITY}, got ${value}`,
    );
  }
  return value;
}

/** Validates a POST /task-groups body: `{ name, capacity }`. */
export function parseTaskGroupBody(body: unknown): TaskGroupInput {
  const obj = bodyObject(body);
  rejectUnknownFields(obj, ['name', 'capacity'], 'task group');
  const name = requiredString(obj, 'name', 'task group', {
    maxLength: 64,
    pattern: TASK_GROUP_NAME_PATTERN,
    patternText: 'use 1 to 64 letters, digits, dots, dashes or underscores',
  });
  return { name, capacity: capacityOf(obj) };
}

/** Validates a PATCH /task-groups/{name} body: `{ capacity }` (the name cannot change). */
export function parseTaskGroupPatch(body: unknown): { capacity: number } {
  const obj = bodyObject(body);
  rejectUnknownFields(obj, ['capacity'], 'task group');
  return { capacity: capacityOf(obj) };
}
