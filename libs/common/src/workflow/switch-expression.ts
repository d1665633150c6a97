/**
 * SWITCH `when` expressions (DESIGN.md section 9): parsed by a real parser (jsep), checked when
 * the workflow is defined, evaluated over params. Never `eval` or `Function`.
 *
 * The language:
 * - operands: `${name}` (a param, or a `porpoise.…` built-in), `$[…]` (a date expression),
 *   string literals in single or double quotes (a `${name}` or `$[…]` inside one is substituted,
 *   so DS's `"${x}" == "a"` works), number literals (`1`, `-2.5`, `1e3`);
 * - comparisons `==`, `!=`, `<`, `<=`, `>`, `>=` between two operands;
 * - `&&`, `||`, `!`, parentheses, and `true` / `false`, over comparisons.
 * Anything else is rejected when parsing, with what is wrong: other operators (`===`, `+`,
 * `?:`), assignment, function calls, member access, arrays, bare identifiers (write `${x}`),
 * comparing the result of a comparison, several expressions.
 *
 * Comparison: `==` and `!=` with a string literal on either side compare strings. Otherwise, when
 * both sides are numbers (number literals, or values that are decimal numbers such as `42`,
 * `-1.5`, `1e3`), they are compared as numbers (`${x} == 1` holds for x = `1.0`); else as strings
 * (UTF-16 code unit order, as in JavaScript).
 */
import jsep from 'jsep';
import { evaluateDateExpression, validateDateExpression } from './date-expression';
import {
  BUILTIN_PARAM_PREFIX,
  builtinParamValue,
  isBuiltinParamName,
  isParamName,
  isParamReferenceName,
  parseTemplate,
  type BuiltinContext,
  type ParamMap,
  type TemplatePart,
} from './param-template';
import {
  ParameterSyntaxError,
  SwitchExpressionError,
  UnknownParameterError,
  WorkflowLanguageError,
} from './workflow-errors';

/** The longest `when` expression, in characters (it bounds the parser's recursion too). */
export const MAX_SWITCH_EXPRESSION_LENGTH = 4096;

export type ComparisonOperator = '==' | '!=' | '<' | '<=' | '>' | '>=';
const COMPARISONS: readonly string[] = ['==', '!=', '<', '<=', '>', '>='];

export type SwitchOperand =
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'date'; readonly expression: string }
  | { readonly kind: 'string'; readonly parts: readonly TemplatePart[] }
  | { readonly kind: 'number'; readonly value: number };

export type SwitchNode =
  | {
      readonly kind: 'compare';
      readonly op: ComparisonOperator;
      readonly left: SwitchOperand;
      readonly right: SwitchOperand;
    }
  | { readonly kind: 'and' | 'or'; readonly left: SwitchNode; readonly right: SwitchNode }
  | { readonly kind: 'not'; readonly operand: SwitchNode }
  | { readonly kind: 'boolean'; readonly value: boolean };

export interface ParsedSwitchExpression {
  readonly source: string;
  /** The param names it references (built-ins included), each once, in order of first use. */
  readonly params: readonly string[];
  /** Whether it holds a `$[…]` (then evaluating it needs the schedule time: `builtins`). */
  readonly usesDate: boolean;
  readonly root: SwitchNode;
}

/**
 * Parses and checks a `when` expression (at definition time). Throws a SwitchExpressionError
 * saying what is wrong; an UnknownParameterError for an unknown `${porpoise.…}`; a
 * DateExpressionError for an invalid `$[…]` (all WorkflowLanguageErrors).
 */
export function parseSwitchExpression(source: string): ParsedSwitchExpression {
  if (source.length > MAX_SWITCH_EXPRESSION_LENGTH) {
    throw new SwitchExpressionError(
      source.slice(0, 80),
      `longer than ${MAX_SWITCH_EXPRESSION_LENGTH} characters`,
    );
  }
  const pre = preprocess(source);
  let ast: jsep.Expression;
  try {
    ast = jsep(pre.text);
  } catch (err) {
    throw new SwitchExpressionError(source, jsepProblem(err, pre.originalIndex));
  }
  const names = new Set<string>();
  let usesDate = false;
  const builder = new AstBuilder(source, pre.operands, (operand) => {
    if (operand.kind === 'param') names.add(operand.name);
    if (operand.kind === 'date') usesDate = true;
  });
  const root = builder.condition(ast);
  return { source, params: [...names], usesDate, root };
}

/**
 * Evaluates a parsed expression over `params`. A `${porpoise.…}` is looked up in `params` (merge
 * builtinParams() into them) or else computed from `builtins`; a `$[…]` needs `builtins`. Every
 * referenced param must be known, even one that `&&` or `||` would not reach: an unknown one is
 * an UnknownParameterError.
 */
export function evaluateSwitchExpression(
  parsed: ParsedSwitchExpression,
  params: ParamMap,
  builtins?: BuiltinContext,
): boolean {
  const env: Env = { params, builtins, source: parsed.source };
  for (const name of parsed.params) paramValue(env, name);
  if (parsed.usesDate && !builtins) {
    throw new WorkflowLanguageError(
      `switch expression ${JSON.stringify(parsed.source)}: $[…] needs the schedule time`,
    );
  }
  return evaluateNode(parsed.root, env);
}

// ---- parsing ----

type Placeholder =
  { readonly kind: 'param'; readonly name: string } | { readonly kind: 'date'; readonly expression: string };

interface Preprocessed {
  /** The source with each `${…}` / `$[…]` outside strings replaced by ` <identifier> `. */
  readonly text: string;
  readonly operands: ReadonlyMap<string, Placeholder>;
  /** Maps an index in `text` to one in the source (for jsep's error positions). */
  readonly originalIndex: (index: number) => number;
}

const BRACED_AT = /\$\{([^{}]*)\}/y;
const BRACKETED_AT = /\$\[([^\]]*)\]/y;

/**
 * Replaces each `${name}` and `$[…]` outside string literals with an identifier jsep reads (one
 * that does not occur in the source, so it cannot be confused with something the user wrote),
 * padded with spaces so it never fuses with what is next to it. Rejects a malformed reference,
 * an unknown built-in, an invalid date expression, and `=` alone (assignment).
 */
function preprocess(source: string): Preprocessed {
  let prefix = '$p';
  while (source.includes(prefix)) prefix = `$${prefix}`;
  const operands = new Map<string, Placeholder>();
  // [index in text, index in source] at the end of each replacement.
  const shifts: Array<[number, number]> = [];
  let text = '';
  let quote: string | undefined;
  let i = 0;
  const replace = (placeholder: Placeholder, length: number) => {
    const identifier = `${prefix}${operands.size}`;
    operands.set(identifier, placeholder);
    text += ` ${identifier} `;
    i += length;
    shifts.push([text.length, i]);
  };
  while (i < source.length) {
    const c = source.charAt(i);
    if (quote !== undefined) {
      // Inside a string literal: copied as it is (jsep reads it, escapes included).
      const take = c === '\\' ? source.slice(i, i + 2) : c;
      if (c === quote) quote = undefined;
      text += take;
      i += take.length;
    } else if (c === "'" || c === '"') {
      quote = c;
      text += c;
      i++;
    } else if (source.startsWith('${', i)) {
      BRACED_AT.lastIndex = i;
      const match = BRACED_AT.exec(source);
      const name = match?.[1];
      if (!match || name === undefined || !isParamReferenceName(name)) {
        const shown = match?.[0] ?? source.slice(i, i + 40);
        throw new SwitchExpressionError(source, `${shown} is not a parameter reference`);
      }
      if (name.startsWith(BUILTIN_PARAM_PREFIX) && !isBuiltinParamName(name)) {
        throw new UnknownParameterError(name);
      }
      replace({ kind: 'param', name }, match[0].length);
    } else if (source.startsWith('$[', i)) {
      BRACKETED_AT.lastIndex = i;
      const match = BRACKETED_AT.exec(source);
      const expression = match?.[1];
      if (!match || expression === undefined) {
        throw new SwitchExpressionError(source, `${source.slice(i, i + 40)} is not closed`);
      }
      validateDateExpression(expression);
      replace({ kind: 'date', expression }, match[0].length);
    } else if (c === '=' && !'=!<>'.includes(source.charAt(i - 1) || ' ') && source.charAt(i + 1) !== '=') {
      throw new SwitchExpressionError(source, `assignment (=) is not supported; compare with ==`);
    } else {
      text += c;
      i++;
    }
  }
  const originalIndex = (index: number): number => {
    let last: [number, number] = [0, 0];
    for (const shift of shifts) {
      if (shift[0] > index) break;
      last = shift;
    }
    return index - last[0] + last[1];
  };
  return { text, operands, originalIndex };
}

function jsepProblem(err: unknown, originalIndex: (index: number) => number): string {
  if (err instanceof Error) {
    const { description, index } = err as Error & { description?: unknown; index?: unknown };
    if (typeof description === 'string' && typeof index === 'number') {
      return `${description} at character ${originalIndex(index)}`;
    }
    return err.message;
  }
  return String(err);
}

/** Turns jsep's tree into a SwitchNode, accepting only the language described at the top. */
class AstBuilder {
  constructor(
    private readonly source: string,
    private readonly placeholders: ReadonlyMap<string, Placeholder>,
    private readonly onOperand: (operand: SwitchOperand) => void,
  ) {}

  condition(node: jsep.Expression): SwitchNode {
    if (isBinary(node)) {
      if (node.operator === '&&' || node.operator === '||') {
        return {
          kind: node.operator === '&&' ? 'and' : 'or',
          left: this.condition(node.left),
          right: this.condition(node.right),
        };
      }
      if (COMPARISONS.includes(node.operator)) {
        return {
          kind: 'compare',
          op: node.operator as ComparisonOperator,
          left: this.operand(node.left),
          right: this.operand(node.right),
        };
      }
      return this.fail(unsupportedOperator(node.operator));
    }
    if (isUnary(node) && node.operator === '!') {
      return { kind: 'not', operand: this.condition(node.argument) };
    }
    if (isLiteral(node) && typeof node.value === 'boolean') return { kind: 'boolean', value: node.value };
    if (node.type === 'Compound' && Array.isArray(node.body) && node.body.length === 0) {
      return this.fail('the expression is empty');
    }
    const what = this.describe(node);
    return this.fail(what ?? `a comparison or a logical expression is expected, not ${this.show(node)}`);
  }

  private operand(node: jsep.Expression): SwitchOperand {
    if (isIdentifier(node)) {
      const placeholder = this.placeholders.get(node.name);
      if (!placeholder) {
        const hint = isParamName(node.name)
          ? `write \${${node.name}} for a param`
          : 'a param is written ${name}';
        return this.fail(`unknown identifier '${node.name}'; ${hint}`);
      }
      this.onOperand(placeholder);
      return placeholder;
    }
    if (isLiteral(node)) {
      if (typeof node.value === 'number') return { kind: 'number', value: node.value };
      if (typeof node.value === 'string') return this.stringLiteral(node.value);
      if (typeof node.value === 'boolean') return this.fail(`cannot compare a boolean (${node.raw})`);
      return this.fail(`${node.raw} is not supported`);
    }
    if (isUnary(node) && (node.operator === '-' || node.operator === '+')) {
      const value = signedNumber(node);
      if (value === undefined) return this.fail(`unary ${node.operator} applies to a number literal only`);
      return { kind: 'number', value: value === 0 ? 0 : value };
    }
    if (isBinary(node) && (COMPARISONS.includes(node.operator) || ['&&', '||'].includes(node.operator))) {
      return this.fail(`cannot compare the result of ${node.operator}; use && and || between comparisons`);
    }
    if (isBinary(node)) return this.fail(unsupportedOperator(node.operator));
    if (isUnary(node) && node.operator === '!') return this.fail('cannot compare the result of !');
    return this.fail(this.describe(node) ?? `${this.show(node)} is not supported`);
  }

  private stringLiteral(value: string): SwitchOperand {
    let parts: TemplatePart[];
    try {
      parts = parseTemplate(value, 'strict');
    } catch (err) {
      if (err instanceof ParameterSyntaxError) {
        return this.fail(`in the string ${JSON.stringify(value)}: ${err.message}`);
      }
      throw err;
    }
    for (const part of parts) {
      if (typeof part === 'string') continue;
      if (part.kind === 'param') this.onOperand({ kind: 'param', name: part.name });
      else {
        validateDateExpression(part.expression);
        this.onOperand({ kind: 'date', expression: part.expression });
      }
    }
    return { kind: 'string', parts };
  }

  /** What an unsupported node is, in words; undefined for a node that is not unsupported as such. */
  private describe(node: jsep.Expression): string | undefined {
    switch (node.type) {
      case 'CallExpression':
        return 'function calls are not supported';
      case 'MemberExpression':
        return 'member access (. or []) is not supported';
      case 'ConditionalExpression':
        return 'the ?: operator is not supported';
      case 'ArrayExpression':
        return 'arrays are not supported';
      case 'ThisExpression':
        return "'this' is not supported";
      case 'Compound':
      case 'SequenceExpression':
        return 'one expression is expected (no ; or ,)';
      case 'UnaryExpression':
        return isUnary(node) ? `the unary operator ${node.operator} is not supported here` : undefined;
      default:
        return undefined;
    }
  }

  private show(node: jsep.Expression): string {
    if (isIdentifier(node)) {
      const placeholder = this.placeholders.get(node.name);
      if (placeholder?.kind === 'param') return `\${${placeholder.name}}`;
      if (placeholder?.kind === 'date') return `$[${placeholder.expression}]`;
      return node.name;
    }
    if (isLiteral(node)) return node.raw;
    return `a ${node.type}`;
  }

  private fail(problem: string): never {
    throw new SwitchExpressionError(this.source, problem);
  }
}

/** The number a literal with signs in front (`-1`, `+-2`) is; undefined for anything else. */
function signedNumber(node: jsep.Expression): number | undefined {
  if (isLiteral(node)) return typeof node.value === 'number' ? node.value : undefined;
  if (!isUnary(node) || (node.operator !== '-' && node.operator !== '+')) return undefined;
  const value = signedNumber(node.argument);
  if (value === undefined) return undefined;
  return node.operator === '-' ? -value : value;
}

function unsupportedOperator(operator: string): string {
  const hint = operator === '===' ? ' (use ==)' : operator === '!==' ? ' (use !=)' : '';
  return `the operator ${operator} is not supported${hint}`;
}

function isBinary(node: jsep.Expression): node is jsep.BinaryExpression {
  return node.type === 'BinaryExpression';
}
function isUnary(node: jsep.Expression): node is jsep.UnaryExpression {
  return node.type === 'UnaryExpression';
}
function isLiteral(node: jsep.Expression): node is jsep.Literal {
  return node.type === 'Literal';
}
function isIdentifier(node: jsep.Expression): node is jsep.Identifier {
  return node.type === 'Identifier';
}

// ---- evaluation ----

interface Env {
  readonly params: ParamMap;
  readonly builtins: BuiltinContext | undefined;
  readonly source: string;
}

interface Value {
  readonly text: string;
  /** The number it is, when it is a number literal or a decimal number. */
  readonly number: number | undefined;
  readonly stringLiteral: boolean;
}

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function paramValue(env: Env, name: string): string {
  if (Object.hasOwn(env.params, name)) return env.params[name] ?? '';
  if (env.builtins && isBuiltinParamName(name)) return builtinParamValue(name, env.builtins);
  throw new UnknownParameterError(name);
}

function dateValue(env: Env, expression: string): string {
  if (!env.builtins) {
    throw new WorkflowLanguageError(
      `switch expression ${JSON.stringify(env.source)}: $[…] needs the schedule time`,
    );
  }
  return evaluateDateExpression(expression, env.builtins.scheduleTime, env.builtins.timezone);
}

function asNumber(text: string): number | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

function operandValue(operand: SwitchOperand, env: Env): Value {
  switch (operand.kind) {
    case 'number':
      return { text: String(operand.value), number: operand.value, stringLiteral: false };
    case 'param': {
      const text = paramValue(env, operand.name);
      return { text, number: asNumber(text), stringLiteral: false };
    }
    case 'date': {
      const text = dateValue(env, operand.expression);
      return { text, number: asNumber(text), stringLiteral: false };
    }
    case 'string': {
      const text = operand.parts
        .map((part) => {
          if (typeof part === 'string') return part;
          return part.kind === 'param' ? paramValue(env, part.name) : dateValue(env, part.expression);
        })
        .join('');
      return { text, number: asNumber(text), stringLiteral: true };
    }
  }
}

function compare(op: ComparisonOperator, left: Value, right: Value): boolean {
  const stringEquality = (op === '==' || op === '!=') && (left.stringLiteral || right.stringLiteral);
  if (!stringEquality && left.number !== undefined && right.number !== undefined) {
    return order(op, left.number, right.number);
  }
  return order(op, left.text, right.text);
}

function order<T extends string | number>(op: ComparisonOperator, a: T, b: T): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}

function evaluateNode(node: SwitchNode, env: Env): boolean {
  switch (node.kind) {
    case 'boolean':
      return node.value;
    case 'not':
      return !evaluateNode(node.operand, env);
    case 'and':
      return evaluateNode(node.left, env) && evaluateNode(node.right, env);
    case 'or':
      return evaluateNode(node.left, env) || evaluateNode(node.right, env);
    case 'compare':
      return compare(node.op, operandValue(node.left, env), operandValue(node.right, env));
  }
}
