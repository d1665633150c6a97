/**
 * Errors of the workflow language (DESIGN.md section 9). Every one of them is a user error in a
 * workflow definition or in the params of a run: the task it concerns fails with the message,
 * and nothing runs. Catch `WorkflowLanguageError` to tell them from bugs.
 */
export class WorkflowLanguageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkflowLanguageError';
  }
}

/** A `${name}` whose name is not a param (nor, for `porpoise.…`, a built-in). */
export class UnknownParameterError extends WorkflowLanguageError {
  constructor(readonly paramName: string) {
    super(`unknown parameter \${${paramName}}`);
    this.name = 'UnknownParameterError';
  }
}

/** A `${…}` or `$[…]` that is not well formed where it must be (outside SHELL commands). */
export class ParameterSyntaxError extends WorkflowLanguageError {
  constructor(
    readonly reference: string,
    problem: string,
  ) {
    super(`${reference}: ${problem}`);
    this.name = 'ParameterSyntaxError';
  }
}

/** An invalid param name (in a declaration, run params or a task's outputs). */
export class InvalidParamNameError extends WorkflowLanguageError {
  constructor(readonly paramName: string) {
    super(
      `invalid parameter name ${JSON.stringify(paramName)}: a name is a letter or _ then letters, digits, _`,
    );
    this.name = 'InvalidParamNameError';
  }
}

/** Params that cannot all be put in a task's environment (e.g. `a` and `A`). */
export class ParamEnvironmentError extends WorkflowLanguageError {
  constructor(message: string) {
    super(message);
    this.name = 'ParamEnvironmentError';
  }
}

/** A `$[…]` date expression that is malformed or uses an unknown function or pattern letter. */
export class DateExpressionError extends WorkflowLanguageError {
  constructor(
    readonly expression: string,
    problem: string,
  ) {
    super(`date expression $[${expression}]: ${problem}`);
    this.name = 'DateExpressionError';
  }
}

/** A time zone that is not an IANA zone name (or an invalid schedule time). */
export class InvalidTimeZoneError extends WorkflowLanguageError {
  constructor(readonly timezone: string) {
    super(`invalid time zone ${JSON.stringify(timezone)}`);
    this.name = 'InvalidTimeZoneError';
  }
}

/** A SQL statement whose params cannot become bind parameters (e.g. `${x}` inside a string). */
export class SqlTemplateError extends WorkflowLanguageError {
  constructor(message: string) {
    super(message);
    this.name = 'SqlTemplateError';
  }
}

/** A SWITCH `when` expression that is malformed or uses what the language does not have. */
export class SwitchExpressionError extends WorkflowLanguageError {
  constructor(
    readonly expression: string,
    problem: string,
  ) {
    super(`switch expression ${JSON.stringify(expression)}: ${problem}`);
    this.name = 'SwitchExpressionError';
  }
}
