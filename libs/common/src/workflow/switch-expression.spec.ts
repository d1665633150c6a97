import { type BuiltinContext } from './param-template';
import {
  MAX_SWITCH_EXPRESSION_LENGTH,
  evaluateSwitchExpression,
  parseSwitchExpression,
  type ParsedSwitchExpression,
} from './switch-expression';
import {
  DateExpressionError,
  SwitchExpressionError,
  UnknownParameterError,
  WorkflowLanguageError,
} from './workflow-errors';

const params = {
  x: 'a',
  y: 'b',
  n: '1.0',
  ten: '10',
  nine: '9',
  neg: '-2.5',
  big: '1e3',
  s: 'abc',
  empty: '',
  spaced: ' 1',
  quote: "it's",
  flag: 'true',
};

const builtins: BuiltinContext = {
  workflowInstanceId: 42,
  taskInstanceId: 4201,
  taskName: 'route',
  attempt: 1,
  scheduleTime: new Date('2024-01-01T16:30:00Z'), // 2024-01-02 00:30 in Shanghai
  timezone: 'Asia/Shanghai',
};

const evaluate = (text: string, values: Record<string, string> = params): boolean =>
  evaluateSwitchExpression(parseSwitchExpression(text), values, builtins);

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('evaluateSwitchExpression', () => {
  it.each([
    // equality with strings
    ["${x} == 'a'", true],
    ["${x} == 'b'", false],
    ["${x} != 'a'", false],
    ["${x} != 'b'", true],
    ['${x} == "a"', true],
    ["'a' == ${x}", true],
    ['${x} == ${y}', false],
    ['${x} == ${x}', true],
    ["${empty} == ''", true],
    ["${quote} == 'it\\'s'", true],
    ['${quote} == "it\'s"', true],
    ["${x}=='a'", true],
    // DS's quoted references are strings with the value substituted
    ['"${x}" == "a"', true],
    ["'${x}-${y}' == 'a-b'", true],
    ["'${n}' == '1.0'", true],
    ["'${n}' == 1", false], // a string literal side: compared as strings
    // numbers
    ['${n} == 1', true],
    ['${n} == 1.0', true],
    ['${n} != 1', false],
    ["${n} == '1'", false], // string literal: strings '1.0' and '1'
    ["${n} == '1.0'", true],
    ['${ten} > 9', true],
    ['${ten} > ${nine}', true], // numeric, though '10' < '9' as strings
    ["${ten} > '9'", true], // ordering: both sides are numbers
    ['${ten} >= 10', true],
    ['${ten} <= 10', true],
    ['${ten} < 10', false],
    ['${neg} < -2', true],
    ['${neg} == -2.5', true],
    ['${neg} > +-3', true],
    ['${big} == 1000', true],
    ['${big} > 999.5', true],
    ['${n} == .1e1', true],
    ['${spaced} == 1', false], // ' 1' is not a number: strings ' 1' and '1'
    // strings in order
    ["${s} < 'b'", true],
    ["${s} > 'abd'", false],
    ["${s} >= 'abc'", true],
    ['${s} > 1', true], // 'abc' > '1' as strings
    ["${empty} < 'a'", true],
    // logic
    ["${x} == 'a' && ${y} == 'b'", true],
    ["${x} == 'a' && ${y} == 'a'", false],
    ["${x} == 'z' || ${y} == 'b'", true],
    ["${x} == 'z' || ${y} == 'z'", false],
    ["!(${x} == 'a')", false],
    ["!(${x} != 'a') && (${n} >= 1 || ${s} < 'b')", true],
    ["${x} == 'z' || ${x} == 'a' && ${y} == 'z'", false], // && binds tighter
    ["(${x} == 'z' || ${x} == 'a') && ${y} == 'b'", true],
    ["!!(${x} == 'a')", true],
    ['true', true],
    ['false', false],
    ["false || ${x} == 'a'", true],
    ["((${x} == 'a'))", true],
    ["  ${x}  ==  'a'  ", true],
    ["${flag} == 'true'", true],
    // built-ins and date expressions
    ["${porpoise.taskName} == 'route'", true],
    ['${porpoise.attempt} == 1', true],
    ['${porpoise.bizDate} == 20240101', true],
    ['$[yyyyMMdd] == 20240102', true],
    ["$[yyyy-MM-dd] == '2024-01-02'", true],
    ["'$[yyyyMMdd-1]' == ${porpoise.bizDate}", true],
    ['$[HH] < 6', true],
  ])('%s is %s', (text, expected) => {
    expect(evaluate(text)).toBe(expected);
  });

  it('takes built-ins from the params when given there (builtinParams merged in)', () => {
    const parsed = parseSwitchExpression("${porpoise.taskName} == 'merged'");
    expect(evaluateSwitchExpression(parsed, { 'porpoise.taskName': 'merged' })).toBe(true);
  });

  it('needs every referenced param, even one && or || would not reach', () => {
    const err = thrown(() => evaluate("${x} == 'a' || ${missing} == 1"));
    expect(err).toBeInstanceOf(UnknownParameterError);
    expect((err as UnknownParameterError).paramName).toBe('missing');
    expect(() => evaluate("'${missing}' == 'x'")).toThrow(UnknownParameterError);
    expect(() => evaluate("${constructor} == 'x'")).toThrow(UnknownParameterError);
  });

  it('needs the built-in context for a built-in not in the params, and for $[…]', () => {
    expect(() => evaluateSwitchExpression(parseSwitchExpression('${porpoise.attempt} == 1'), params)).toThrow(
      UnknownParameterError,
    );
    const dated = parseSwitchExpression('$[yyyy] == 2024');
    expect(() => evaluateSwitchExpression(dated, params)).toThrow(WorkflowLanguageError);
    expect(() => evaluateSwitchExpression(dated, params)).toThrow('needs the schedule time');
  });

  it('never evaluates a param value as an expression', () => {
    const hostile = { v: '1 || true', w: 'process.exit(1)' };
    expect(evaluate('${v} == 1', hostile)).toBe(false);
    expect(evaluate("${w} == 'process.exit(1)'", hostile)).toBe(true);
  });
});

describe('parseSwitchExpression', () => {
  it.each([
    ["${x} == 'a'", ['x'], false],
    ["${x} == 'a' && ${y} != ${x}", ['x', 'y'], false],
    ["'${a}${b}' == ${c}", ['a', 'b', 'c'], false],
    ['${porpoise.bizDate} > $[yyyyMMdd-7]', ['porpoise.bizDate'], true],
    ["'$[yyyy]' == '2024'", [], true],
    ['true', [], false],
    ['\'${x}\' == "${x}"', ['x'], false],
  ])('%s references %j (date: %s)', (text, names, usesDate) => {
    const parsed = parseSwitchExpression(text);
    expect(parsed.params).toEqual(names);
    expect(parsed.usesDate).toBe(usesDate);
    expect(parsed.source).toBe(text);
  });

  it('gives a plain, serializable tree', () => {
    const parsed = parseSwitchExpression("!(${x} == 'a') || ${n} >= -1");
    expect(parsed.root).toEqual({
      kind: 'or',
      left: {
        kind: 'not',
        operand: {
          kind: 'compare',
          op: '==',
          left: { kind: 'param', name: 'x' },
          right: { kind: 'string', parts: ['a'] },
        },
      },
      right: {
        kind: 'compare',
        op: '>=',
        left: { kind: 'param', name: 'n' },
        right: { kind: 'number', value: -1 },
      },
    });
    const copy = JSON.parse(JSON.stringify(parsed)) as ParsedSwitchExpression;
    expect(evaluateSwitchExpression(copy, params)).toBe(true);
    expect(evaluateSwitchExpression(copy, { x: 'a', n: '-2' })).toBe(false);
  });

  it('does not confuse a user identifier with its placeholders', () => {
    expect(() => parseSwitchExpression("$p0 == 'a' || ${x} == 'a'")).toThrow("unknown identifier '$p0'");
    expect(() => parseSwitchExpression('$$p0 == ${x}')).toThrow("unknown identifier '$$p0'");
    expect(evaluate("${x} == 'a' && '$p0' == '$p0'")).toBe(true);
  });

  it.each([
    // what is not in the language
    ["${x} = 'a'", 'assignment (=) is not supported; compare with =='],
    ['${n} += 1', 'assignment (=) is not supported'],
    ["${x} === 'a'", 'the operator === is not supported (use ==)'],
    ["${x} !== 'a'", 'the operator !== is not supported (use !=)'],
    ['${n} + 1 == 2', 'the operator + is not supported'],
    ['${n} * 2 > 1', 'the operator * is not supported'],
    ['${n} % 2 == 0', 'the operator % is not supported'],
    ['${n} & 1', 'the operator & is not supported'],
    ["${x} ?? 'a'", 'the operator ?? is not supported'],
    ["${x} == 'a' ? true : false", 'the ?: operator is not supported'],
    ['f(${x})', 'function calls are not supported'],
    ["${x} == f('a')", 'function calls are not supported'],
    ['${x}.length > 1', 'member access (. or []) is not supported'],
    ["${x}['length'] > 1", 'member access (. or []) is not supported'],
    ['${x} == [1]', 'arrays are not supported'],
    ['this == 1', "'this' is not supported"],
    ['${x} == null', 'null is not supported'],
    ['x == 1', "unknown identifier 'x'; write ${x} for a param"],
    ['$x == 1', "unknown identifier '$x'"],
    ['$x == 1', "unknown identifier '$x'; a param is written ${name}"],
    ['${x} == a', "unknown identifier 'a'"],
    ['${x}', 'a comparison or a logical expression is expected, not ${x}'],
    ["'a'", "a comparison or a logical expression is expected, not 'a'"],
    ['1', 'a comparison or a logical expression is expected, not 1'],
    ["${x} && ${y} == 'b'", 'a comparison or a logical expression is expected, not ${x}'],
    ['!${x}', 'a comparison or a logical expression is expected'],
    ['(${x} == 1) == true', 'cannot compare the result of =='],
    ["${x} == 'a' == true", 'cannot compare the result of =='],
    ['${x} == !true', 'cannot compare the result of !'],
    ['${x} == true', 'cannot compare a boolean (true)'],
    ['-${n} == 1', 'unary - applies to a number literal only'],
    ['~${n} == 1', 'the unary operator ~ is not supported'],
    ["${x} == 'a'; ${y} == 'b'", 'one expression is expected (no ; or ,)'],
    ["${x} == 'a', ${y} == 'b'", 'one expression is expected (no ; or ,)'],
    ['${x}abc == 1', 'one expression is expected'],
    // malformed
    ['', 'the expression is empty'],
    ['   ', 'the expression is empty'],
    ['${x} ==', 'Expected expression after == at character 7'],
    ["${x} == 'a", 'Unclosed quote after "a" at character 10'],
    ["(${x} == 'a'", 'at character 12'],
    ['${a b} == 1', '${a b} is not a parameter reference'],
    ['${} == 1', '${} is not a parameter reference'],
    ['${x == 1', 'is not a parameter reference'],
    ['$[yyyy == 1', 'is not closed'],
    ["'${a b}' == 'x'", 'not a parameter name'],
  ])('rejects %s: %s', (text, problem) => {
    const err = thrown(() => parseSwitchExpression(text));
    expect(err).toBeInstanceOf(SwitchExpressionError);
    expect(err.message.startsWith(`switch expression ${JSON.stringify(text)}: `)).toBe(true);
    expect(err.message).toContain(problem);
    expect(err).toMatchObject({ expression: text });
  });

  it('rejects an unknown built-in and an invalid date expression, naming them', () => {
    const err = thrown(() => parseSwitchExpression('${porpoise.nope} == 1'));
    expect(err).toBeInstanceOf(UnknownParameterError);
    expect(err.message).toContain('porpoise.nope');
    expect(() => parseSwitchExpression("'${porpoise.nope}' == 'x'")).toThrow(UnknownParameterError);
    expect(() => parseSwitchExpression('$[qq] == 1')).toThrow(DateExpressionError);
    expect(() => parseSwitchExpression("'$[qq]' == 'x'")).toThrow(DateExpressionError);
  });

  it('bounds the length of an expression', () => {
    const long = `${"${x} == 'a' || ".repeat(MAX_SWITCH_EXPRESSION_LENGTH / 10)}true`;
    expect(() => parseSwitchExpression(long)).toThrow(
      `longer than ${MAX_SWITCH_EXPRESSION_LENGTH} characters`,
    );
    const deep = `${'('.repeat(1000)}true${')'.repeat(1000)}`;
    expect(evaluate(deep)).toBe(true);
  });
});
