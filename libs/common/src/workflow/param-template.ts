/**
 * Params of the workflow language (DESIGN.md section 9, **Parameters**): `${name}` and `$[...]`
 * substitution in task fields, the built-in `porpoise.…` params, the effective params of a task,
 * and their environment variables. Pure: no I/O, no clock (the schedule time is an input).
 *
 * A template is scanned once, left to right; a substituted value is never scanned again, so a
 * param's value may hold `${…}` or `$[…]` as plain text (the way to pass a literal `$[0]`).
 * Modes:
 * - `shell` (SHELL `command`): a known name is replaced by its value, as text (like DS; the
 *   value is not quoted, `$PORPOISE_PARAM_<NAME>` is the safe way to use an untrusted value);
 *   an unknown `${name}`, and any `${…}` that is not a name (`${HOME:-/tmp}`, `${#a}`,
 *   `${setValue(…)}`), is left for the shell; an unknown `${porpoise.…}` is an error.
 * - `strict` (HTTP url/headers/body, SUB_WORKFLOW params, SWITCH): every `${…}` must be a known
 *   name, else an error naming it; a `${` or `$[` that is not closed is an error too.
 * - `sql` (SQL `statement`): as `strict`, but each reference becomes a bind parameter `$1`,
 *   `$2`… (the same reference, the same number) and its value goes to `values`: never text. The
 *   statement is read as PostgreSQL: references in comments are left alone (and not bound); a
 *   string literal that is exactly one reference, `'${x}'` (what DS users write), is bound like
 *   `${x}`; any other reference inside a string literal, quoted identifier or dollar-quoted
 *   string is an error (it cannot be bound there); a positional `$1` written in the statement is
 *   an error (its number would clash).
 * `$[…]` (see date-expression.ts) is evaluated in every mode, at the schedule time in the
 * workflow's time zone; in `sql` mode its value is bound too. An invalid one is an error.
 */
import { bizDate, evaluateDateExpression, validateDateExpression } from './date-expression';
import {
  InvalidParamNameError,
  ParamEnvironmentError,
  ParameterSyntaxError,
  SqlTemplateError,
  UnknownParameterError,
  WorkflowLanguageError,
} from './workflow-errors';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The prefix of the built-in params' names. */
export const BUILTIN_PARAM_PREFIX = 'porpoise.';

export const BUILTIN_PARAM_NAMES = [
  'porpoise.workflowInstanceId',
  'porpoise.taskInstanceId',
  'porpoise.taskName',
  'porpoise.attempt',
  'porpoise.scheduleTime',
  'porpoise.bizDate',
] as const;
export type BuiltinParamName = (typeof BUILTIN_PARAM_NAMES)[number];

/** The prefix of a param's environment variable (DESIGN.md section 5). */
export const PARAM_ENV_PREFIX = 'PORPOISE_PARAM_';

/** A name a workflow may declare, a run may pass, a task may output: an identifier. */
export function isParamName(name: string): boolean {
  return IDENTIFIER.test(name);
}

export function isBuiltinParamName(name: string): name is BuiltinParamName {
  return (BUILTIN_PARAM_NAMES as readonly string[]).includes(name);
}

/** What may appear between `${` and `}`: a param name, or `porpoise.` and an identifier. */
export function isParamReferenceName(name: string): boolean {
  return (
    isParamName(name) ||
    (name.startsWith(BUILTIN_PARAM_PREFIX) && isParamName(name.slice(BUILTIN_PARAM_PREFIX.length)))
  );
}

/** What the built-in params are computed from. */
export interface BuiltinContext {
  readonly workflowInstanceId: number;
  readonly taskInstanceId: number;
  readonly taskName: string;
  /** 1 for the first run of the task. */
  readonly attempt: number;
  /** The run's schedule time (for a manual run, the trigger time). */
  readonly scheduleTime: Date;
  /** The IANA time zone of `porpoise.bizDate` and of `$[…]` (the schedule's). */
  readonly timezone: string;
}

/**
 * The value of one built-in param. `porpoise.scheduleTime` is ISO 8601 in UTC
 * (`2024-01-01T16:30:00.000Z`); `porpoise.bizDate` is the day before the schedule time in the
 * time zone, `yyyyMMdd` (DS's `system.biz.date`).
 */
export function builtinParamValue(name: BuiltinParamName, ctx: BuiltinContext): string {
  switch (name) {
    case 'porpoise.workflowInstanceId':
      return String(ctx.workflowInstanceId);
    case 'porpoise.taskInstanceId':
      return String(ctx.taskInstanceId);
    case 'porpoise.taskName':
      return ctx.taskName;
    case 'porpoise.attempt':
      return String(ctx.attempt);
    case 'porpoise.scheduleTime':
      return ctx.scheduleTime.toISOString();
    case 'porpoise.bizDate':
      return bizDate(ctx.scheduleTime, ctx.timezone);
  }
}

/** All built-in params, by name (e.g. to merge into the params a SWITCH is evaluated over). */
export function builtinParams(ctx: BuiltinContext): Record<BuiltinParamName, string> {
  return Object.fromEntries(
    BUILTIN_PARAM_NAMES.map((name) => [name, builtinParamValue(name, ctx)]),
  ) as Record<BuiltinParamName, string>;
}

/** Effective params of a task: name → value. */
export type ParamMap = Readonly<Record<string, string>>;
/** A param value as a workflow definition or a run request may give it. */
export type ParamValue = string | number | boolean;

export type TemplateMode = 'shell' | 'strict' | 'sql';

export interface TemplateContext {
  readonly params: ParamMap;
  readonly builtins: BuiltinContext;
}

export interface SqlTemplate {
  /** The statement with `$1`, `$2`… in place of the references. */
  readonly text: string;
  /** The value of `$1` first. */
  readonly values: readonly string[];
}

/**
 * The effective params of a task. Precedence, lowest first:
 *   1. the workflow's declared defaults (`params`),
 *   2. the run's params (a manual run's, a schedule's or a backfill's),
 *   3. the outputs of the task's upstream tasks (direct or not), in the order given: a later map
 *      wins, so pass them in a deterministic order, e.g. by the upstream task's end time.
 * Outputs win over params as in DS, where an upstream task's output (its var pool) overrides a
 * same-named param for the tasks downstream of it. Every name must be a param name; numbers
 * and booleans become strings.
 */
export function resolveParams(
  workflowDefaults: Readonly<Record<string, ParamValue>> | undefined,
  runParams: Readonly<Record<string, ParamValue>> | undefined,
  upstreamOutputs: ReadonlyArray<Readonly<Record<string, string>>> = [],
): Record<string, string> {
  const effective = new Map<string, string>();
  for (const source of [workflowDefaults ?? {}, runParams ?? {}, ...upstreamOutputs]) {
    for (const [name, value] of Object.entries(source)) {
      if (!isParamName(name)) throw new InvalidParamNameError(name);
      effective.set(name, paramValueToString(name, value));
    }
  }
  // fromEntries defines own properties, so even a param named __proto__ is just a param.
  return Object.fromEntries(effective);
}

function paramValueToString(name: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') {
    return String(value);
  }
  throw new WorkflowLanguageError(`parameter ${name}: a value is a string, a finite number or a boolean`);
}

/**
 * The params as environment variables: `PORPOISE_PARAM_<NAME>` (the name upper-cased). Two
 * names that differ only in case (`a`, `A`) would share a variable: that is an error naming
 * both, as is a value with a NUL character (no environment can hold it).
 */
export function paramEnvironment(params: ParamMap): Record<string, string> {
  const env = new Map<string, string>();
  const owner = new Map<string, string>();
  for (const [name, value] of Object.entries(params)) {
    if (!isParamName(name)) throw new InvalidParamNameError(name);
    const variable = `${PARAM_ENV_PREFIX}${name.toUpperCase()}`;
    const other = owner.get(variable);
    if (other !== undefined) {
      throw new ParamEnvironmentError(`parameters ${other} and ${name} would both be ${variable}`);
    }
    if (value.includes('\0')) {
      throw new ParamEnvironmentError(`parameter ${name}: the value holds a NUL character`);
    }
    owner.set(variable, name);
    env.set(variable, value);
  }
  return Object.fromEntries(env);
}

// ---- templates ----

/** A reference in a template: `${name}` (a param or a built-in) or `$[expression]`. */
export type TemplateReference =
  | { readonly kind: 'param'; readonly name: string; readonly raw: string }
  | { readonly kind: 'date'; readonly expression: string; readonly raw: string };

/** A template split up: text, and references in between. */
export type TemplatePart = string | TemplateReference;

/** `${…}` without braces inside, or `$[…]` without `]` inside. */
const REFERENCE = /\$\{([^{}]*)\}|\$\[([^\]]*)\]/g;

/**
 * Splits a template (no SQL awareness) into text and references. `shell` keeps a `${…}` that
 * is not a name as text; `strict` rejects it, and a `${` or `$[` that no reference closes. Both
 * reject an unknown `${porpoise.…}`. `$[…]` are not checked here (see validateDateExpression).
 */
export function parseTemplate(template: string, mode: 'shell' | 'strict'): TemplatePart[] {
  const parts: TemplatePart[] = [];
  const pattern = new RegExp(REFERENCE.source, 'g');
  let last = 0;
  const text = (chunk: string) => {
    if (mode === 'strict') rejectUnclosed(chunk);
    if (chunk !== '') parts.push(chunk);
  };
  for (let match = pattern.exec(template); match; match = pattern.exec(template)) {
    const raw = match[0];
    const ref = toReference(raw, match[1], match[2], mode);
    if (ref) {
      text(template.slice(last, match.index));
      parts.push(ref);
      last = match.index + raw.length;
    } else {
      // Shell text such as ${HOME:-$[yyyy]}: kept, but what is inside is still read.
      pattern.lastIndex = match.index + 2;
    }
  }
  text(template.slice(last));
  return parts;
}

function rejectUnclosed(chunk: string): void {
  const open = /\$[{[]/.exec(chunk);
  if (open) throw unclosed(chunk.slice(open.index));
}

/** The error for a `${` or `$[` (at the start of `rest`) that no reference closes. */
function unclosed(rest: string): ParameterSyntaxError {
  return new ParameterSyntaxError(rest.slice(0, 40), 'a reference that is not closed (or has braces inside)');
}

/** The reference `raw` is, or undefined for a `${…}` left as text (shell mode only). */
function toReference(
  raw: string,
  braced: string | undefined,
  bracketed: string | undefined,
  mode: 'shell' | 'strict',
): TemplateReference | undefined {
  if (bracketed !== undefined) return { kind: 'date', expression: bracketed, raw };
  const name = braced ?? '';
  if (name.startsWith(BUILTIN_PARAM_PREFIX)) {
    if (!isBuiltinParamName(name)) throw new UnknownParameterError(name);
    return { kind: 'param', name, raw };
  }
  if (isParamName(name)) return { kind: 'param', name, raw };
  if (mode === 'shell') return undefined;
  throw new ParameterSyntaxError(raw, 'not a parameter name');
}

/** The value of a reference; undefined for an unknown param name (never for a built-in). */
function lookup(ref: TemplateReference, ctx: TemplateContext): string | undefined {
  if (ref.kind === 'date') {
    return evaluateDateExpression(ref.expression, ctx.builtins.scheduleTime, ctx.builtins.timezone);
  }
  if (isBuiltinParamName(ref.name)) return builtinParamValue(ref.name, ctx.builtins);
  return Object.hasOwn(ctx.params, ref.name) ? ctx.params[ref.name] : undefined;
}

/** The value of a reference that must be known (strict and sql modes). */
function requireValue(ref: TemplateReference, ctx: TemplateContext): string {
  const value = lookup(ref, ctx);
  if (value === undefined) throw new UnknownParameterError(ref.kind === 'param' ? ref.name : ref.raw);
  return value;
}

/** Substitutes `${name}` and `$[…]` in a SHELL command (`shell`) or another text field (`strict`). */
export function renderTemplate(template: string, mode: 'shell' | 'strict', ctx: TemplateContext): string {
  return parseTemplate(template, mode)
    .map((part) => {
      if (typeof part === 'string') return part;
      return mode === 'strict' ? requireValue(part, ctx) : (lookup(part, ctx) ?? part.raw);
    })
    .join('');
}

/** `renderTemplate(…, 'strict', …)` of every value (SUB_WORKFLOW `params`); names are kept. */
export function renderParamMap(
  params: Readonly<Record<string, string>>,
  ctx: TemplateContext,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(params).map(([name, value]) => [name, renderTemplate(value, 'strict', ctx)]),
  );
}

/** A SQL statement with its references as bind parameters (see the top of this file). */
export function renderSqlTemplate(template: string, ctx: TemplateContext): SqlTemplate {
  const values: string[] = [];
  const positions = new Map<string, number>();
  const text = lexSql(template, (ref) => {
    const key = ref.kind === 'param' ? `\${${ref.name}}` : `$[${ref.expression}]`;
    let position = positions.get(key);
    if (position === undefined) {
      values.push(requireValue(ref, ctx));
      position = values.length;
      positions.set(key, position);
    }
    return `$${position}`;
  });
  return { text, values };
}

/**
 * Checks a template's syntax as a task definition is saved, and returns the param names it
 * references (built-ins included, each once, in order of first use; `$[…]` are not names). It
 * rejects what would fail whatever the params: an unknown `${porpoise.…}`, an invalid `$[…]`, in
 * `strict` and `sql` a malformed reference, in `sql` a reference that cannot be bound. Unknown
 * param names are not its business: an upstream task's outputs are only known at run time.
 */
export function templateReferences(template: string, mode: TemplateMode): string[] {
  const names = new Set<string>();
  const visit = (ref: TemplateReference) => {
    if (ref.kind === 'param') names.add(ref.name);
    else validateDateExpression(ref.expression);
  };
  if (mode === 'sql') {
    lexSql(template, (ref) => {
      visit(ref);
      return '$1';
    });
  } else {
    for (const part of parseTemplate(template, mode)) {
      if (typeof part !== 'string') visit(part);
    }
  }
  return [...names];
}

// ---- SQL ----

const IDENTIFIER_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_QUOTE = /\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;
const REFERENCE_AT = /\$\{([^{}]*)\}|\$\[([^\]]*)\]/y;
const WHOLE_REFERENCE = /^(?:\$\{([^{}]*)\}|\$\[([^\]]*)\])$/;

/**
 * Reads a PostgreSQL statement, copying it and replacing each reference outside literals and
 * comments (and each `'<one reference>'`) with what `bind` returns for it.
 */
function lexSql(sql: string, bind: (ref: TemplateReference) => string): string {
  const out: string[] = [];
  let i = 0;
  const refOf = (raw: string, braced: string | undefined, bracketed: string | undefined) =>
    toReference(raw, braced, bracketed, 'strict') as TemplateReference;
  const noReferenceIn = (chunk: string, where: string, hint = '') => {
    const inside = /\$\{[^{}]*\}|\$\[[^\]]*\]|\$[{[]/.exec(chunk);
    if (inside) throw new SqlTemplateError(`${inside[0]} inside ${where} cannot be a bind parameter${hint}`);
  };
  const stringHint = `; write it outside the quotes (e.g. '%' || \${x} || '%')`;
  while (i < sql.length) {
    const c = sql.charAt(i);
    const next = sql.charAt(i + 1);
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? sql.length : end;
      out.push(sql.slice(i, stop));
      i = stop;
    } else if (c === '/' && next === '*') {
      const stop = blockCommentEnd(sql, i);
      out.push(sql.slice(i, stop));
      i = stop;
    } else if (c === "'") {
      const escapes = /[Ee]/.test(sql.charAt(i - 1)) && !IDENTIFIER_CHAR.test(sql.charAt(i - 2));
      const stop = quotedEnd(sql, i, "'", escapes);
      const literal = sql.slice(i, stop);
      const whole = WHOLE_REFERENCE.exec(literal.slice(1, -1));
      if (whole && literal.length >= 2 && literal.endsWith("'")) {
        out.push(bind(refOf(whole[0], whole[1], whole[2])));
      } else {
        noReferenceIn(literal, 'a string literal', stringHint);
        out.push(literal);
      }
      i = stop;
    } else if (c === '"') {
      const stop = quotedEnd(sql, i, '"', false);
      noReferenceIn(sql.slice(i, stop), 'a quoted identifier');
      out.push(sql.slice(i, stop));
      i = stop;
    } else if (c === '$' && (next === '{' || next === '[')) {
      REFERENCE_AT.lastIndex = i;
      const match = REFERENCE_AT.exec(sql);
      if (!match) throw unclosed(sql.slice(i));
      out.push(bind(refOf(match[0], match[1], match[2])));
      i += match[0].length;
    } else if (c === '$' && /[0-9]/.test(next) && !IDENTIFIER_CHAR.test(sql.charAt(i - 1))) {
      const positional = /^\$[0-9]+/.exec(sql.slice(i))?.[0] ?? '';
      throw new SqlTemplateError(`a positional parameter ${positional} in the statement; write \${name}`);
    } else if (c === '$' && !IDENTIFIER_CHAR.test(sql.charAt(i - 1))) {
      DOLLAR_QUOTE.lastIndex = i;
      const open = DOLLAR_QUOTE.exec(sql);
      if (open) {
        const close = sql.indexOf(open[0], i + open[0].length);
        const stop = close === -1 ? sql.length : close + open[0].length;
        noReferenceIn(sql.slice(i, stop), 'a dollar-quoted string', stringHint);
        out.push(sql.slice(i, stop));
        i = stop;
      } else {
        out.push(c);
        i++;
      }
    } else {
      out.push(c);
      i++;
    }
  }
  return out.join('');
}

/** The index after a (nested, as in PostgreSQL) block comment starting at `start`. */
function blockCommentEnd(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (sql.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return sql.length;
}

/** The index after a quoted run starting at `start` (a doubled quote is a quote). */
function quotedEnd(sql: string, start: number, quote: string, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql.charAt(i);
    if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === quote && sql.charAt(i + 1) === quote) {
      i += 2;
    } else if (c === quote) {
      return i + 1;
    } else {
      i++;
    }
  }
  return sql.length;
}
