import {
  BUILTIN_PARAM_NAMES,
  builtinParamValue,
  builtinParams,
  isBuiltinParamName,
  isParamName,
  isParamReferenceName,
  paramEnvironment,
  parseTemplate,
  renderParamMap,
  renderSqlTemplate,
  renderTemplate,
  resolveParams,
  templateReferences,
  type BuiltinContext,
  type TemplateContext,
} from './param-template';
import {
  DateExpressionError,
  InvalidParamNameError,
  InvalidTimeZoneError,
  ParamEnvironmentError,
  ParameterSyntaxError,
  SqlTemplateError,
  UnknownParameterError,
  WorkflowLanguageError,
} from './workflow-errors';

// 2024-01-01 16:30 UTC is already 2024-01-02 00:30 in Shanghai.
const builtins: BuiltinContext = {
  workflowInstanceId: 42,
  taskInstanceId: 4201,
  taskName: 'load',
  attempt: 2,
  scheduleTime: new Date('2024-01-01T16:30:00Z'),
  timezone: 'Asia/Shanghai',
};
const ctx: TemplateContext = {
  params: { dt: '20240101', name: "O'Brien; rm -rf /", n: '5', empty: '', tricky: '${dt} $[yyyy]' },
  builtins,
};

/** The error `fn` throws (fails the test when it throws none). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

describe('param names', () => {
  it.each([
    ['a', true],
    ['_', true],
    ['dt', true],
    ['biz_date2', true],
    ['A1_b', true],
    ['__proto__', true],
    ['', false],
    ['1a', false],
    ['a-b', false],
    ['a b', false],
    ['a.b', false],
    ['porpoise.bizDate', false],
    ['é', false],
  ])('isParamName(%j) is %s', (name, expected) => {
    expect(isParamName(name)).toBe(expected);
  });

  it.each([
    ['dt', true],
    ['porpoise.bizDate', true],
    ['porpoise.anything', true],
    ['porpoise.', false],
    ['porpoise.a.b', false],
    ['other.x', false],
    ['HOME:-/tmp', false],
  ])('isParamReferenceName(%j) is %s', (name, expected) => {
    expect(isParamReferenceName(name)).toBe(expected);
  });

  it('knows the built-ins', () => {
    expect(BUILTIN_PARAM_NAMES).toEqual([
      'porpoise.workflowInstanceId',
      'porpoise.taskInstanceId',
      'porpoise.taskName',
      'porpoise.attempt',
      'porpoise.scheduleTime',
      'porpoise.bizDate',
    ]);
    expect(isBuiltinParamName('porpoise.bizDate')).toBe(true);
    expect(isBuiltinParamName('porpoise.bizdate')).toBe(false);
    expect(isBuiltinParamName('bizDate')).toBe(false);
  });
});

describe('built-in params', () => {
  it('computes every built-in', () => {
    expect(builtinParams(builtins)).toEqual({
      'porpoise.workflowInstanceId': '42',
      'porpoise.taskInstanceId': '4201',
      'porpoise.taskName': 'load',
      'porpoise.attempt': '2',
      'porpoise.scheduleTime': '2024-01-01T16:30:00.000Z',
      'porpoise.bizDate': '20240101',
    });
  });

  it.each([
    ['UTC', '20231231'],
    ['Asia/Shanghai', '20240101'],
    ['America/Los_Angeles', '20231231'],
  ])('bizDate is the day before the schedule time in %s: %s', (timezone, expected) => {
    expect(builtinParamValue('porpoise.bizDate', { ...builtins, timezone })).toBe(expected);
  });

  it('scheduleTime is ISO 8601 in UTC whatever the zone', () => {
    expect(builtinParamValue('porpoise.scheduleTime', { ...builtins, timezone: 'America/New_York' })).toBe(
      '2024-01-01T16:30:00.000Z',
    );
  });

  it('only an invalid zone makes bizDate fail', () => {
    const bad = { ...builtins, timezone: 'Nowhere/Land' };
    expect(builtinParamValue('porpoise.taskName', bad)).toBe('load');
    expect(() => builtinParamValue('porpoise.bizDate', bad)).toThrow(InvalidTimeZoneError);
  });
});

describe('renderTemplate, shell mode', () => {
  it.each([
    ['echo ${dt}', 'echo 20240101'],
    ['echo ${dt}${n}', 'echo 202401015'],
    ['echo "${empty}"', 'echo ""'],
    ['echo ${HOME} ${PORPOISE_TASK_NAME}', 'echo ${HOME} ${PORPOISE_TASK_NAME}'],
    ['echo ${HOME:-/tmp} ${#arr} ${x%.txt} ${ dt }', 'echo ${HOME:-/tmp} ${#arr} ${x%.txt} ${ dt }'],
    ['echo $HOME $dt $$ $1', 'echo $HOME $dt $$ $1'],
    ["echo '${setValue(out=${dt})}'", "echo '${setValue(out=20240101)}'"],
    ['echo ${porpoise.workflowInstanceId} ${porpoise.taskInstanceId}', 'echo 42 4201'],
    ['echo ${porpoise.taskName}#${porpoise.attempt}', 'echo load#2'],
    ['echo ${porpoise.scheduleTime}', 'echo 2024-01-01T16:30:00.000Z'],
    ['echo ${porpoise.bizDate}', 'echo 20240101'],
    ['echo $[yyyyMMdd] $[yyyyMMdd-1]', 'echo 20240102 20240101'],
    ['echo $[yyyy-MM-dd HH:mm:ss]', 'echo 2024-01-02 00:30:00'],
    ['echo $[add_months(yyyyMMdd,-1)]', 'echo 20231202'],
    ['echo ${tricky}', 'echo ${dt} $[yyyy]'], // values are never scanned again
    ['echo ${name}', "echo O'Brien; rm -rf /"], // text, like DS: $PORPOISE_PARAM_NAME is the safe way
    ['echo ${dt', 'echo ${dt'],
    ['echo ${X:-${dt}} ${Y:-$[yyyy]}', 'echo ${X:-20240101} ${Y:-2024}'],
    ['echo $[yyyy', 'echo $[yyyy'],
    ['echo ${porpoise}', 'echo ${porpoise}'],
    ['', ''],
  ])('%j → %j', (template, expected) => {
    expect(renderTemplate(template, 'shell', ctx)).toBe(expected);
  });

  it.each([
    ['echo ${porpoise.nope}', 'porpoise.nope'],
    ['echo ${porpoise.bizdate}', 'porpoise.bizdate'],
    ['echo ${porpoise.a b}', 'porpoise.a b'],
  ])('rejects the unknown built-in in %j', (template, name) => {
    const err = thrown(() => renderTemplate(template, 'shell', ctx));
    expect(err).toBeInstanceOf(UnknownParameterError);
    expect(err).toMatchObject({ paramName: name, message: `unknown parameter \${${name}}` });
  });

  it('rejects an invalid date expression, naming it', () => {
    expect(() => renderTemplate('echo $[qq]', 'shell', ctx)).toThrow(DateExpressionError);
    expect(() => renderTemplate('echo $[qq]', 'shell', ctx)).toThrow('$[qq]');
  });
});

describe('renderTemplate, strict mode', () => {
  it.each([
    ['https://h/api/${dt}?n=${n}', 'https://h/api/20240101?n=5'],
    ['{"date": "$[yyyy-MM-dd]", "task": "${porpoise.taskName}"}', '{"date": "2024-01-02", "task": "load"}'],
    ['Bearer ${empty}', 'Bearer '],
    ['${tricky}', '${dt} $[yyyy]'],
    ['no references', 'no references'],
    ['$ {dt} $dt {dt}', '$ {dt} $dt {dt}'],
  ])('%j → %j', (template, expected) => {
    expect(renderTemplate(template, 'strict', ctx)).toBe(expected);
  });

  it.each([
    ['https://h/${missing}', 'missing'],
    ['${HOME}', 'HOME'],
    ['${porpoise.nope}', 'porpoise.nope'],
    ['${dt} and ${missing2}', 'missing2'],
  ])('an unknown name in %j is an error naming it', (template, name) => {
    const err = thrown(() => renderTemplate(template, 'strict', ctx));
    expect(err).toBeInstanceOf(UnknownParameterError);
    expect(err).toBeInstanceOf(WorkflowLanguageError);
    expect((err as UnknownParameterError).paramName).toBe(name);
    expect(err.message).toContain(name);
  });

  it.each([
    ['${ dt }', '${ dt }: not a parameter name'],
    ['${}', '${}: not a parameter name'],
    ['${a-b}', '${a-b}: not a parameter name'],
    ['${setValue(a=1)}', 'not a parameter name'],
    ['x ${dt', '${dt: a reference that is not closed'],
    ['x $[yyyy', '$[yyyy: a reference that is not closed'],
    ['${a{b}}', 'not closed'],
  ])('a malformed reference in %j is an error', (template, message) => {
    const err = thrown(() => renderTemplate(template, 'strict', ctx));
    expect(err).toBeInstanceOf(ParameterSyntaxError);
    expect(err.message).toContain(message);
  });

  it('rejects a JSONPath-looking $[0] instead of corrupting it (pass it in a param instead)', () => {
    expect(() => renderTemplate('{"path": "$[0].name"}', 'strict', ctx)).toThrow(DateExpressionError);
    const withParam = { ...ctx, params: { path: '$[0].name' } };
    expect(renderTemplate('{"path": "${path}"}', 'strict', withParam)).toBe('{"path": "$[0].name"}');
  });

  it('never reads inherited properties as params', () => {
    expect(() => renderTemplate('${constructor}', 'strict', ctx)).toThrow(UnknownParameterError);
    expect(() => renderTemplate('${toString}', 'strict', ctx)).toThrow(UnknownParameterError);
    expect(renderTemplate('${constructor}', 'shell', ctx)).toBe('${constructor}');
  });

  it('renders every value of a param map (SUB_WORKFLOW params), keeping names', () => {
    expect(
      renderParamMap({ day: '$[yyyyMMdd-1]', who: '${porpoise.taskName}-${n}', plain: 'x' }, ctx),
    ).toEqual({
      day: '20240101',
      who: 'load-5',
      plain: 'x',
    });
    expect(() => renderParamMap({ a: '${missing}' }, ctx)).toThrow(UnknownParameterError);
  });
});

describe('renderSqlTemplate', () => {
  it.each([
    ['select 1', 'select 1', []],
    ['select * from t where d = ${dt}', 'select * from t where d = $1', ['20240101']],
    ['select ${dt}, ${n}, ${dt}', 'select $1, $2, $1', ['20240101', '5']],
    ["select * from t where d = '${dt}'", 'select * from t where d = $1', ['20240101']],
    ["select '${dt}', ${dt}", 'select $1, $1', ['20240101']],
    ['select $[yyyyMMdd], $[yyyyMMdd-1], $[yyyyMMdd]', 'select $1, $2, $1', ['20240102', '20240101']],
    ["select '$[yyyy-MM-dd]'::date", 'select $1::date', ['2024-01-02']],
    ['select ${porpoise.bizDate}', 'select $1', ['20240101']],
    ['select ${name}', 'select $1', ["O'Brien; rm -rf /"]],
    ['select ${tricky}', 'select $1', ['${dt} $[yyyy]']],
    ["select 'a''b', 'cost: $5', \"col\"", "select 'a''b', 'cost: $5', \"col\"", []],
    ["select 'it''s' || ${n}", "select 'it''s' || $1", ['5']],
    ['select ${n} -- ${missing} $1\nfrom t', 'select $1 -- ${missing} $1\nfrom t', ['5']],
    ['select /* ${missing} /* nested */ ${x} */ ${n}', 'select /* ${missing} /* nested */ ${x} */ $1', ['5']],
    ['select $$ plain $$, $tag$ x $tag$, ${n}', 'select $$ plain $$, $tag$ x $tag$, $1', ['5']],
    ['select a$1, ${n}', 'select a$1, $1', ['5']],
    ["select E'\\'', ${n}", "select E'\\'', $1", ['5']],
    ['select ${n}::int + 1', 'select $1::int + 1', ['5']],
  ])('%j → %j with %j', (template, text, values) => {
    expect(renderSqlTemplate(template, ctx)).toEqual({ text, values });
  });

  it.each([
    ["select '%${dt}%'", '${dt} inside a string literal cannot be a bind parameter'],
    ["select 'day $[yyyy]'", '$[yyyy] inside a string literal'],
    ["select E'${dt}\\n'", 'inside a string literal'],
    ['select "${dt}"', '${dt} inside a quoted identifier cannot be a bind parameter'],
    ['select $$ ${dt} $$', '${dt} inside a dollar-quoted string'],
    ['select $f$ ${dt} $f$', 'inside a dollar-quoted string'],
    ["select 'lit ${x'", '${ inside a string literal'],
    ['select $1', 'a positional parameter $1 in the statement'],
    ['select ${dt}, $12', 'a positional parameter $12'],
  ])('rejects %j', (template, message) => {
    const err = thrown(() => renderSqlTemplate(template, ctx));
    expect(err).toBeInstanceOf(SqlTemplateError);
    expect(err.message).toContain(message);
  });

  it.each([
    ['select ${missing}', UnknownParameterError],
    ["select '${missing}'", UnknownParameterError],
    ['select ${porpoise.nope}', UnknownParameterError],
    ['select ${HOME}', UnknownParameterError],
    ['select ${ dt }', ParameterSyntaxError],
    ['select ${dt', ParameterSyntaxError],
    ['select $[qq]', DateExpressionError],
  ])('rejects %j with %p', (template, type) => {
    expect(() => renderSqlTemplate(template, ctx)).toThrow(type);
  });
});

describe('parseTemplate', () => {
  it('splits text and references', () => {
    expect(parseTemplate('a ${dt} b $[yyyy] ${HOME:-x}', 'shell')).toEqual([
      'a ',
      { kind: 'param', name: 'dt', raw: '${dt}' },
      ' b ',
      { kind: 'date', expression: 'yyyy', raw: '$[yyyy]' },
      ' ${HOME:-x}',
    ]);
    expect(parseTemplate('${A:-$[yyyy]}!', 'shell')).toEqual([
      '${A:-',
      { kind: 'date', expression: 'yyyy', raw: '$[yyyy]' },
      '}!',
    ]);
  });
});

describe('templateReferences', () => {
  it.each([
    ['echo ${a} ${b} ${a} ${HOME} ${HOME:-x} $[yyyy]', 'shell', ['a', 'b', 'HOME']],
    ['echo ${porpoise.taskName} ${x}', 'shell', ['porpoise.taskName', 'x']],
    ['https://h/${a}/${porpoise.bizDate}', 'strict', ['a', 'porpoise.bizDate']],
    ["select ${a}, '${b}', $[yyyy] -- ${c}\n /* ${d} */", 'sql', ['a', 'b']],
    ['nothing', 'strict', []],
  ] as const)('%j (%s) references %j', (template, mode, names) => {
    expect(templateReferences(template, mode)).toEqual(names);
  });

  it.each([
    ['echo ${porpoise.nope}', 'shell', UnknownParameterError],
    ['echo $[bad(x)]', 'shell', DateExpressionError],
    ['${a b}', 'strict', ParameterSyntaxError],
    ['$[yyyyMMdd-1/0]', 'strict', DateExpressionError],
    ["select '%${a}%'", 'sql', SqlTemplateError],
    ['select $1', 'sql', SqlTemplateError],
  ] as const)('rejects %j (%s) at definition time', (template, mode, type) => {
    expect(() => templateReferences(template, mode)).toThrow(type);
  });
});

describe('resolveParams', () => {
  it('applies defaults, then run params, then upstream outputs in order', () => {
    const effective = resolveParams(
      { a: 'default-a', b: 'default-b', c: 'default-c', d: 'default-d' },
      { b: 'run-b', c: 'run-c', e: 'run-e' },
      [
        { c: 'out1-c', f: 'out1-f' },
        { c: 'out2-c', d: 'out2-d' },
      ],
    );
    expect(effective).toEqual({
      a: 'default-a',
      b: 'run-b',
      c: 'out2-c',
      d: 'out2-d',
      e: 'run-e',
      f: 'out1-f',
    });
  });

  it.each([
    [undefined, undefined, undefined, {}],
    [{ a: '1' }, undefined, undefined, { a: '1' }],
    [undefined, { a: '1' }, [], { a: '1' }],
    [{ n: 5, f: 1.5, t: true, no: false }, {}, [], { n: '5', f: '1.5', t: 'true', no: 'false' }],
    [{ a: 'x' }, { a: '' }, [], { a: '' }],
  ])('resolveParams(%j, %j, %j) is %j', (defaults, run, outputs, expected) => {
    expect(resolveParams(defaults, run, outputs)).toEqual(expected);
  });

  it('keeps a param named __proto__ as a plain param', () => {
    const effective = resolveParams(JSON.parse('{"__proto__": "x"}') as Record<string, string>, {}, []);
    expect(Object.keys(effective)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(effective)).toBe(Object.prototype);
    expect(renderTemplate('${__proto__}', 'strict', { params: effective, builtins })).toBe('x');
  });

  it.each([
    [{ 'a-b': '1' }, {}, []],
    [{}, { '': '1' }, []],
    [{}, {}, [{ 'porpoise.x': '1' }]],
  ])('rejects an invalid name in %j %j %j', (defaults, run, outputs) => {
    expect(() => resolveParams(defaults, run, outputs)).toThrow(InvalidParamNameError);
  });

  it.each([null, undefined, {}, [], Number.NaN, Number.POSITIVE_INFINITY])(
    'rejects the value %p',
    (value) => {
      const defaults = { a: value } as unknown as Record<string, string>;
      expect(() => resolveParams(defaults, {}, [])).toThrow('parameter a: a value is a string');
    },
  );
});

describe('paramEnvironment', () => {
  it('puts every param in PORPOISE_PARAM_<NAME>', () => {
    expect(paramEnvironment({ dt: '20240101', bizDate: 'x', A_1: '', _u: 'v' })).toEqual({
      PORPOISE_PARAM_DT: '20240101',
      PORPOISE_PARAM_BIZDATE: 'x',
      PORPOISE_PARAM_A_1: '',
      PORPOISE_PARAM__U: 'v',
    });
    expect(paramEnvironment({})).toEqual({});
  });

  it('rejects names that differ only in case, naming both', () => {
    const err = thrown(() => paramEnvironment({ dt: '1', DT: '2' }));
    expect(err).toBeInstanceOf(ParamEnvironmentError);
    expect(err.message).toBe('parameters dt and DT would both be PORPOISE_PARAM_DT');
  });

  it('rejects a NUL in a value and an invalid name', () => {
    expect(() => paramEnvironment({ a: 'x\0y' })).toThrow(ParamEnvironmentError);
    expect(() => paramEnvironment({ 'a b': 'x' })).toThrow(InvalidParamNameError);
  });
});
