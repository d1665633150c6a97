import { useMemo, useState } from 'react';
import { post } from '../api';
import { Dag } from '../components/Dag';
import { Diagnosis } from '../components/Diagnosis';
import { Gantt } from '../components/Gantt';
import { TaskLog } from '../components/TaskLog';
import { duration, ErrorBox, Notice, paramsToText, Section, StateBadge, when } from '../components/bits';
import { useAction, useNow, usePoll } from '../hooks';
import { Link } from '../router';
import {
  FINAL_TASK_STATES,
  FINAL_WORKFLOW_STATES,
  type InstanceDetail,
  type TaskInstance,
  type Workflow,
} from '../types';

const CONTROLS = [
  { action: 'stop', label: '■ Stop' },
  { action: 'pause', label: '❚❚ Pause' },
  { action: 'resume', label: '▶ Resume' },
  { action: 'rerun', label: '↻ Rerun' },
  { action: 'resume-failed', label: '↻ Resume failed' },
] as const;

/**
 * Every second while the run is not finished, every 5 s once it is (a rerun may start it again);
 * with If-None-Match, so an unchanged run is a 304 without a body.
 */
const pollInterval = (run: InstanceDetail | undefined): number =>
  run && FINAL_WORKFLOW_STATES.has(run.state) ? 5000 : 1000;

/** One run: its DAG coloured by task state as it runs, the attempts on a time axis, a task's log. */
export function RunDetailPage({ id }: { id: number }) {
  const [tab, setTab] = useState<'graph' | 'gantt'>('graph');
  const [selected, setSelected] = useState<number>();
  const run = usePoll<InstanceDetail>(`/workflow-instances/${id}`, pollInterval);
  const instance = run.data;

  const definition = usePoll<Workflow>(
    instance
      ? `/workflows/${encodeURIComponent(instance.workflowCode)}?version=${instance.workflowVersion}`
      : null,
    60_000,
    false,
  );
  const control = useAction();
  const now = useNow(1000);

  // The latest attempt of each task decides its colour (tasks come in id order).
  const latest = useMemo(() => {
    const byName = new Map<string, TaskInstance>();
    for (const t of instance?.tasks ?? []) byName.set(t.name, t);
    return byName;
  }, [instance]);
  const states = useMemo(() => new Map([...latest].map(([n, t]) => [n, t.state])), [latest]);
  const selectedTask = instance?.tasks.find((t) => t.id === selected);

  const act = (action: string) =>
    control.run(async () => {
      const res = await post<{ state: string }>(`/workflow-instances/${id}/${action}`);
      run.reload();
      return `${action}: accepted, the run is ${res.state}.`;
    });

  if (!instance) {
    return (
      <Section title={`Run #${id}`}>
        <ErrorBox error={run.error} />
        {run.error ? null : <p className="muted">Loading…</p>}
      </Section>
    );
  }
  const dagTasks = definition.data?.tasks ?? [...latest.values()].map((t) => ({ name: t.name, type: '' }));
  const dagEdges = definition.data?.edges ?? [];

  return (
    <>
      <Section
        title={`Run #${instance.id}`}
        actions={
          <div className="controls" data-testid="controls">
            {CONTROLS.map((c) => (
              <button
                key={c.action}
                type="button"
                disabled={control.busy}
                onClick={() => void act(c.action)}
                data-testid={`control-${c.action}`}
              >
                {c.label}
              </button>
            ))}
          </div>
        }
      >
        <div className="facts">
          <span>
            <StateBadge state={instance.state} />
          </span>
          <span>
            Workflow{' '}
            <Link to={`/workflows/${instance.workflowCode}`}>
              {definition.data?.name ?? instance.workflowCode}
            </Link>{' '}
            v{instance.workflowVersion}
          </span>
          <span>{instance.commandType}</span>
          <span>master {instance.host ?? '—'}</span>
          <span>started {when(instance.startTime)}</span>
          <span>{duration(instance.startTime, instance.endTime, now)}</span>
          {instance.scheduleTime ? <span>schedule time {when(instance.scheduleTime)}</span> : null}
        </div>
        {instance.message ? <p className="muted">{instance.message}</p> : null}
        {Object.keys(instance.params).length > 0 ? (
          <pre className="params">{paramsToText(instance.params)}</pre>
        ) : null}
        <ErrorBox error={control.error} testId="control-error" />
        <Notice text={control.notice} />
        <ErrorBox error={run.error} />
        <div className="tabs">
          <button
            type="button"
            className={tab === 'graph' ? 'active' : ''}
            onClick={() => setTab('graph')}
            data-testid="tab-graph"
          >
            Graph
          </button>
          <button
            type="button"
            className={tab === 'gantt' ? 'active' : ''}
            onClick={() => setTab('gantt')}
            data-testid="tab-gantt"
          >
            Gantt
          </button>
        </div>
        {tab === 'graph' ? (
          <Dag
            tasks={dagTasks}
            edges={dagEdges}
            states={states}
            selected={selectedTask?.name}
            onSelect={(name) => setSelected(latest.get(name)?.id)}
          />
        ) : (
          <Gantt tasks={instance.tasks} now={now} />
        )}
      </Section>
      {FINAL_WORKFLOW_STATES.has(instance.state) ? null : (
        <Section title="Why is it not done?">
          <Diagnosis instanceId={instance.id} />
        </Section>
      )}
      <Section title="Task attempts">
        <table className="table" data-testid="tasks-table">
          <thead>
            <tr>
              <th>Task</th>
              <th>Attempt</th>
              <th>State</th>
              <th>Worker</th>
              <th>Started</th>
              <th>Duration</th>
              <th>Exit</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {instance.tasks.map((t) => (
              <tr key={t.id} className={t.id === selected ? 'selected' : ''}>
                <td>{t.name}</td>
                <td>{t.attempt}</td>
                <td>
                  <StateBadge state={t.state} />
                  {t.message ? <div className="muted">{t.message}</div> : null}
                </td>
                <td>{t.host ?? '—'}</td>
                <td>{when(t.startTime)}</td>
                <td>{duration(t.startTime, t.endTime, now)}</td>
                <td>{t.exitCode ?? '—'}</td>
                <td>
                  <button
                    type="button"
                    className="link"
                    onClick={() => setSelected(t.id)}
                    data-testid={`log-${t.name}-${t.attempt}`}
                  >
                    Log
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      {selectedTask ? (
        <Section title={`Log of ${selectedTask.name}, attempt ${selectedTask.attempt}`}>
          {Object.keys(selectedTask.outputs).length > 0 ? (
            <pre className="params">
              outputs:{'\n'}
              {paramsToText(selectedTask.outputs)}
            </pre>
          ) : null}
          <TaskLog
            key={selectedTask.id}
            taskInstanceId={selectedTask.id}
            running={!FINAL_TASK_STATES.has(selectedTask.state)}
          />
        </Section>
      ) : null}
    </>
  );
}
