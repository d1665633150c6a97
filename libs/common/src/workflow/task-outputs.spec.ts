import {
  MAX_REJECTED_OUTPUT_REPORTS,
  MAX_TASK_OUTPUTS,
  MAX_TASK_OUTPUT_NAME_LENGTH,
  MAX_TASK_OUTPUT_VALUE_BYTES,
  TaskOutputCollector,
  parseTaskOutputs,
} from './task-outputs';

describe('parseTaskOutputs', () => {
  it.each([
    ['${setValue(a=1)}', { a: '1' }],
    ['echo done ${setValue(a=1)} and more', { a: '1' }],
    ['${setValue(a=1)}${setValue(b=2)} ${setValue(c=3)}', { a: '1', b: '2', c: '3' }],
    ['${setValue(msg=hello big world)}', { msg: 'hello big world' }],
    ['${setValue(v= padded )}', { v: ' padded ' }],
    ['${setValue( spaced =x)}', { spaced: 'x' }],
    ['${setValue(empty=)}', { empty: '' }],
    ['${setValue(eq=a=b==c)}', { eq: 'a=b==c' }],
    ['${setValue(paren=f(x) {y})}', { paren: 'f(x) {y}' }],
    ['${setValue(json={"k": [1, 2]})}', { json: '{"k": [1, 2]}' }],
    ['${setValue(a=x)}y)}', { a: 'x' }], // the first )} ends the value
    ['#{setValue(hash=1)}', { hash: '1' }],
    ['#{setValue(a=1)} ${setValue(b=2)}', { a: '1', b: '2' }],
    ['${setValue(a=1)} ${setValue(a=2)}', { a: '2' }],
    ['${setValue(_x9=ü 中文)}', { _x9: 'ü 中文' }],
    ['no outputs here', {}],
    ['${setvalue(a=1)} $setValue(a=1) {setValue(a=1)}', {}],
    ['', {}],
  ])('%j → %j', (line, outputs) => {
    expect(parseTaskOutputs(line).outputs).toEqual(outputs);
  });

  it('reads lines, or text with line breaks; the last value wins', () => {
    const lines = ['start', '${setValue(a=1)}', 'x ${setValue(b=2)}', '${setValue(a=3)}'];
    expect(parseTaskOutputs(lines).outputs).toEqual({ a: '3', b: '2' });
    expect(parseTaskOutputs(lines.join('\r\n')).outputs).toEqual({ a: '3', b: '2' });
    expect(parseTaskOutputs(['${setValue(a=1)}\n${setValue(c=4)}']).outputs).toEqual({ a: '1', c: '4' });
  });

  it('does not let a value span lines', () => {
    const result = parseTaskOutputs('${setValue(a=first\nsecond)}\n${setValue(b=ok)}');
    expect(result.outputs).toEqual({ b: 'ok' });
    expect(result.rejected).toEqual([{ name: 'a', reason: 'no )} after it on its line' }]);
  });

  it.each([
    ['${setValue(noequals)}', 'noequals', 'no = between the name and the value'],
    ['${setValue(=value)}', '', 'the name is not an identifier'],
    ['${setValue(1a=value)}', '1a', 'the name is not an identifier'],
    ['${setValue(a-b=value)}', 'a-b', 'the name is not an identifier'],
    ['${setValue(porpoise.x=value)}', 'porpoise.x', 'the name is not an identifier'],
    ['${setValue(a b=value)}', 'a b', 'the name is not an identifier'],
    ['${setValue(a=unclosed', 'a', 'no )} after it on its line'],
  ])('rejects %j', (line, name, reason) => {
    const result = parseTaskOutputs(line);
    expect(result.outputs).toEqual({});
    expect(result.rejectedCount).toBe(1);
    expect(result.rejected[0]?.name).toBe(name);
    expect(result.rejected[0]?.reason).toContain(reason);
  });

  it('keeps the good outputs of a line with a bad one', () => {
    const result = parseTaskOutputs('${setValue(1=x)} ${setValue(ok=y)}');
    expect(result.outputs).toEqual({ ok: 'y' });
    expect(result.rejectedCount).toBe(1);
  });

  it('documents its limits', () => {
    expect(MAX_TASK_OUTPUTS).toBe(100);
    expect(MAX_TASK_OUTPUT_VALUE_BYTES).toBe(65_536);
    expect(MAX_TASK_OUTPUT_NAME_LENGTH).toBe(255);
    expect(MAX_REJECTED_OUTPUT_REPORTS).toBe(100);
  });

  it('takes a value of up to 64 KiB in UTF-8 bytes, no more', () => {
    const max = 'x'.repeat(MAX_TASK_OUTPUT_VALUE_BYTES);
    expect(parseTaskOutputs(`\${setValue(v=${max})}`).outputs.v).toBe(max);
    const tooLong = parseTaskOutputs(`\${setValue(v=${max}y)}`);
    expect(tooLong.outputs).toEqual({});
    expect(tooLong.rejected[0]?.reason).toBe(`the value is longer than ${MAX_TASK_OUTPUT_VALUE_BYTES} bytes`);
    // 'é' is two bytes: half as many characters fill the limit.
    const wide = 'é'.repeat(MAX_TASK_OUTPUT_VALUE_BYTES / 2);
    expect(parseTaskOutputs(`\${setValue(v=${wide})}`).outputs.v).toBe(wide);
    expect(parseTaskOutputs(`\${setValue(v=${wide}é)}`).outputs).toEqual({});
  });

  it('takes a name of up to the limit', () => {
    const name = 'n'.repeat(MAX_TASK_OUTPUT_NAME_LENGTH);
    expect(Object.keys(parseTaskOutputs(`\${setValue(${name}=1)}`).outputs)).toEqual([name]);
    const result = parseTaskOutputs(`\${setValue(${name}n=1)}`);
    expect(result.outputs).toEqual({});
    expect(result.rejected[0]?.name).toHaveLength(100);
  });

  it('sets at most MAX_TASK_OUTPUTS names, but lets those be set again', () => {
    const lines = Array.from({ length: MAX_TASK_OUTPUTS + 5 }, (_, i) => `\${setValue(o${i}=${i})}`);
    lines.push('${setValue(o0=again)}');
    const result = parseTaskOutputs(lines);
    expect(Object.keys(result.outputs)).toHaveLength(MAX_TASK_OUTPUTS);
    expect(result.outputs.o0).toBe('again');
    expect(result.outputs[`o${MAX_TASK_OUTPUTS}`]).toBeUndefined();
    expect(result.rejectedCount).toBe(5);
    expect(result.rejected[0]).toEqual({
      name: `o${MAX_TASK_OUTPUTS}`,
      reason: 'a task sets at most 100 outputs',
    });
  });

  it('reports at most MAX_REJECTED_OUTPUT_REPORTS rejections, counting them all', () => {
    const result = parseTaskOutputs('${setValue(bad)}'.repeat(MAX_REJECTED_OUTPUT_REPORTS + 20));
    expect(result.rejected).toHaveLength(MAX_REJECTED_OUTPUT_REPORTS);
    expect(result.rejectedCount).toBe(MAX_REJECTED_OUTPUT_REPORTS + 20);
  });
});

describe('TaskOutputCollector', () => {
  it('collects line by line, as output arrives', () => {
    const collector = new TaskOutputCollector();
    collector.addLine('${setValue(a=1)}');
    expect(collector.result().outputs).toEqual({ a: '1' });
    collector.addText('x\n${setValue(b=2)}\n');
    collector.addLine('${setValue(a=3)}');
    expect(collector.result()).toEqual({ outputs: { a: '3', b: '2' }, rejected: [], rejectedCount: 0 });
  });

  it('gives a copy of its results', () => {
    const collector = new TaskOutputCollector();
    collector.addLine('${setValue(a=1)}');
    const first = collector.result();
    first.outputs.a = 'changed';
    expect(collector.result().outputs).toEqual({ a: '1' });
  });
});
