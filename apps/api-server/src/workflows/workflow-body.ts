import { DefinitionError, parseWorkflowDefinition, type WorkflowDefinition } from '@porpoise/common';
import { BadRequestError } from '../common/api-errors';
import { describeType, isPlainObject } from '../common/input';

/**
 * Validates a POST/PUT /workflows body with the shared definition model (libs/common
 * definition/): the definition to store, defaults filled in. Pure. A problem is a
 * BadRequestError whose message names it. `selfCode` is the workflow a PUT updates (a
 * SUB_WORKFLOW task may not run it).
 */
export function parseWorkflowBody(body: unknown, selfCode?: string): WorkflowDefinition {
  if (!isPlainObject(body)) {
    // Usually a missing Content-Type: express then leaves the body empty.
    throw new BadRequestError(
      `request body must be a JSON object (Content-Type: application/json), got ${describeType(body)}`,
    );
  }
  try {
    return parseWorkflowDefinition(body, { selfCode });
  } catch (err) {
    if (err instanceof DefinitionError) throw new BadRequestError(err.message);
    throw err;
  }
}
