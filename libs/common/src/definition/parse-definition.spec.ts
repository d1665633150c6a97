import { DefinitionError } from './definition-error';
import { DEFINITION_LIMITS } from './definition-limits';
import { PRIORITIES, priorityRank } from './definition-types';
import {
  branchTargets,
  definitionReferences,
  parseWorkflowDefinition,
  type ParseDefinitionOptions,
} from './parse-definition';

const COMMON_DEFAULTS = { retries: 0, retryIntervalMs: 1000, timeoutMs: 0, workerGroup: 'default' };

const shell = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  type: 'SHELL',
  command: `echo ${name}`,
  ...extra,
});
const empty = (name: string) => ({ name, type: 'EMPTY' });
const http = (name: string, spec: Record<string, unknown> = {}) => ({
  name,
  type: 'HTTP',
  http: { method: 'GET', url: 'https://example.org/x', ...spec },
});
const sql = (name: string, spec: Record<string, unknown> = {}) => ({
  name,
  type: 'SQL',
  sql: { datasource: 'dw', statement: 'select 1', ...spec },
});
const sub = (name: string, spec: Record<string, unknown> = {}) => ({
  name,
  type: 'SUB_WORKFLOW',
  subWorkflow: { workflowCode: 'wf_child', ...spec },
});
const conditions = (name: string, spec: Record<string, unknown>) => ({
  name,
  type: 'CONDITIONS',
  conditions: spec,
});
const switchTask = (name: string, spec: Record<string, unknown>) => ({ name, type: 'SWITCH', switch: spec });
const dependent = (name: string, spec: Record<string, unknown> = {}) => ({
  name,
  type: 'DEPENDENT',
  dependent: { workflowCode: 'wf_up', interval: 'day', ...spec },
});
const edge = (from: string, to: string) => ({ from, to });
/** A workflow of the given tasks; edges default to none. */
const wf = (tasks: unknown[], edges: unknown[] = [], extra: Record<string, unknown> = {}) => ({
  name: 'w',
  tasks,
  edges,
  ...extra,
});
/** c -> a, c -> b: a branching task `c` with two direct downstream tasks. */
const branching = (task: unknown, more: unknown[] = [], moreEdges: unknown[] = []) =>
  wf([task, empty('a'), empty('b'), ...more], [edge('c', 'a'), edge('c', 'b'), ...moreEdges]);

function rejection(body: unknown, options?: ParseDefinitionOptions): { message: string; path: string } {
  try {
    parseWorkflowDefinition(body, options);
  } catch (err) {
    if (err instanceof DefinitionError) return { message: err.message, path: err.path };
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(body).slice(0, 200)}`);
}

describe('parseWorkflowDefinition: valid definitions', () => {
  it('fills in the workflow and task defaults, keeping the order of tasks and edges', () => {
    expect(parseWorkflowDefinition(wf([shell('b'), shell('a')], [edge('b', 'a')]))).toEqual({
      name: 'w',
      description: '',
      params: {},
      failureStrategy: 'END',
      timeoutMs: 0,
      tasks: [
        { name: 'b', type: 'SHELL', command: 'echo b', ...COMMON_DEFAULTS },
        { name: 'a', type: 'SHELL', command: 'echo a', ...COMMON_DEFAULTS },
      ],
      edges: [{ from: 'b', to: 'a' }],
    });
    expect(parseWorkflowDefinition({ name: 'w', tasks: [empty('a')] }).edges).toEqual([]);
  });

  it('keeps workflow settings and common task fields at their limits', () => {
    const parsed = parseWorkflowDefinition(
      wf(
        [
          shell('t'.repeat(100), {
            retries: 100,
            retryIntervalMs: 0,
            timeoutMs: 2 ** 31 - 1,
            workerGroup: 'a.b_c-1',
          }),
        ],
        [],
        {
          name: 'n'.repeat(200),
          description: '',
          params: { day: '2024-01-01', _x: '', __proto__x: 'p' },
          failureStrategy: 'CONTINUE',
          timeoutMs: 2 ** 31 - 1,
        },
      ),
    );
    expect(parsed).toMatchObject({
      params: { day: '2024-01-01', _x: '', __proto__x: 'p' },
      failureStrategy: 'CONTINUE',
      timeoutMs: 2 ** 31 - 1,
    });
    expect(parsed.tasks[0]).toMatchObject({
      retries: 100,
      retryIntervalMs: 0,
      timeoutMs: 2 ** 31 - 1,
      workerGroup: 'a.b_c-1',
    });
  });

  it('keeps a workflow and a task priority when given, and leaves them absent (MEDIUM) otherwise', () => {
    const def = parseWorkflowDefinition(
      wf([{ ...shell('a'), priority: 'HIGH' }, shell('b')], [], { priority: 'LOWEST' }),
    );
    expect(def.priority).toBe('LOWEST');
    expect(def.tasks.map((t) => t.priority)).toEqual(['HIGH', undefined]);
    expect('priority' in parseWorkflowDefinition(wf([shell('a')]))).toBe(false);
    expect(PRIORITIES.map((p) => priorityRank(p))).toEqual([0, 1, 2, 3, 4]);
    expect(priorityRank(undefined)).toBe(priorityRank('MEDIUM'));
  });

  it("keeps a workflow tenant when given (its shape only: TASK_TENANTS is the API server's), absent otherwise", () => {
    expect(parseWorkflowDefinition(wf([shell('a')], [], { tenant: 'etl_1' })).tenant).toBe('etl_1');
    expect('tenant' in parseWorkflowDefinition(wf([shell('a')]))).toBe(false);
  });

  it('a param named __proto__ stays an own param', () => {
    const parsed = parseWorkflowDefinition(
      wf([empty('a')], [], { params: JSON.parse('{"__proto__": "x"}') }),
    );
    expect(Object.hasOwn(parsed.params, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(parsed.params)).toBe(Object.prototype);
  });

  it.each([
    ['SHELL', shell('t', { command: 'echo ${day} $[yyyyMMdd-1] ${HOME} ${porpoise.taskName}' })],
    ['EMPTY', empty('t')],
    [
      'HTTP (every field)',
      http('t', {
        method: 'POST',
        url: 'https://example.org/api?day=${day}',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ${token}' },
        body: '{"day": "${day}"}',
        expectStatus: [200, 201],
        timeoutMs: 5000,
      }),
    ],
    ['HTTP (url from a param)', http('t', { url: '${baseUrl}/items' })],
    ['HTTP (upper-case scheme, port)', http('t', { url: 'HTTP://127.0.0.1:8080', method: 'DELETE' })],
    ['SQL', sql('t', { statement: "select * from t where day = ${day} and kind = '${kind}' -- ${ignored" })],
    ['SUB_WORKFLOW', sub('t', { params: { day: '${day}', fixed: 'x' } })],
    ['SUB_WORKFLOW without params', sub('t')],
    [
      'DEPENDENT (every field)',
      dependent('t', { taskName: 'load', interval: 'week', offset: -10_000, checkIntervalMs: 1000 }),
    ],
    [
      'DEPENDENT (hour, a positive offset)',
      dependent('t', { interval: 'hour', offset: 10_000, checkIntervalMs: 2 ** 31 - 1 }),
    ],
  ])('accepts a %s task as given, defaults added', (_what, task) => {
    const parsed = parseWorkflowDefinition(wf([task]));
    expect(parsed.tasks).toEqual([{ ...task, ...COMMON_DEFAULTS }]);
  });

  it('accepts CONDITIONS and SWITCH whose targets are direct downstream tasks', () => {
    const cond = conditions('c', { success: ['a'], failure: ['b'] });
    expect(parseWorkflowDefinition(branching(cond)).tasks[0]).toEqual({ ...cond, ...COMMON_DEFAULTS });
    const onlySuccess = conditions('c', { success: ['a', 'b'] });
    expect(parseWorkflowDefinition(branching(onlySuccess)).tasks[0]).toMatchObject({
      conditions: { success: ['a', 'b'], failure: [] },
    });
    const sw = switchTask('c', {
      cases: [{ when: "${region} == 'eu' && ${n} > 3", then: 'a' }],
      default: 'b',
    });
    expect(parseWorkflowDefinition(branching(sw)).tasks[0]).toEqual({ ...sw, ...COMMON_DEFAULTS });
    const noDefault = switchTask('c', { cases: [{ when: '!(${x} == 1)', then: 'b' }] });
    expect(parseWorkflowDefinition(branching(noDefault)).tasks[0]).toEqual({
      ...noDefault,
      ...COMMON_DEFAULTS,
    });
  });

  it('gives every task its fields in the documented order', () => {
    const parsed = parseWorkflowDefinition(
      wf([
        { workerGroup: 'g', retries: 1, http: { url: 'http://h/', method: 'GET' }, type: 'HTTP', name: 'h' },
      ]),
    );
    expect(Object.keys(parsed.tasks[0] ?? {})).toEqual([
      'name',
      'type',
      'http',
      'retries',
      'retryIntervalMs',
      'timeoutMs',
      'workerGroup',
    ]);
    expect(Object.keys(parsed)).toEqual([
      'name',
      'description',
      'params',
      'failureStrategy',
      'timeoutMs',
      'tasks',
      'edges',
    ]);
  });

  it('fills in the DEPENDENT defaults: offset 0, checked every 10 s', () => {
    expect(parseWorkflowDefinition(wf([dependent('d', { interval: 'month' })])).tasks[0]).toEqual({
      name: 'd',
      type: 'DEPENDENT',
      dependent: { workflowCode: 'wf_up', interval: 'month', offset: 0, checkIntervalMs: 10_000 },
      ...COMMON_DEFAULTS,
    });
  });

  it('lists the data sources, sub-workflows and awaited workflows it names, each once', () => {
    const parsed = parseWorkflowDefinition(
      wf([
        sql('q1'),
        sql('q2', { datasource: 'other' }),
        sql('q3'),
        sub('s1'),
        sub('s2'),
        shell('x'),
        dependent('d1'),
        dependent('d2', { workflowCode: 'wf_child' }),
        dependent('d3'),
      ]),
    );
    expect(definitionReferences(parsed)).toEqual({
      datasourceNames: ['dw', 'other'],
      subWorkflowCodes: ['wf_child'],
      dependentWorkflowCodes: ['wf_up', 'wf_child'],
      taskGroupNames: [],
    });
  });

  it("keeps a worker task's taskGroup and lists the task groups it names, each once", () => {
    const parsed = parseWorkflowDefinition(
      wf([shell('a', { taskGroup: 'etl' }), sql('q', {}), shell('b', { taskGroup: 'etl' }), empty('c')]),
    );
    expect(parsed.tasks[0]).toEqual({ ...shell('a'), ...COMMON_DEFAULTS, taskGroup: 'etl' });
    expect(parsed.tasks[3]).not.toHaveProperty('taskGroup');
    expect(definitionReferences(parsed).taskGroupNames).toEqual(['etl']);
  });

  it('names the branch targets of CONDITIONS and SWITCH', () => {
    const parsed = parseWorkflowDefinition(
      wf(
        [
          conditions('c', { success: ['a'], failure: ['b'] }),
          switchTask('s', { cases: [{ when: 'true', then: 'x' }], default: 'y' }),
          empty('a'),
          empty('b'),
          empty('x'),
          empty('y'),
        ],
        [edge('c', 'a'), edge('c', 'b'), edge('s', 'x'), edge('s', 'y')],
      ),
    );
    expect(parsed.tasks.map(branchTargets)).toEqual([['a', 'b'], ['x', 'y'], [], [], [], []]);
  });

  it('parses a 100,000-task chain when the limits allow it (linear, no recursion)', () => {
    const tasks = Array.from({ length: 100_000 }, (_, i) => empty(`t${i}`));
    const edges = tasks.slice(1).map((t, i) => edge(`t${i}`, t.name));
    const limits = { tasks: 100_000, edges: 100_000 };
    expect(parseWorkflowDefinition(wf(tasks, edges), { limits }).tasks).toHaveLength(100_000);
    const cycle = rejection(wf(tasks, [...edges, edge('t99999', 't0')]), { limits });
    // A long cycle is shortened in the message: its ends are kept.
    expect(cycle.message).toMatch(/^cycle: t0 -> t1 -> .* -> … 99982 more … -> t99999 -> t0$/);
    expect(cycle.message.length).toBeLessThan(300);
  });
});

describe('parseWorkflowDefinition: every problem is named, with its path', () => {
  const bigParams = Object.fromEntries(
    Array.from({ length: 17 }, (_, i) => [`p${i}`, 'x'.repeat(64 * 1024)]),
  );
  const cases: Array<[string, unknown, RegExp, string]> = [
    // ---- the workflow ----
    ['a body that is not an object', null, /^workflow definition must be a JSON object, got null$/, ''],
    ['an array body', [shell('a')], /must be a JSON object, got an array/, ''],
    [
      'unknown top-level fields',
      { ...wf([shell('a')]), owner: 'me', a: 1 },
      /^workflow: unknown fields "owner", "a" \(allowed: name, description, params, failureStrategy, timeoutMs, priority, concurrency, tenant, tasks, edges\)$/,
      'owner',
    ],
    ['a missing name', { tasks: [shell('a')] }, /^workflow: missing field "name"$/, 'name'],
    ['an empty name', wf([shell('a')], [], { name: '  ' }), /^workflow: "name" must not be empty$/, 'name'],
    ['a numeric name', wf([shell('a')], [], { name: 5 }), /"name" must be a string, got a number/, 'name'],
    ['a name too long', wf([shell('a')], [], { name: 'n'.repeat(201) }), /"name" is longer than 200/, 'name'],
    [
      'a description too long',
      wf([shell('a')], [], { description: 'd'.repeat(10_001) }),
      /"description" is longer/,
      'description',
    ],
    [
      'params not an object',
      wf([shell('a')], [], { params: ['x'] }),
      /^workflow: "params" must be an object of strings, got an array$/,
      'params',
    ],
    [
      'a param name with a space',
      wf([shell('a')], [], { params: { 'a b': '' } }),
      /^workflow: param name "a b" in "params" is invalid \(a letter or _/,
      'params["a b"]',
    ],
    [
      'a param name starting with a digit',
      wf([shell('a')], [], { params: { '1a': '' } }),
      /param name "1a" in "params" is invalid/,
      'params["1a"]',
    ],
    [
      'a param name too long',
      wf([shell('a')], [], { params: { ['n'.repeat(129)]: '' } }),
      /at most 128 characters/,
      `params.${'n'.repeat(129)}`,
    ],
    [
      'a param that is not a string',
      wf([shell('a')], [], { params: { n: 5 } }),
      /^workflow: param "n" in "params" must be a string, got a number$/,
      'params.n',
    ],
    [
      'a param with NUL',
      wf([shell('a')], [], { params: { n: 'a\u0000b' } }),
      /param "n" in "params" must not contain NUL/,
      'params.n',
    ],
    [
      'a param over 64 KiB',
      wf([shell('a')], [], { params: { n: 'é'.repeat(32_769) } }),
      /param "n" in "params" is larger than 65536 bytes/,
      'params.n',
    ],
    [
      '101 params',
      wf([shell('a')], [], {
        params: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`p${i}`, ''])),
      }),
      /"params" has more than 100 params/,
      'params',
    ],
    [
      'params over 1 MiB together',
      wf([shell('a')], [], { params: bigParams }),
      /"params" are larger than 1048576 bytes together/,
      'params',
    ],
    [
      'params differing only in case',
      wf([shell('a')], [], { params: { day: '', DAY: '' } }),
      /params "day" and "DAY" in "params" would both be PORPOISE_PARAM_DAY/,
      'params.DAY',
    ],
    [
      'an unknown failure strategy',
      wf([shell('a')], [], { failureStrategy: 'STOP' }),
      /^workflow: "failureStrategy" must be one of END, CONTINUE, got "STOP"$/,
      'failureStrategy',
    ],
    [
      'an unknown workflow priority',
      wf([shell('a')], [], { priority: 'URGENT' }),
      /^workflow: "priority" must be one of HIGHEST, HIGH, MEDIUM, LOW, LOWEST, got "URGENT"$/,
      'priority',
    ],
    [
      'a tenant that is not a user name',
      wf([shell('a')], [], { tenant: '../root' }),
      /^workflow: "tenant" "..\/root" is invalid \(an OS user name: /,
      'tenant',
    ],
    [
      'a tenant that is not a string',
      wf([shell('a')], [], { tenant: 0 }),
      /^workflow: "tenant" must be a string, got/,
      'tenant',
    ],
    [
      'an unknown task priority',
      wf([{ ...shell('a'), priority: 1 }]),
      /^task "a": "priority" must be one of HIGHEST, HIGH, MEDIUM, LOW, LOWEST, got 1$/,
      'tasks[0].priority',
    ],
    [
      'a lower-case failure strategy',
      wf([shell('a')], [], { failureStrategy: 'end' }),
      /"failureStrategy" must be one of END, CONTINUE, got "end"/,
      'failureStrategy',
    ],
    [
      'a negative workflow timeout',
      wf([shell('a')], [], { timeoutMs: -1 }),
      /^workflow: "timeoutMs" must be between 0 and 2147483647, got -1$/,
      'timeoutMs',
    ],
    [
      'a workflow timeout past 2^31-1',
      wf([shell('a')], [], { timeoutMs: 2 ** 31 }),
      /"timeoutMs" must be between 0 and 2147483647/,
      'timeoutMs',
    ],
    [
      'a string workflow timeout',
      wf([shell('a')], [], { timeoutMs: '10' }),
      /"timeoutMs" must be an integer, got "10"/,
      'timeoutMs',
    ],
    ['missing tasks', { name: 'x' }, /^workflow: missing field "tasks"$/, 'tasks'],
    [
      'tasks not an array',
      { name: 'x', tasks: {} },
      /^workflow: "tasks" must be an array, got an object$/,
      'tasks',
    ],
    ['no tasks', { name: 'x', tasks: [] }, /^workflow: "tasks" must not be empty$/, 'tasks'],
    [
      'one task more than the limit',
      wf(Array.from({ length: DEFINITION_LIMITS.tasks + 1 }, (_, i) => empty(`t${i}`))),
      new RegExp(`^workflow: more than ${DEFINITION_LIMITS.tasks} tasks$`),
      'tasks',
    ],
    // ---- any task ----
    [
      'a task that is not an object',
      wf([shell('a'), 7]),
      /^task 1 must be an object, got a number$/,
      'tasks[1]',
    ],
    [
      'a task without name',
      wf([{ type: 'SHELL', command: 'true' }]),
      /^task 0: missing field "name"$/,
      'tasks[0].name',
    ],
    [
      'a task name with a newline',
      wf([shell('a\nb')]),
      /^task 0: "name" must not contain control characters$/,
      'tasks[0].name',
    ],
    [
      'a task name too long',
      wf([shell('t'.repeat(101))]),
      /^task 0: "name" is longer than 100 characters$/,
      'tasks[0].name',
    ],
    [
      'a task without type',
      wf([{ name: 'a', command: 'true' }]),
      /^task "a": missing field "type"$/,
      'tasks[0].type',
    ],
    [
      'an unknown type',
      wf([shell('a', { type: 'PYTHON' })]),
      /^unknown task type "PYTHON" for task "a" \(known: SHELL, EMPTY, HTTP, SQL, SUB_WORKFLOW, CONDITIONS, SWITCH, DEPENDENT\)$/,
      'tasks[0].type',
    ],
    [
      'a lower-case type',
      wf([shell('a', { type: 'shell' })]),
      /unknown task type "shell" for task "a"/,
      'tasks[0].type',
    ],
    [
      'a field of another type',
      wf([shell('a', { http: {} })]),
      /^task "a": unknown field "http" \(allowed for SHELL: name, type, retries, retryIntervalMs, timeoutMs, workerGroup, priority, taskGroup, command\)$/,
      'tasks[0].http',
    ],
    [
      'a command on an EMPTY task',
      wf([{ ...empty('a'), command: 'true' }]),
      /^task "a": unknown field "command" \(allowed for EMPTY:/,
      'tasks[0].command',
    ],
    [
      'a misspelt common field',
      wf([shell('a', { retry: 3 })]),
      /^task "a": unknown field "retry"/,
      'tasks[0].retry',
    ],
    [
      'a taskGroup on a task the master runs',
      wf([sub('a', {}), shell('b')].map((t, i) => (i === 0 ? { ...t, taskGroup: 'g' } : t))),
      /^task "a": "taskGroup" is only for tasks run by workers, not SUB_WORKFLOW/,
      'tasks[0].taskGroup',
    ],
    [
      'a taskGroup that is no group name',
      wf([shell('a', { taskGroup: 'a b' })]),
      /^task "a": "taskGroup" "a b" is invalid \(a task group name/,
      'tasks[0].taskGroup',
    ],
    [
      'a taskGroup that is no string',
      wf([shell('a', { taskGroup: 3 })]),
      /^task "a": "taskGroup" must be a string/,
      'tasks[0].taskGroup',
    ],
    [
      'retries out of range',
      wf([shell('a', { retries: 101 })]),
      /^task "a": "retries" must be between 0 and 100, got 101$/,
      'tasks[0].retries',
    ],
    [
      'fractional retries',
      wf([shell('a', { retries: 1.5 })]),
      /"retries" must be an integer, got 1.5/,
      'tasks[0].retries',
    ],
    [
      'null retries',
      wf([shell('a', { retries: null })]),
      /"retries" must be an integer, got null/,
      'tasks[0].retries',
    ],
    [
      'a string retry interval',
      wf([shell('a', { retryIntervalMs: '10' })]),
      /"retryIntervalMs" must be an integer/,
      'tasks[0].retryIntervalMs',
    ],
    [
      'a task timeout past 2^31-1',
      wf([shell('a', { timeoutMs: 2 ** 31 })]),
      /"timeoutMs" must be between 0 and 2147483647/,
      'tasks[0].timeoutMs',
    ],
    [
      'a worker group with a space',
      wf([shell('a', { workerGroup: 'no spaces' })]),
      /^task "a": "workerGroup" "no spaces" is invalid \(1 to 64 of/,
      'tasks[0].workerGroup',
    ],
    [
      'a worker group too long',
      wf([shell('a', { workerGroup: 'g'.repeat(65) })]),
      /"workerGroup" is longer than 64/,
      'tasks[0].workerGroup',
    ],
    ['a duplicate task name', wf([shell('a'), empty('a')]), /^duplicate task name "a"$/, 'tasks[1].name'],
    // ---- SHELL ----
    [
      'a SHELL task without command',
      wf([{ name: 'a', type: 'SHELL' }]),
      /^task "a": missing field "command"$/,
      'tasks[0].command',
    ],
    [
      'an empty command',
      wf([shell('a', { command: '' })]),
      /^task "a": "command" must not be empty$/,
      'tasks[0].command',
    ],
    [
      'a command over 1 MiB',
      wf([shell('a', { command: 'x'.repeat(1024 * 1024 + 1) })]),
      /"command" is longer than 1048576 characters/,
      'tasks[0].command',
    ],
    [
      'an unknown built-in in a command',
      wf([shell('a', { command: 'echo ${porpoise.nope}' })]),
      /^task "a": "command" is invalid: unknown parameter \$\{porpoise\.nope\}$/,
      'tasks[0].command',
    ],
    [
      'a bad date expression in a command',
      wf([shell('a', { command: 'echo $[nope(yyyyMMdd)]' })]),
      /^task "a": "command" is invalid: date expression \$\[nope\(yyyyMMdd\)\]: unknown function 'nope'$/,
      'tasks[0].command',
    ],
    // ---- HTTP ----
    [
      'an HTTP task without http',
      wf([{ name: 'h', type: 'HTTP' }]),
      /^task "h": missing field "http"$/,
      'tasks[0].http',
    ],
    [
      'http not an object',
      wf([{ name: 'h', type: 'HTTP', http: 'GET /' }]),
      /^task "h": "http" must be an object, got a string$/,
      'tasks[0].http',
    ],
    [
      'an unknown http field',
      wf([http('h', { timeout: 5 })]),
      /^task "h": unknown field "http.timeout" \(allowed: method, url, headers, body, expectStatus, timeoutMs\)$/,
      'tasks[0].http.timeout',
    ],
    [
      'a missing method',
      wf([{ name: 'h', type: 'HTTP', http: { url: 'http://x/' } }]),
      /^task "h": missing field "http.method"$/,
      'tasks[0].http.method',
    ],
    [
      'a lower-case method',
      wf([http('h', { method: 'get' })]),
      /^task "h": "http.method" must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, got "get"$/,
      'tasks[0].http.method',
    ],
    [
      'a missing url',
      wf([{ name: 'h', type: 'HTTP', http: { method: 'GET' } }]),
      /^task "h": missing field "http.url"$/,
      'tasks[0].http.url',
    ],
    [
      'an ftp url',
      wf([http('h', { url: 'ftp://example.org/f' })]),
      /^task "h": "http.url" must be an absolute http:\/\/ or https:\/\/ URL, got "ftp:\/\/example.org\/f"$/,
      'tasks[0].http.url',
    ],
    [
      'a url without scheme',
      wf([http('h', { url: 'example.org/x' })]),
      /"http.url" must be an absolute http:\/\/ or https:\/\/ URL/,
      'tasks[0].http.url',
    ],
    [
      'a javascript: url with a param',
      wf([http('h', { url: 'javascript:${x}' })]),
      /"http.url" must be an absolute http:\/\/ or https:\/\/ URL/,
      'tasks[0].http.url',
    ],
    [
      'a url with a param inside the scheme',
      wf([http('h', { url: 'http${s}://x/' })]),
      /"http.url" must be an absolute http:\/\/ or https:\/\/ URL/,
      'tasks[0].http.url',
    ],
    [
      'a url without host',
      wf([http('h', { url: 'http://' })]),
      /^task "h": "http.url" is not a valid URL: "http:\/\/"$/,
      'tasks[0].http.url',
    ],
    [
      'a url with a space',
      wf([http('h', { url: 'http://x/a b' })]),
      /"http.url" must not contain spaces or control characters/,
      'tasks[0].http.url',
    ],
    [
      'a url with an unclosed reference',
      wf([http('h', { url: 'http://x/${day' })]),
      /^task "h": "http.url" is invalid: \$\{day: a reference that is not closed/,
      'tasks[0].http.url',
    ],
    [
      'a url with a malformed reference',
      wf([http('h', { url: 'http://x/${a-b}' })]),
      /"http.url" is invalid: \$\{a-b\}: not a parameter name/,
      'tasks[0].http.url',
    ],
    [
      'headers not an object',
      wf([http('h', { headers: ['a: b'] })]),
      /^task "h": "http.headers" must be an object of strings, got an array$/,
      'tasks[0].http.headers',
    ],
    [
      'a header name with a space',
      wf([http('h', { headers: { 'X Y': 'v' } })]),
      /^task "h": header name "X Y" in "http.headers" is not a valid HTTP header name$/,
      'tasks[0].http.headers["X Y"]',
    ],
    [
      'a header value that is a number',
      wf([http('h', { headers: { 'X-N': 1 } })]),
      /^task "h": "http.headers.X-N" must be a string, got a number$/,
      'tasks[0].http.headers["X-N"]',
    ],
    [
      'a header value with CR LF',
      wf([http('h', { headers: { 'X-A': 'v\r\nX-B: w' } })]),
      /header "X-A" in "http.headers" must not contain control characters/,
      'tasks[0].http.headers["X-A"]',
    ],
    [
      'a header given twice',
      wf([http('h', { headers: { Accept: 'a', accept: 'b' } })]),
      /headers "Accept" and "accept" in "http.headers" are the same header/,
      'tasks[0].http.headers.accept',
    ],
    [
      '51 headers',
      wf([http('h', { headers: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`X-${i}`, ''])) })]),
      /"http.headers" has more than 50 headers/,
      'tasks[0].http.headers',
    ],
    [
      'a header value with a bad reference',
      wf([http('h', { headers: { A: '${a b}' } })]),
      /^task "h": "http.headers.A" is invalid: \$\{a b\}: not a parameter name$/,
      'tasks[0].http.headers.A',
    ],
    [
      'a body with GET',
      wf([http('h', { body: '{}' })]),
      /^task "h": "http.body" is not allowed with GET/,
      'tasks[0].http.body',
    ],
    [
      'a body with HEAD',
      wf([http('h', { method: 'HEAD', body: '' })]),
      /"http.body" is not allowed with HEAD/,
      'tasks[0].http.body',
    ],
    [
      'a body that is an object',
      wf([http('h', { method: 'POST', body: { a: 1 } })]),
      /^task "h": "http.body" must be a string, got an object$/,
      'tasks[0].http.body',
    ],
    [
      'a body with an unclosed reference',
      wf([http('h', { method: 'POST', body: '${a' })]),
      /"http.body" is invalid: \$\{a: a reference that is not closed/,
      'tasks[0].http.body',
    ],
    [
      'expectStatus not an array',
      wf([http('h', { expectStatus: 200 })]),
      /^task "h": "http.expectStatus" must be an array of integers, got a number$/,
      'tasks[0].http.expectStatus',
    ],
    [
      'an empty expectStatus',
      wf([http('h', { expectStatus: [] })]),
      /"http.expectStatus" must not be empty \(leave it out to expect any 2xx\)/,
      'tasks[0].http.expectStatus',
    ],
    [
      'a status below 100',
      wf([http('h', { expectStatus: [200, 99] })]),
      /^task "h": "http.expectStatus\[1\]" must be an integer from 100 to 599, got 99$/,
      'tasks[0].http.expectStatus[1]',
    ],
    [
      'a status above 599',
      wf([http('h', { expectStatus: [600] })]),
      /"http.expectStatus\[0\]" must be an integer from 100 to 599, got 600/,
      'tasks[0].http.expectStatus[0]',
    ],
    [
      'a status as a string',
      wf([http('h', { expectStatus: ['200'] })]),
      /"http.expectStatus\[0\]" must be an integer from 100 to 599, got "200"/,
      'tasks[0].http.expectStatus[0]',
    ],
    [
      'a fractional status',
      wf([http('h', { expectStatus: [200.5] })]),
      /got 200.5/,
      'tasks[0].http.expectStatus[0]',
    ],
    [
      'a status listed twice',
      wf([http('h', { expectStatus: [200, 204, 200] })]),
      /"http.expectStatus\[2\]" 200 is listed twice/,
      'tasks[0].http.expectStatus[2]',
    ],
    [
      'a negative request timeout',
      wf([http('h', { timeoutMs: -5 })]),
      /^task "h": "http.timeoutMs" must be between 0 and 2147483647, got -5$/,
      'tasks[0].http.timeoutMs',
    ],
    // ---- SQL ----
    [
      'a SQL task without sql',
      wf([{ name: 'q', type: 'SQL' }]),
      /^task "q": missing field "sql"$/,
      'tasks[0].sql',
    ],
    [
      'an unknown sql field',
      wf([sql('q', { db: 'x' })]),
      /^task "q": unknown field "sql.db" \(allowed: datasource, statement\)$/,
      'tasks[0].sql.db',
    ],
    [
      'a missing data source',
      wf([{ name: 'q', type: 'SQL', sql: { statement: 'select 1' } }]),
      /^task "q": missing field "sql.datasource"$/,
      'tasks[0].sql.datasource',
    ],
    [
      'an empty statement',
      wf([sql('q', { statement: ' ' })]),
      /^task "q": "sql.statement" must not be empty$/,
      'tasks[0].sql.statement',
    ],
    [
      'a param inside a SQL string',
      wf([sql('q', { statement: "select '%${x}%'" })]),
      /^task "q": "sql.statement" is invalid: \$\{x\} inside a string literal cannot be a bind parameter/,
      'tasks[0].sql.statement',
    ],
    [
      'a positional parameter in SQL',
      wf([sql('q', { statement: 'select $1' })]),
      /"sql.statement" is invalid: a positional parameter \$1/,
      'tasks[0].sql.statement',
    ],
    // ---- SUB_WORKFLOW ----
    [
      'a SUB_WORKFLOW task without subWorkflow',
      wf([{ name: 's', type: 'SUB_WORKFLOW' }]),
      /^task "s": missing field "subWorkflow"$/,
      'tasks[0].subWorkflow',
    ],
    [
      'a missing workflow code',
      wf([{ name: 's', type: 'SUB_WORKFLOW', subWorkflow: {} }]),
      /^task "s": missing field "subWorkflow.workflowCode"$/,
      'tasks[0].subWorkflow.workflowCode',
    ],
    [
      'a malformed workflow code',
      wf([sub('s', { workflowCode: 'wf x' })]),
      /^task "s": "subWorkflow.workflowCode" "wf x" is invalid \(a workflow code/,
      'tasks[0].subWorkflow.workflowCode',
    ],
    [
      'an unknown subWorkflow field',
      wf([sub('s', { version: 2 })]),
      /unknown field "subWorkflow.version" \(allowed: workflowCode, params\)/,
      'tasks[0].subWorkflow.version',
    ],
    [
      'sub-workflow params not an object',
      wf([sub('s', { params: 'day=1' })]),
      /^task "s": "subWorkflow.params" must be an object of strings, got a string$/,
      'tasks[0].subWorkflow.params',
    ],
    [
      'a bad sub-workflow param name',
      wf([sub('s', { params: { 'a-b': '' } })]),
      /^task "s": param name "a-b" in "subWorkflow.params" is invalid/,
      'tasks[0].subWorkflow.params["a-b"]',
    ],
    [
      'a sub-workflow param with a bad reference',
      wf([sub('s', { params: { day: '${day' } })]),
      /^task "s": param "day" in "subWorkflow.params" is invalid: \$\{day: a reference that is not closed/,
      'tasks[0].subWorkflow.params.day',
    ],
    // ---- DEPENDENT ----
    [
      'a DEPENDENT task without dependent',
      wf([{ name: 'd', type: 'DEPENDENT' }]),
      /^task "d": missing field "dependent"$/,
      'tasks[0].dependent',
    ],
    [
      'dependent not an object',
      wf([{ name: 'd', type: 'DEPENDENT', dependent: 'wf_up' }]),
      /^task "d": "dependent" must be an object, got a string$/,
      'tasks[0].dependent',
    ],
    [
      'a DEPENDENT task without a workflow code',
      wf([{ name: 'd', type: 'DEPENDENT', dependent: { interval: 'day' } }]),
      /^task "d": missing field "dependent.workflowCode"$/,
      'tasks[0].dependent.workflowCode',
    ],
    [
      'a malformed awaited workflow code',
      wf([dependent('d', { workflowCode: 'wf up' })]),
      /^task "d": "dependent.workflowCode" "wf up" is invalid \(a workflow code/,
      'tasks[0].dependent.workflowCode',
    ],
    [
      'a DEPENDENT task without an interval',
      wf([{ name: 'd', type: 'DEPENDENT', dependent: { workflowCode: 'wf_up' } }]),
      /^task "d": missing field "dependent.interval"$/,
      'tasks[0].dependent.interval',
    ],
    [
      'an unknown interval',
      wf([dependent('d', { interval: 'year' })]),
      /^task "d": "dependent.interval" must be one of hour, day, week, month, got "year"$/,
      'tasks[0].dependent.interval',
    ],
    [
      'a fractional offset',
      wf([dependent('d', { offset: -0.5 })]),
      /^task "d": "dependent.offset" must be an integer, got -0.5$/,
      'tasks[0].dependent.offset',
    ],
    [
      'an offset out of range',
      wf([dependent('d', { offset: -10_001 })]),
      /^task "d": "dependent.offset" must be between -10000 and 10000, got -10001$/,
      'tasks[0].dependent.offset',
    ],
    [
      'a check interval below a second',
      wf([dependent('d', { checkIntervalMs: 999 })]),
      /^task "d": "dependent.checkIntervalMs" must be between 1000 and 2147483647, got 999$/,
      'tasks[0].dependent.checkIntervalMs',
    ],
    [
      'an empty task name',
      wf([dependent('d', { taskName: ' ' })]),
      /^task "d": "dependent.taskName" must not be empty$/,
      'tasks[0].dependent.taskName',
    ],
    [
      'an unknown dependent field',
      wf([dependent('d', { state: 'SUCCESS' })]),
      /unknown field "dependent.state" \(allowed: workflowCode, taskName, interval, offset, checkIntervalMs\)/,
      'tasks[0].dependent.state',
    ],
    // ---- CONDITIONS ----
    [
      'a CONDITIONS task without conditions',
      wf([{ name: 'c', type: 'CONDITIONS' }]),
      /^task "c": missing field "conditions"$/,
      'tasks[0].conditions',
    ],
    [
      'success not an array',
      branching(conditions('c', { success: 'a' })),
      /^task "c": "conditions.success" must be an array, got a string$/,
      'tasks[0].conditions.success',
    ],
    [
      'a target that is not a string',
      branching(conditions('c', { success: [1] })),
      /^task "c": "conditions.success\[0\]" must be a string, got a number$/,
      'tasks[0].conditions.success[0]',
    ],
    [
      'an unknown conditions field',
      branching(conditions('c', { otherwise: ['a'] })),
      /unknown field "conditions.otherwise" \(allowed: success, failure\)/,
      'tasks[0].conditions.otherwise',
    ],
    [
      'an unknown target task',
      branching(conditions('c', { success: ['zz'] })),
      /^task "c": "conditions.success\[0\]" names unknown task "zz"$/,
      'tasks[0].conditions.success[0]',
    ],
    [
      'a target that is not downstream',
      branching(conditions('c', { failure: ['x'] }), [empty('x')]),
      /^task "c": "conditions.failure\[0\]" "x" is not a direct downstream task of "c" \(add the edge "c" -> "x"\)$/,
      'tasks[0].conditions.failure[0]',
    ],
    [
      'a target only indirectly downstream',
      branching(conditions('c', { success: ['x'] }), [empty('x')], [edge('a', 'x')]),
      /"conditions.success\[0\]" "x" is not a direct downstream task of "c"/,
      'tasks[0].conditions.success[0]',
    ],
    [
      'a target in both lists',
      branching(conditions('c', { success: ['a', 'b'], failure: ['b'] })),
      /^task "c": "conditions.failure\[0\]" "b" is already listed in "conditions.success\[1\]"$/,
      'tasks[0].conditions.failure[0]',
    ],
    [
      'a target twice in one list',
      branching(conditions('c', { success: ['a', 'a'] })),
      /"conditions.success\[1\]" "a" is already listed in "conditions.success\[0\]"/,
      'tasks[0].conditions.success[1]',
    ],
    // ---- SWITCH ----
    [
      'a SWITCH task without switch',
      wf([{ name: 'c', type: 'SWITCH' }]),
      /^task "c": missing field "switch"$/,
      'tasks[0].switch',
    ],
    [
      'missing cases',
      branching(switchTask('c', { default: 'a' })),
      /^task "c": missing field "switch.cases"$/,
      'tasks[0].switch.cases',
    ],
    [
      'no cases',
      branching(switchTask('c', { cases: [] })),
      /^task "c": "switch.cases" must not be empty$/,
      'tasks[0].switch.cases',
    ],
    [
      '101 cases',
      branching(switchTask('c', { cases: Array.from({ length: 101 }, () => ({ when: 'true', then: 'a' })) })),
      /"switch.cases" has more than 100 cases/,
      'tasks[0].switch.cases',
    ],
    [
      'a case that is not an object',
      branching(switchTask('c', { cases: ['a'] })),
      /^task "c": "switch.cases\[0\]" must be an object, got a string$/,
      'tasks[0].switch.cases[0]',
    ],
    [
      'an unknown case field',
      branching(switchTask('c', { cases: [{ when: 'true', then: 'a', else: 'b' }] })),
      /unknown field "switch.cases\[0\].else" \(allowed: when, then\)/,
      'tasks[0].switch.cases[0].else',
    ],
    [
      'a case without when',
      branching(switchTask('c', { cases: [{ then: 'a' }] })),
      /^task "c": missing field "switch.cases\[0\].when"$/,
      'tasks[0].switch.cases[0].when',
    ],
    [
      'an assignment in when',
      branching(switchTask('c', { cases: [{ when: '${x} = 1', then: 'a' }] })),
      /^task "c": "switch.cases\[0\].when" is invalid: switch expression "\$\{x\} = 1": assignment/,
      'tasks[0].switch.cases[0].when',
    ],
    [
      'a function call in when',
      branching(
        switchTask('c', {
          cases: [
            { when: 'true', then: 'a' },
            { when: 'exec("rm")', then: 'b' },
          ],
        }),
      ),
      /"switch.cases\[1\].when" is invalid: .*function calls are not supported/,
      'tasks[0].switch.cases[1].when',
    ],
    [
      'an unknown built-in in when',
      branching(switchTask('c', { cases: [{ when: '${porpoise.x} == 1', then: 'a' }] })),
      /"switch.cases\[0\].when" is invalid: unknown parameter \$\{porpoise.x\}/,
      'tasks[0].switch.cases[0].when',
    ],
    [
      'a case target not downstream',
      branching(switchTask('c', { cases: [{ when: 'true', then: 'x' }] }), [empty('x')]),
      /^task "c": "switch.cases\[0\].then" "x" is not a direct downstream task of "c"/,
      'tasks[0].switch.cases[0].then',
    ],
    [
      'a default not downstream',
      branching(switchTask('c', { cases: [{ when: 'true', then: 'a' }], default: 'x' }), [empty('x')]),
      /^task "c": "switch.default" "x" is not a direct downstream task of "c"/,
      'tasks[0].switch.default',
    ],
    [
      'a case target listed twice',
      branching(
        switchTask('c', {
          cases: [
            { when: '${x} == 1', then: 'a' },
            { when: '${x} == 2', then: 'a' },
          ],
        }),
      ),
      /^task "c": "switch.cases\[1\].then" "a" is already the task of "switch.cases\[0\].then" \(join the conditions with \|\|\)$/,
      'tasks[0].switch.cases[1].then',
    ],
    [
      'a default that is also a case target',
      branching(switchTask('c', { cases: [{ when: 'true', then: 'a' }], default: 'a' })),
      /"switch.default" "a" is already the task of "switch.cases\[0\].then"/,
      'tasks[0].switch.default',
    ],
    // ---- edges ----
    [
      'edges not an array',
      wf([shell('a')], {} as unknown[]),
      /^workflow: "edges" must be an array, got an object$/,
      'edges',
    ],
    [
      'an edge that is not an object',
      wf([shell('a')], ['a->b']),
      /^edge 0 must be an object, got a string$/,
      'edges[0]',
    ],
    ['an edge without to', wf([shell('a')], [{ from: 'a' }]), /^edge 0: missing field "to"$/, 'edges[0].to'],
    [
      'an unknown edge field',
      wf([shell('a'), shell('b')], [{ from: 'a', to: 'b', weight: 1 }]),
      /^edge 0: unknown field "weight" \(allowed: from, to\)$/,
      'edges[0].weight',
    ],
    [
      'an edge to an unknown task',
      wf([shell('a')], [edge('a', 'zzz')]),
      /^edge 0 \("a" -> "zzz"\): unknown task "zzz"$/,
      'edges[0].to',
    ],
    [
      'an edge from an unknown task',
      wf([shell('a')], [edge('yyy', 'a')]),
      /^edge 0 \("yyy" -> "a"\): unknown task "yyy"$/,
      'edges[0].from',
    ],
    [
      'a self edge',
      wf([shell('a')], [edge('a', 'a')]),
      /^edge 0 \("a" -> "a"\): a task cannot depend on itself$/,
      'edges[0]',
    ],
    [
      'a duplicate edge',
      wf([shell('a'), shell('b')], [edge('a', 'b'), edge('a', 'b')]),
      /^edge 1 \("a" -> "b"\): duplicate edge$/,
      'edges[1]',
    ],
    [
      'a cycle',
      wf([shell('a'), shell('b'), shell('c')], [edge('a', 'b'), edge('b', 'c'), edge('c', 'a')]),
      /^cycle: a -> b -> c -> a$/,
      'edges',
    ],
    [
      'a cycle away from the first task',
      wf([shell('x'), shell('a'), shell('b')], [edge('x', 'a'), edge('a', 'b'), edge('b', 'a')]),
      /^cycle: a -> b -> a$/,
      'edges',
    ],
    [
      'one edge more than the limit',
      wf(
        [shell('a')],
        Array.from({ length: DEFINITION_LIMITS.edges + 1 }, () => edge('a', 'a')),
      ),
      new RegExp(`^workflow: more than ${DEFINITION_LIMITS.edges} edges$`),
      'edges',
    ],
  ];

  it.each(cases)('%s', (_what, body, message, path) => {
    expect(rejection(body)).toEqual({ message: expect.stringMatching(message), path });
  });

  it('a SUB_WORKFLOW task may not run the workflow being updated', () => {
    const body = wf([sub('s', { workflowCode: 'wf_self' })]);
    expect(parseWorkflowDefinition(body).tasks).toHaveLength(1);
    expect(rejection(body, { selfCode: 'wf_self' })).toEqual({
      message:
        'task "s": "subWorkflow.workflowCode" "wf_self" is this workflow: a workflow cannot run itself',
      path: 'tasks[0].subWorkflow.workflowCode',
    });
  });

  it('a DEPENDENT task may wait for the workflow being updated only in an earlier interval', () => {
    const body = (offset: number) => wf([dependent('d', { workflowCode: 'wf_self', offset })]);
    expect(parseWorkflowDefinition(body(0)).tasks).toHaveLength(1);
    expect(parseWorkflowDefinition(body(-1), { selfCode: 'wf_self' }).tasks).toHaveLength(1);
    for (const offset of [0, 1]) {
      expect(rejection(body(offset), { selfCode: 'wf_self' })).toEqual({
        message:
          `task "d": "dependent.workflowCode" "wf_self" is this workflow with "dependent.offset" ${offset}:` +
          ' a run would wait for itself (depend on an earlier interval: a negative offset)',
        path: 'tasks[0].dependent.workflowCode',
      });
    }
  });

  it('every limit is an option', () => {
    expect(
      rejection(wf([shell('a', { command: 'x'.repeat(11) })]), { limits: { commandLength: 10 } }).message,
    ).toBe('task "a": "command" is longer than 10 characters');
    expect(rejection(wf([empty('a'), empty('b')]), { limits: { tasks: 1 } }).message).toBe(
      'workflow: more than 1 tasks',
    );
    expect(Object.isFrozen(DEFINITION_LIMITS) || DEFINITION_LIMITS.tasks === 10_000).toBe(true);
  });

  it('a huge bad value is shortened in the message', () => {
    const { message } = rejection(wf([http('h', { method: 'x'.repeat(10_000) })]));
    expect(message.length).toBeLessThan(300);
  });
});
