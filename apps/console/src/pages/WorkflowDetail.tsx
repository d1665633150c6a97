import { useMemo, useState } from 'react';
import { api, post } from '../api';
import { Dag } from '../components/Dag';
import { ErrorBox, Notice, paramsToText, Section, textToParams } from '../components/bits';
import { useAction, usePoll } from '../hooks';
import { Link, navigate } from '../router';
import type { Edge, Page, Instance, TaskDefinition, Workflow } from '../types';
import { StateBadge, when } from '../components/bits';

const EXAMPLE = {
  name: 'hello',
  description: 'Two shell tasks, one after the other',
  tasks: [
    { name: 'extract', type: 'SHELL', command: 'echo extracting; sleep 1' },
    { name: 'load', type: 'SHELL', command: 'echo loading ${day}' },
  ],
  edges: [{ from: 'extract', to: 'load' }],
  params: { day: 'today' },
};

/** The fields a body may carry (the stored workflow's code, version and times are not part of it). */
function editableBody(w: Workflow): Record<string, unknown> {
  const { code: _c, version: _v, createdAt: _a, updatedAt: _u, ...body } = w;
  return body;
}

interface Parsed {
  value?: Record<string, unknown>;
  problem?: string;
}

function parse(text: string): Parsed {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { problem: 'the workflow must be a JSON object' };
    }
    return { value: value as Record<string, unknown> };
  } catch (err) {
    return { problem: `not JSON: ${(err as Error).message}` };
  }
}

function dagOf(value: Record<string, unknown> | undefined): { tasks: TaskDefinition[]; edges: Edge[] } {
  const tasks = Array.isArray(value?.tasks)
    ? (value.tasks as unknown[]).filter(
        (t): t is TaskDefinition =>
          typeof t === 'object' && t !== null && typeof (t as TaskDefinition).name === 'string',
      )
    : [];
  const edges = Array.isArray(value?.edges)
    ? (value.edges as unknown[]).filter(
        (e): e is Edge =>
          typeof e === 'object' &&
          e !== null &&
          typeof (e as Edge).from === 'string' &&
          typeof (e as Edge).to === 'string',
      )
    : [];
  return { tasks, edges };
}

/** The task names an API message quotes ("unknown task \"x\"", "a cycle a → b"), to mark in the DAG. */
function namesIn(message: string | undefined, tasks: readonly TaskDefinition[]): Set<string> {
  if (!message) return new Set();
  const quoted = new Set([...message.matchAll(/"([^"]+)"/g)].map((m) => m[1] ?? ''));
  return new Set(tasks.map((t) => t.name).filter((n) => quoted.has(n)));
}

/** JSON editor with the DAG drawn as you type, a small form for the common fields, and save. */
function WorkflowEditor({ initial, code }: { initial: Record<string, unknown>; code?: string }) {
  const [text, setText] = useState(() => JSON.stringify(initial, null, 2));
  const save = useAction();
  const parsed = useMemo(() => parse(text), [text]);
  const dag = useMemo(() => dagOf(parsed.value), [parsed.value]);
  const flagged = useMemo(() => namesIn(save.error, dag.tasks), [save.error, dag.tasks]);

  const setField = (field: string, value: unknown) => {
    if (!parsed.value) return;
    const next = { ...parsed.value };
    if (value === undefined || value === '') delete next[field];
    else next[field] = value;
    setText(JSON.stringify(next, null, 2));
  };
  const field = (name: string): string => {
    const v = parsed.value?.[name];
    return typeof v === 'string' || typeof v === 'number' ? String(v) : '';
  };
  const [paramsText, setParamsText] = useState(() =>
    paramsToText(initial.params as Record<string, string> | undefined),
  );
  const [paramsProblem, setParamsProblem] = useState<string>();
  const [newTask, setNewTask] = useState({ name: '', command: '', after: '' });

  const addTask = () => {
    if (!parsed.value || newTask.name.trim() === '') return;
    const tasks = [...dag.tasks, { name: newTask.name.trim(), type: 'SHELL', command: newTask.command }];
    const edges = [...dag.edges];
    if (newTask.after) edges.push({ from: newTask.after, to: newTask.name.trim() });
    setText(JSON.stringify({ ...parsed.value, tasks, edges }, null, 2));
    setNewTask({ name: '', command: '', after: '' });
  };

  const submit = () =>
    save.run(async () => {
      if (!parsed.value) throw new Error(parsed.problem ?? 'not JSON');
      if (code) {
        const stored = await api<Workflow>('PUT', `/workflows/${code}`, parsed.value);
        return `Saved as version ${stored.version}.`;
      }
      const created = await post<Workflow>('/workflows', parsed.value);
      navigate(`/workflows/${created.code}`);
    });

  return (
    <div className="editor" data-testid="workflow-editor">
      <div className="editor-form">
        <label>
          Name
          <input
            value={field('name')}
            onChange={(e) => setField('name', e.target.value)}
            data-testid="wf-name"
          />
        </label>
        <label>
          Description
          <input
            value={field('description')}
            onChange={(e) => setField('description', e.target.value)}
            data-testid="wf-description"
          />
        </label>
        <label>
          Failure strategy
          <select
            value={field('failureStrategy')}
            onChange={(e) => setField('failureStrategy', e.target.value)}
          >
            <option value="">(default: END)</option>
            <option value="END">END</option>
            <option value="CONTINUE">CONTINUE</option>
          </select>
        </label>
        <label>
          Priority
          <select value={field('priority')} onChange={(e) => setField('priority', e.target.value)}>
            <option value="">(default: MEDIUM)</option>
            {['HIGHEST', 'HIGH', 'MEDIUM', 'LOW', 'LOWEST'].map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label>
          Timeout (ms, 0 = none)
          <input
            type="number"
            min={0}
            value={field('timeoutMs')}
            onChange={(e) =>
              setField('timeoutMs', e.target.value === '' ? undefined : Number(e.target.value))
            }
          />
        </label>
        <label>
          Params (name=default, one a line)
          <textarea
            rows={3}
            value={paramsText}
            onChange={(e) => {
              setParamsText(e.target.value);
              try {
                setField('params', textToParams(e.target.value));
                setParamsProblem(undefined);
              } catch (err) {
                setParamsProblem((err as Error).message);
              }
            }}
          />
        </label>
        <ErrorBox error={paramsProblem} testId="params-problem" />
        <fieldset>
          <legend>Add a SHELL task</legend>
          <input
            placeholder="name"
            data-testid="new-task-name"
            value={newTask.name}
            onChange={(e) => setNewTask({ ...newTask, name: e.target.value })}
          />
          <input
            placeholder="command"
            data-testid="new-task-command"
            value={newTask.command}
            onChange={(e) => setNewTask({ ...newTask, command: e.target.value })}
          />
          <select
            value={newTask.after}
            onChange={(e) => setNewTask({ ...newTask, after: e.target.value })}
            data-testid="new-task-after"
          >
            <option value="">(no upstream)</option>
            {dag.tasks.map((t) => (
              <option key={t.name} value={t.name}>
                after {t.name}
              </option>
            ))}
          </select>
          <button
            type="button"
            onClick={addTask}
            disabled={!parsed.value || newTask.name.trim() === ''}
            data-testid="add-task"
          >
            Add task
          </button>
        </fieldset>
      </div>
      <div className="editor-json">
        <label>
          Definition (JSON, DESIGN.md section 9)
          <textarea
            className="code"
            rows={22}
            spellCheck={false}
            value={text}
            onChange={(e) => setText(e.target.value)}
            data-testid="wf-json"
          />
        </label>
        <ErrorBox error={parsed.problem} testId="json-problem" />
        <ErrorBox error={save.error} testId="save-error" />
        <Notice text={save.notice} />
        <button
          type="button"
          onClick={() => void submit()}
          disabled={save.busy || !parsed.value}
          data-testid="save-workflow"
        >
          {code ? 'Save new version' : 'Create workflow'}
        </button>
      </div>
      <div className="editor-dag">
        <Dag tasks={dag.tasks} edges={dag.edges} flagged={flagged} />
      </div>
    </div>
  );
}

export function WorkflowNewPage() {
  return (
    <Section title="New workflow">
      <WorkflowEditor initial={EXAMPLE} />
    </Section>
  );
}

function TriggerForm({ workflow }: { workflow: Workflow }) {
  const [paramsText, setParamsText] = useState(paramsToText(workflow.params));
  const trigger = useAction();
  const submit = () =>
    trigger.run(async () => {
      const params = textToParams(paramsText);
      const res = await post<{ workflowInstanceId: number }>(
        `/workflows/${workflow.code}/runs`,
        Object.keys(params).length > 0 ? { params } : {},
      );
      navigate(`/runs/${res.workflowInstanceId}`);
    });
  return (
    <div className="trigger" data-testid="trigger-form">
      <label>
        Run params (name=value, one a line; the workflow&apos;s defaults are filled in)
        <textarea
          rows={3}
          value={paramsText}
          onChange={(e) => setParamsText(e.target.value)}
          data-testid="run-params"
        />
      </label>
      <ErrorBox error={trigger.error} testId="trigger-error" />
      <button
        type="button"
        className="primary"
        onClick={() => void submit()}
        disabled={trigger.busy}
        data-testid="trigger"
      >
        ▶ Trigger run
      </button>
    </div>
  );
}

export function WorkflowDetailPage({ code }: { code: string }) {
  const [editing, setEditing] = useState(false);
  const wf = usePoll<Workflow>(`/workflows/${encodeURIComponent(code)}`, 10_000, !editing);
  const runs = usePoll<Page<Instance>>(
    `/workflow-instances?workflowCode=${encodeURIComponent(code)}&limit=10`,
    3000,
  );
  const w = wf.data;
  if (!w) {
    return (
      <Section title={code}>
        <ErrorBox error={wf.error} />
        {wf.error ? null : <p className="muted">Loading…</p>}
      </Section>
    );
  }
  return (
    <>
      <Section
        title={`${w.name} · v${w.version}`}
        actions={
          <button type="button" onClick={() => setEditing(!editing)} data-testid="edit-workflow">
            {editing ? 'Close editor' : 'Edit'}
          </button>
        }
      >
        <p className="muted">
          <code>{w.code}</code> {w.description}
        </p>
        {editing ? (
          <WorkflowEditor key={w.version} initial={editableBody(w)} code={w.code} />
        ) : (
          <div className="split">
            <Dag tasks={w.tasks} edges={w.edges} />
            <TriggerForm key={`${w.code}@${w.version}`} workflow={w} />
          </div>
        )}
      </Section>
      <Section title="Recent runs" actions={<Link to={`/runs?workflowCode=${w.code}`}>All runs →</Link>}>
        <table className="table">
          <tbody>
            {(runs.data?.items ?? []).map((r) => (
              <tr key={r.id}>
                <td>
                  <Link to={`/runs/${r.id}`}>#{r.id}</Link>
                </td>
                <td>
                  <StateBadge state={r.state} />
                </td>
                <td>{r.commandType}</td>
                <td>{when(r.startTime ?? r.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {runs.data?.total === 0 ? <p className="muted">No runs yet.</p> : null}
      </Section>
    </>
  );
}
