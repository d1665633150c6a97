/**
 * DolphinScheduler-style `$[...]` date expressions (DESIGN.md section 9, **Parameters**), relative
 * to a run's schedule time in a time zone. This module evaluates what is between the brackets.
 *
 * Forms (semantics follow DS's TimePlaceholderUtils):
 * - `pattern`: the schedule time formatted with a Java `DateTimeFormatter` pattern, e.g.
 *   `yyyyMMdd`, `yyyy-MM-dd HH:mm:ss`, `HHmmss`.
 * - `pattern+N`, `pattern-N`: shifted by N days; N is integer arithmetic (`+ - * / ( )`, e.g.
 *   `7*2`), and `N/D` is a fraction of a day as in DS (`HHmmss-1/24` is one hour earlier; the
 *   minutes are `60*24*(N)/D` in integer arithmetic, truncated like Java's). As in DS, the split is
 *   at the last `+` (or, without a `+`, the last `-`) that is followed by a digit, so
 *   `yyyy-MM-dd-1` is the day before and `yyyy-MM-dd` is just a pattern.
 * - functions (the pattern is their first argument; offsets are integer arithmetic):
 *   `add_months(p,N)`, `this_day(p)`, `last_day(p)` (the day before),
 *   `month_first_day(p[,N])`, `month_last_day(p[,N])` (first/last day of the month N months
 *   away), `week_first_day(p[,N])`, `week_last_day(p[,N])` (Monday/Sunday of the week N weeks
 *   away; weeks run Monday to Sunday), and DS's older `month_begin(p,N)`, `month_end(p,N)`,
 *   `week_begin(p,N)`, `week_end(p,N)` (first/last day of the month or week, then N days).
 *   The time of day is kept, as in DS. Other functions (DS's `timestamp`, `year_week`) are
 *   rejected.
 * A pattern must have at least one field: `$[0]` or `$[1+2]` is an error, not the text `0`.
 *
 * One deliberate difference from DS: a whole number of days is added in calendar days in the
 * time zone (DS adds 1440 minutes in the JVM's zone), so `$[yyyyMMdd-1]` is the day before even
 * across a daylight-saving change; fractions of a day are added as minutes.
 *
 * Pattern letters supported (Java `DateTimeFormatter` meaning, English names): y u (year; `yy`
 * two digits), M L (month: 1, 01, Jan, January, J), d, D (day of year), H, h, k, K, m, s,
 * S (fraction of a second), E (Mon, Monday, M), a (AM/PM), X x Z (offset), VV (zone id).
 * Text in single quotes is literal (`''` is a quote); other letters, and `[ ] { } #`, are rejected.
 */
import { DateTime } from 'luxon';
import { DateExpressionError, InvalidTimeZoneError } from './workflow-errors';

/** The functions a date expression may call, with how many arguments each takes. */
export const DATE_FUNCTIONS: Readonly<Record<string, { readonly min: number; readonly max: number }>> = {
  add_months: { min: 2, max: 2 },
  this_day: { min: 1, max: 1 },
  last_day: { min: 1, max: 1 },
  month_first_day: { min: 1, max: 2 },
  month_last_day: { min: 1, max: 2 },
  week_first_day: { min: 1, max: 2 },
  week_last_day: { min: 1, max: 2 },
  month_begin: { min: 2, max: 2 },
  month_end: { min: 2, max: 2 },
  week_begin: { min: 2, max: 2 },
  week_end: { min: 2, max: 2 },
};

const MINUTES_PER_DAY = 24 * 60;

/** Checks a date expression (what is between `$[` and `]`) without evaluating it. */
export function validateDateExpression(expression: string): void {
  compileDateExpression(expression);
}

/** Evaluates a date expression (what is between `$[` and `]`) at `scheduleTime` in `timezone`. */
export function evaluateDateExpression(expression: string, scheduleTime: Date, timezone: string): string {
  const compiled = compileDateExpression(expression);
  const shifted = compiled.shift(zonedTime(scheduleTime, timezone));
  return formatTokens(shifted, compiled.pattern);
}

/** `instant` in `timezone`, formatted with a Java `DateTimeFormatter` pattern (see above). */
export function formatDate(instant: Date, pattern: string, timezone: string): string {
  const tokens = compileOrThrow(pattern, () => compilePattern(pattern));
  return formatTokens(zonedTime(instant, timezone), tokens);
}

/** DS's `system.biz.date`: the day before the schedule time in `timezone`, as `yyyyMMdd`. */
export function bizDate(scheduleTime: Date, timezone: string): string {
  return zonedTime(scheduleTime, timezone).minus({ days: 1 }).toFormat('yyyyMMdd');
}

/** `instant` as a luxon time in `timezone`; rejects an invalid zone or date. */
function zonedTime(instant: Date, timezone: string): DateTime {
  if (Number.isNaN(instant.getTime())) throw new RangeError('invalid schedule time');
  if (timezone.trim() === '') throw new InvalidTimeZoneError(timezone);
  const time = DateTime.fromJSDate(instant, { zone: timezone });
  if (!time.isValid) throw new InvalidTimeZoneError(timezone);
  return time;
}

interface CompiledDateExpression {
  readonly pattern: readonly PatternToken[];
  readonly shift: (time: DateTime) => DateTime;
}

function compileDateExpression(expression: string): CompiledDateExpression {
  return compileOrThrow(expression, () => {
    const compiled = compileUnchecked(expression.trim());
    // A pattern without a field is no date expression: `$[0]` (a JSONPath), bash's `$[1+2]`.
    if (compiled.pattern.every((token) => 'literal' in token)) {
      throw new ExpressionProblem('the pattern has no date or time field');
    }
    return compiled;
  });
}

/** Runs `compile`, turning a problem it reports into a DateExpressionError naming `expression`. */
function compileOrThrow<T>(expression: string, compile: () => T): T {
  try {
    return compile();
  } catch (err) {
    if (err instanceof ExpressionProblem) throw new DateExpressionError(expression, err.message);
    throw err;
  }
}

/** A problem found while compiling; becomes a DateExpressionError naming the whole expression. */
class ExpressionProblem extends Error {}

function compileUnchecked(expression: string): CompiledDateExpression {
  if (expression === '') throw new ExpressionProblem('empty expression');
  const call = /^([A-Za-z_][A-Za-z0-9_]*)\s*\(([\s\S]*)\)$/.exec(expression);
  if (call) return compileCall(call[1] ?? '', call[2] ?? '');
  return compileShiftedPattern(expression);
}

function compileCall(name: string, argText: string): CompiledDateExpression {
  const arity = Object.hasOwn(DATE_FUNCTIONS, name) ? DATE_FUNCTIONS[name] : undefined;
  if (!arity) throw new ExpressionProblem(`unknown function '${name}'`);
  const args = argText.split(',').map((arg) => arg.trim());
  if (args.length < arity.min || args.length > arity.max) {
    const expected = arity.min === arity.max ? `${arity.min}` : `${arity.min} or ${arity.max}`;
    throw new ExpressionProblem(`${name} takes ${expected} argument(s), got ${args.length}`);
  }
  const [patternText = '', offsetText] = args;
  if (patternText === '') throw new ExpressionProblem(`${name}: the pattern is empty`);
  const pattern = compilePattern(patternText);
  const n = offsetText === undefined ? 0 : evaluateInteger(offsetText);
  const shifts: Record<string, (t: DateTime) => DateTime> = {
    add_months: (t) => t.plus({ months: n }),
    this_day: (t) => t,
    last_day: (t) => t.minus({ days: 1 }),
    month_first_day: (t) => t.set({ day: 1 }).plus({ months: n }),
    month_last_day: (t) => lastDayOfMonth(t.plus({ months: n })),
    week_first_day: (t) => t.set({ weekday: 1 }).plus({ weeks: n }),
    week_last_day: (t) => t.set({ weekday: 7 }).plus({ weeks: n }),
    month_begin: (t) => t.set({ day: 1 }).plus({ days: n }),
    month_end: (t) => lastDayOfMonth(t).plus({ days: n }),
    week_begin: (t) => t.set({ weekday: 1 }).plus({ days: n }),
    week_end: (t) => t.set({ weekday: 7 }).plus({ days: n }),
  };
  const shift = shifts[name];
  if (!shift) throw new ExpressionProblem(`unknown function '${name}'`);
  return { pattern, shift };
}

function lastDayOfMonth(time: DateTime): DateTime {
  return time.set({ day: time.daysInMonth ?? 28 });
}

/** `pattern`, `pattern+N`, `pattern-N` (DS's calcMinutes). */
function compileShiftedPattern(expression: string): CompiledDateExpression {
  let patternText = expression;
  let minutes = 0;
  const plus = expression.lastIndexOf('+');
  const minus = expression.lastIndexOf('-');
  if (plus !== -1) {
    if (isDigit(expression.charAt(plus + 1))) {
      patternText = expression.slice(0, plus);
      minutes = offsetMinutes(expression.slice(plus + 1));
    }
  } else if (minus !== -1 && isDigit(expression.charAt(minus + 1))) {
    patternText = expression.slice(0, minus);
    minutes = -offsetMinutes(expression.slice(minus + 1));
  }
  if (patternText.trim() === '') throw new ExpressionProblem('the pattern is empty');
  const pattern = compilePattern(patternText);
  const shift =
    minutes % MINUTES_PER_DAY === 0
      ? (t: DateTime) => t.plus({ days: minutes / MINUTES_PER_DAY })
      : (t: DateTime) => t.plus({ minutes });
  return { pattern, shift };
}

/** DS: `N` days is `60*24*(N)` minutes, `N/D` is `60*24*(N)/D`, in integer arithmetic. */
function offsetMinutes(text: string): number {
  const slash = text.indexOf('/');
  const formula =
    slash === -1
      ? `${MINUTES_PER_DAY}*(${text})`
      : `${MINUTES_PER_DAY}*(${text.slice(0, slash)})${text.slice(slash)}`;
  return evaluateInteger(formula, text);
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

/**
 * Integer arithmetic as DS computes offsets: integers, `+ - * /` (division truncates, like
 * Java's), unary signs, parentheses. `shown` is what an error message quotes.
 */
function evaluateInteger(text: string, shown: string = text): number {
  const tokens = text.match(/\d+|[-+*/()]|\S/g) ?? [];
  let pos = 0;
  const fail = (problem: string): never => {
    throw new ExpressionProblem(`offset '${shown.trim()}': ${problem}`);
  };
  const peek = (): string | undefined => tokens[pos];
  const expression = (): number => {
    let value = term();
    for (let op = peek(); op === '+' || op === '-'; op = peek()) {
      pos++;
      const right = term();
      value = op === '+' ? value + right : value - right;
    }
    return value;
  };
  const term = (): number => {
    let value = factor();
    for (let op = peek(); op === '*' || op === '/'; op = peek()) {
      pos++;
      const right = factor();
      if (op === '/' && right === 0) fail('division by zero');
      value = op === '*' ? value * right : Math.trunc(value / right);
    }
    return value;
  };
  const factor = (): number => {
    const token = peek();
    pos++;
    if (token === undefined) return fail('unexpected end');
    if (token === '-') return -factor();
    if (token === '+') return factor();
    if (token === '(') {
      const value = expression();
      if (peek() !== ')') fail('missing )');
      pos++;
      return value;
    }
    if (/^\d+$/.test(token)) return Number(token);
    return fail(`unexpected '${token}'`);
  };
  const value = expression();
  if (pos < tokens.length) fail(`unexpected '${tokens[pos] ?? ''}'`);
  if (!Number.isSafeInteger(value)) fail('out of range');
  return value === 0 ? 0 : value; // no -0
}

// ---- Java DateTimeFormatter patterns ----

type PatternToken = { readonly literal: string } | { readonly letter: string; readonly count: number };

/** The most letters each supported pattern letter may repeat (DateTimeFormatter's limits). */
const MAX_LETTERS: Readonly<Record<string, number>> = {
  y: 19,
  u: 19,
  M: 5,
  L: 5,
  d: 2,
  D: 3,
  H: 2,
  h: 2,
  k: 2,
  K: 2,
  m: 2,
  s: 2,
  S: 9,
  E: 5,
  a: 1,
  X: 5,
  x: 5,
  Z: 5,
  V: 2,
};

function compilePattern(pattern: string): PatternToken[] {
  const tokens: PatternToken[] = [];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern.charAt(i);
    if (c === "'") {
      // Quoted text is literal; '' is a quote, inside quoted text or out of it.
      let literal = '';
      let j = i + 1;
      if (pattern.charAt(j) === "'") {
        literal = "'";
      } else {
        for (;;) {
          if (j >= pattern.length) throw new ExpressionProblem(`unterminated quote in pattern '${pattern}'`);
          const ch = pattern.charAt(j);
          if (ch === "'" && pattern.charAt(j + 1) === "'") {
            literal += "'";
            j += 2;
          } else if (ch === "'") {
            break;
          } else {
            literal += ch;
            j++;
          }
        }
      }
      tokens.push({ literal });
      i = j + 1;
    } else if (/[A-Za-z]/.test(c)) {
      let count = 1;
      while (pattern.charAt(i + count) === c) count++;
      const max = Object.hasOwn(MAX_LETTERS, c) ? MAX_LETTERS[c] : undefined;
      if (max === undefined) throw new ExpressionProblem(`unsupported pattern letter '${c}'`);
      if (count > max) throw new ExpressionProblem(`too many pattern letters '${c.repeat(count)}'`);
      if (c === 'V' && count !== 2) throw new ExpressionProblem(`pattern letter V must be VV`);
      tokens.push({ letter: c, count });
      i += count;
    } else if ('[]{}#'.includes(c)) {
      throw new ExpressionProblem(`unsupported character '${c}' in pattern '${pattern}'`);
    } else {
      tokens.push({ literal: c });
      i++;
    }
  }
  return tokens;
}

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

function pad(value: number, width: number): string {
  const digits = String(Math.abs(value)).padStart(width, '0');
  return value < 0 ? `-${digits}` : digits;
}

/** A name in DateTimeFormatter's text styles: 3 letters short, 4 full, 5 narrow. */
function text(name: string, count: number): string {
  if (count === 4) return name;
  if (count === 5) return name.charAt(0);
  return name.slice(0, 3);
}

function formatTokens(time: DateTime, tokens: readonly PatternToken[]): string {
  return tokens.map((token) => ('literal' in token ? token.literal : formatField(time, token))).join('');
}

function formatField(time: DateTime, { letter, count }: { letter: string; count: number }): string {
  switch (letter) {
    case 'y':
    case 'u':
      return count === 2 ? pad(time.year % 100, 2) : pad(time.year, count);
    case 'M':
    case 'L':
      return count >= 3 ? text(MONTHS[time.month - 1] ?? '', count) : pad(time.month, count);
    case 'd':
      return pad(time.day, count);
    case 'D':
      return pad(time.ordinal, count);
    case 'H':
      return pad(time.hour, count);
    case 'h':
      return pad(time.hour % 12 === 0 ? 12 : time.hour % 12, count);
    case 'k':
      return pad(time.hour === 0 ? 24 : time.hour, count);
    case 'K':
      return pad(time.hour % 12, count);
    case 'm':
      return pad(time.minute, count);
    case 's':
      return pad(time.second, count);
    case 'S':
      return pad(time.millisecond, 3).padEnd(count, '0').slice(0, count);
    case 'E':
      return text(WEEKDAYS[time.weekday - 1] ?? '', count);
    case 'a':
      return time.hour < 12 ? 'AM' : 'PM';
    case 'X':
    case 'x':
      return formatOffset(time.offset, count, letter === 'X' ? 'Z' : undefined);
    case 'Z':
      if (count <= 3) return formatOffset(time.offset, 2);
      if (count === 4) return time.offset === 0 ? 'GMT' : `GMT${formatOffset(time.offset, 3)}`;
      return formatOffset(time.offset, 3, 'Z');
    case 'V':
      return time.zoneName ?? '';
    default:
      throw new ExpressionProblem(`unsupported pattern letter '${letter}'`);
  }
}

/**
 * An offset in DateTimeFormatter's X/x styles: 1 `+08` (`+0530` when there are minutes),
 * 2 and 4 `+0800`, 3 and 5 `+08:00`; `zero` replaces a zero offset (`Z` for X).
 */
function formatOffset(offsetMinutes: number, count: number, zero?: string): string {
  if (offsetMinutes === 0 && zero !== undefined) return zero;
  const sign = offsetMinutes < 0 ? '-' : '+';
  const hours = pad(Math.floor(Math.abs(offsetMinutes) / 60), 2);
  const minutes = pad(Math.abs(offsetMinutes) % 60, 2);
  if (count === 1) return minutes === '00' ? `${sign}${hours}` : `${sign}${hours}${minutes}`;
  if (count === 2 || count === 4) return `${sign}${hours}${minutes}`;
  return `${sign}${hours}:${minutes}`;
}
