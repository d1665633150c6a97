import { bizDate, evaluateDateExpression, formatDate, validateDateExpression } from './date-expression';
import { DateExpressionError, InvalidTimeZoneError, WorkflowLanguageError } from './workflow-errors';

// Friday 2024-03-15 10:20:30.123 UTC = 18:20:30.123 in Shanghai.
const FRIDAY = new Date('2024-03-15T10:20:30.123Z');
// Sunday 2024-03-31 16:30 UTC = Monday 2024-04-01 00:30 in Shanghai: another day, week and month.
const BOUNDARY = new Date('2024-03-31T16:30:00Z');

describe('evaluateDateExpression', () => {
  it.each([
    // plain patterns and day offsets
    ['yyyyMMdd', '20240315'],
    ['yyyyMMdd-1', '20240314'],
    ['yyyyMMdd+7', '20240322'],
    ['yyyyMMdd-1*7', '20240308'],
    ['yyyyMMdd+1-1', '20240315'],
    ['yyyyMMdd-31', '20240213'],
    ['yyyy-MM-dd', '2024-03-15'],
    ['yyyy-MM-dd-1', '2024-03-14'],
    ['yyyy-MM-dd+1', '2024-03-16'],
    ['yyyy-MM-dd HH:mm:ss', '2024-03-15 10:20:30'],
    ['yyyy-MM-dd HH:mm:ss-1', '2024-03-14 10:20:30'],
    [' yyyyMMdd ', '20240315'],
    // fractions of a day, DS style: 60*24*(N)/D minutes
    ['HHmmss', '102030'],
    ['HHmmss-1/24', '092030'],
    ['HHmmss+1/24', '112030'],
    ['HH:mm-1/48', '09:50'],
    ['yyyyMMddHHmm-1/1440', '202403151019'],
    ['HH:mm:ss-3/24', '07:20:30'],
    ['HH:mm-1/7', '06:55'], // 1440/7 = 205 minutes (integer division)
    // functions
    ['add_months(yyyyMMdd,-1)', '20240215'],
    ['add_months(yyyyMMdd,12*2)', '20260315'],
    ['add_months( yyyy-MM-dd , 1 )', '2024-04-15'],
    ['add_months(yyyyMMdd,0)', '20240315'],
    ['this_day(yyyy-MM-dd)', '2024-03-15'],
    ['last_day(yyyy-MM-dd)', '2024-03-14'],
    ['month_first_day(yyyy-MM-dd)', '2024-03-01'],
    ['month_first_day(yyyy-MM-dd,-1)', '2024-02-01'],
    ['month_first_day(yyyy-MM-dd,1)', '2024-04-01'],
    ['month_last_day(yyyy-MM-dd)', '2024-03-31'],
    ['month_last_day(yyyy-MM-dd,-1)', '2024-02-29'],
    ['month_last_day(yyyy-MM-dd,-13)', '2023-02-28'],
    ['week_first_day(yyyy-MM-dd)', '2024-03-11'],
    ['week_first_day(yyyy-MM-dd,-1)', '2024-03-04'],
    ['week_first_day(yyyy-MM-dd HH:mm:ss,0)', '2024-03-11 10:20:30'],
    ['week_last_day(yyyy-MM-dd)', '2024-03-17'],
    ['week_last_day(yyyy-MM-dd,-1)', '2024-03-10'],
    ['month_begin(yyyyMMdd,1)', '20240302'],
    ['month_end(yyyyMMdd,-1)', '20240330'],
    ['week_begin(yyyyMMdd,-7)', '20240304'],
    ['week_end(yyyyMMdd,0)', '20240317'],
  ])('$[%s] at Friday 2024-03-15 10:20:30 UTC is %s', (expression, expected) => {
    expect(evaluateDateExpression(expression, FRIDAY, 'UTC')).toBe(expected);
  });

  it.each([
    ['yyyyMMdd', '20240331', '20240401'],
    ['yyyyMMdd-1', '20240330', '20240331'],
    ['yyyy-MM-dd HH:mm:ss', '2024-03-31 16:30:00', '2024-04-01 00:30:00'],
    ['HH:mm-1/24', '15:30', '23:30'],
    ['month_first_day(yyyyMMdd)', '20240301', '20240401'],
    ['month_last_day(yyyyMMdd)', '20240331', '20240430'],
    ['week_first_day(yyyyMMdd)', '20240325', '20240401'],
    ['week_last_day(yyyyMMdd)', '20240331', '20240407'],
    ['last_day(yyyyMMdd)', '20240330', '20240331'],
    ['add_months(yyyyMMdd,-1)', '20240229', '20240301'],
  ])('$[%s] at a day boundary: %s in UTC, %s in Asia/Shanghai', (expression, utc, shanghai) => {
    expect(evaluateDateExpression(expression, BOUNDARY, 'UTC')).toBe(utc);
    expect(evaluateDateExpression(expression, BOUNDARY, 'Asia/Shanghai')).toBe(shanghai);
  });

  it.each([
    ['add_months(yyyy-MM-dd,1)', '2024-02-29'],
    ['add_months(yyyy-MM-dd,13)', '2025-02-28'],
    ['month_last_day(yyyy-MM-dd,1)', '2024-02-29'],
    ['month_first_day(yyyy-MM-dd,1)', '2024-02-01'],
  ])('clamps to the end of a shorter month: $[%s] from 2024-01-31 is %s', (expression, expected) => {
    expect(evaluateDateExpression(expression, new Date('2024-01-31T12:00:00Z'), 'UTC')).toBe(expected);
  });

  it('adds whole days in calendar days across a daylight-saving change, fractions in minutes', () => {
    // 2024-03-11 00:30 EDT; the day before had 23 hours (DST started 2024-03-10 02:00).
    const afterDst = new Date('2024-03-11T04:30:00Z');
    expect(evaluateDateExpression('yyyyMMdd-1', afterDst, 'America/New_York')).toBe('20240310');
    expect(evaluateDateExpression('yyyy-MM-dd HH:mm-1', afterDst, 'America/New_York')).toBe(
      '2024-03-10 00:30',
    );
    expect(evaluateDateExpression('yyyy-MM-dd HH:mm-1/24', afterDst, 'America/New_York')).toBe(
      '2024-03-10 23:30',
    );
  });

  it.each([
    ["yyyy-MM-dd'T'HH:mm:ss.SSSXXX", '2024-03-15T10:20:30.123Z', '2024-03-15T18:20:30.123+08:00'],
    ['yy/M/d H:m:s', '24/3/15 10:20:30', '24/3/15 18:20:30'],
    ['y u uu yyyyy', '2024 2024 24 02024', '2024 2024 24 02024'],
    ['EEE EEEE EEEEE MMM MMMM MMMMM LLL', 'Fri Friday F Mar March M Mar', 'Fri Friday F Mar March M Mar'],
    ['hh a', '10 AM', '06 PM'],
    ['h K k', '10 10 10', '6 6 18'],
    ['D DD DDD', '75 75 075', '75 75 075'],
    ['S SS SSS SSSS', '1 12 123 1230', '1 12 123 1230'],
    ['X XX XXX x xx xxx', 'Z Z Z +00 +0000 +00:00', '+08 +0800 +08:00 +08 +0800 +08:00'],
    ['Z ZZZZ ZZZZZ', '+0000 GMT Z', '+0800 GMT+08:00 +08:00'],
    ['VV', 'UTC', 'Asia/Shanghai'],
    ["yyyy''MM", "2024'03", "2024'03"],
    ["'it''s' yyyy", "it's 2024", "it's 2024"],
    ["'yyyy-MM-dd:' yyyy", 'yyyy-MM-dd: 2024', 'yyyy-MM-dd: 2024'],
  ])('formats the Java pattern %s: %s in UTC, %s in Shanghai', (pattern, utc, shanghai) => {
    expect(evaluateDateExpression(pattern, FRIDAY, 'UTC')).toBe(utc);
    expect(evaluateDateExpression(pattern, FRIDAY, 'Asia/Shanghai')).toBe(shanghai);
  });

  it('formats midnight hours and half-hour offsets', () => {
    const midnight = new Date('2024-03-31T16:30:00Z'); // 00:30 in Shanghai
    expect(evaluateDateExpression('H HH h K k a', midnight, 'Asia/Shanghai')).toBe('0 00 12 0 24 AM');
    expect(evaluateDateExpression('X XXX Z', midnight, 'Asia/Kolkata')).toBe('+0530 +05:30 +0530');
    expect(evaluateDateExpression('XXX', midnight, 'America/New_York')).toBe('-04:00');
  });

  it.each([
    ['', 'empty expression'],
    ['   ', 'empty expression'],
    ['foo(yyyy)', "unknown function 'foo'"],
    ['timestamp(yyyyMMddHHmmss)', "unknown function 'timestamp'"],
    ['year_week(yyyy-MM-dd)', "unknown function 'year_week'"],
    ['add_months(yyyyMMdd)', 'add_months takes 2 argument(s), got 1'],
    ['this_day(yyyyMMdd,1)', 'this_day takes 1 argument(s), got 2'],
    ['month_first_day(yyyyMMdd,1,2)', 'month_first_day takes 1 or 2 argument(s), got 3'],
    ['add_months(,1)', 'add_months: the pattern is empty'],
    ['add_months(yyyyMMdd,x)', "offset 'x': unexpected 'x'"],
    ['add_months(yyyyMMdd,)', "offset '': unexpected end"],
    ['add_months(yyyyMMdd,(1)', "offset '(1': missing )"],
    ['yyyyMMdd-1/0', "offset '1/0': division by zero"],
    ['yyyyMMdd-1)', "offset '1)': unexpected ')'"],
    ['yyyyMMdd-(1+1)', "offset '1)': unexpected ')'"],
    ['yyyyMMdd-99999999999999999999', 'out of range'],
    ['-1', 'the pattern is empty'],
    ['yyyyQ', "unsupported pattern letter 'Q'"],
    ['YYYY-ww', "unsupported pattern letter 'Y'"],
    ['V', 'pattern letter V must be VV'],
    ["yyyy'x", 'unterminated quote'],
    ['ddd', "too many pattern letters 'ddd'"],
    ['aa', "too many pattern letters 'aa'"],
    ['[yyyy]', "unsupported character '['"],
    ['yyyy#', "unsupported character '#'"],
    ['0', 'the pattern has no date or time field'],
    ['1+2', 'the pattern has no date or time field'],
    ["'yyyy'", 'the pattern has no date or time field'],
  ])('rejects $[%s]: %s', (expression, problem) => {
    const run = () => evaluateDateExpression(expression, FRIDAY, 'UTC');
    expect(run).toThrow(DateExpressionError);
    expect(run).toThrow(`date expression $[${expression}]: `);
    expect(run).toThrow(problem);
    expect(() => validateDateExpression(expression)).toThrow(DateExpressionError);
  });

  it('names the expression on the error, and is a WorkflowLanguageError', () => {
    try {
      evaluateDateExpression('nope(yyyy)', FRIDAY, 'UTC');
      throw new Error('no error');
    } catch (err) {
      expect(err).toBeInstanceOf(WorkflowLanguageError);
      expect(err).toMatchObject({ name: 'DateExpressionError', expression: 'nope(yyyy)' });
    }
  });

  it('validates without a date', () => {
    expect(() => validateDateExpression('add_months(yyyyMMdd,-1)')).not.toThrow();
    expect(() => validateDateExpression('HHmmss-1/24')).not.toThrow();
  });

  it.each(['Mars/Base', '', ' ', 'not a zone'])('rejects the time zone %j', (zone) => {
    expect(() => evaluateDateExpression('yyyyMMdd', FRIDAY, zone)).toThrow(InvalidTimeZoneError);
  });

  it('accepts fixed-offset zones', () => {
    expect(evaluateDateExpression('HH:mm', FRIDAY, 'UTC+8')).toBe('18:20');
  });

  it('rejects an invalid schedule time', () => {
    expect(() => evaluateDateExpression('yyyyMMdd', new Date(Number.NaN), 'UTC')).toThrow(RangeError);
  });
});

describe('bizDate', () => {
  it.each([
    ['2024-01-01T16:30:00Z', 'UTC', '20231231'],
    ['2024-01-01T16:30:00Z', 'Asia/Shanghai', '20240101'], // already 2024-01-02 00:30 there
    ['2024-01-01T15:59:59Z', 'Asia/Shanghai', '20231231'],
    ['2024-01-01T00:00:00Z', 'UTC', '20231231'],
    ['2024-03-01T00:00:00Z', 'UTC', '20240229'],
    ['2024-01-01T04:59:00Z', 'America/New_York', '20231230'], // 2023-12-31 23:59 there
  ])('at %s in %s is %s', (time, zone, expected) => {
    expect(bizDate(new Date(time), zone)).toBe(expected);
  });

  it('rejects an invalid time zone', () => {
    expect(() => bizDate(FRIDAY, 'Nowhere/Land')).toThrow(InvalidTimeZoneError);
  });
});

describe('formatDate', () => {
  it('formats an instant with a Java pattern in a zone', () => {
    expect(formatDate(FRIDAY, 'yyyy-MM-dd HH:mm', 'Asia/Shanghai')).toBe('2024-03-15 18:20');
    expect(formatDate(FRIDAY, "'day' D", 'UTC')).toBe('day 75');
  });

  it('rejects an unknown letter, naming the pattern', () => {
    expect(() => formatDate(FRIDAY, 'yyyy-QQ', 'UTC')).toThrow('date expression $[yyyy-QQ]');
  });
});
