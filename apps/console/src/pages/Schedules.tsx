import cronstrue from 'cronstrue';
import { useState } from 'react';
import { api, post } from '../api';
import { ErrorBox, Notice, Section, textToParams, when } from '../components/bits';
import { useAction, usePoll } from '../hooks';
import { Link } from '../router';
import type { Backfill, Page, Schedule, WorkflowSummary } from '../types';

/** The cron in words, or why it cannot be read (the API has the last word when it is saved). */
export function cronPreview(cron: string): { text?: string; problem?: string } {
  if (cron.trim() === '') return {};
  try {
    return { text: cronstrue.toString(cron.trim(), { use24HourTimeFormat: true, verbose: true }) };
  } catch (err) {
    return { problem: String(err) };
  }
}

function CronPreview({ cron }: { cron: string }) {
  const p = cronPreview(cron);
  if (p.problem) {
    return (
      <div className="error" data-testid="cron-preview">
        {p.problem}
      </div>
    );
  }
  return p.text ? (
    <div className="notice" data-testid="cron-preview">
      {p.text}
    </div>
  ) : null;
}

function CreateSchedule({ workflows, onCreated }: { workflows: WorkflowSummary[]; onCreated: () => void }) {
  const [form, setForm] = useState({
    workflowCode: '',
    cron: '0 0 * * *',
    timezone: 'UTC',
    params: '',
    misfirePolicy: '',
  });
  const create = useAction();
  const submit = () =>
    create.run(async () => {
      const params = textToParams(form.params);
      const body: Record<string, unknown> = {
        workflowCode: form.workflowCode,
        cron: form.cron,
        timezone: form.timezone,
      };
      if (Object.keys(params).length > 0) body.params = params;
      if (form.misfirePolicy) body.misfirePolicy = form.misfirePolicy;
      const s = await post<Schedule>('/schedules', body);
      onCreated();
      return `Schedule ${s.id} created; next fire ${when(s.nextFireTime)}.`;
    });
  return (
    <div className="form-grid" data-testid="schedule-form">
      <label>
        Workflow
        <select
          value={form.workflowCode}
          onChange={(e) => setForm({ ...form, workflowCode: e.target.value })}
          data-testid="schedule-workflow"
        >
          <option value="">choose…</option>
          {workflows.map((w) => (
            <option key={w.code} value={w.code}>
              {w.name} ({w.code})
            </option>
          ))}
        </select>
      </label>
      <label>
        Cron (5 fields, or 6 with seconds first)
        <input
          value={form.cron}
          onChange={(e) => setForm({ ...form, cron: e.target.value })}
          data-testid="schedule-cron"
        />
      </label>
      <CronPreview cron={form.cron} />
      <label>
        Time zone (IANA)
        <input value={form.timezone} onChange={(e) => setForm({ ...form, timezone: e.target.value })} />
      </label>
      <label>
        Misfire policy
        <select
          value={form.misfirePolicy}
          onChange={(e) => setForm({ ...form, misfirePolicy: e.target.value })}
        >
          <option value="">(default: RUN_ONCE)</option>
          <option>RUN_ONCE</option>
          <option>SKIP</option>
          <option>RUN_ALL</option>
        </select>
      </label>
      <label>
        Params (name=value lines)
        <textarea
          rows={2}
          value={form.params}
          onChange={(e) => setForm({ ...form, params: e.target.value })}
        />
      </label>
      <ErrorBox error={create.error} testId="schedule-error" />
      <Notice text={create.notice} />
      <button
        type="button"
        className="primary"
        onClick={() => void submit()}
        disabled={create.busy}
        data-testid="create-schedule"
      >
        Create schedule
      </button>
    </div>
  );
}

function BackfillForm({ workflows }: { workflows: WorkflowSummary[] }) {
  const [form, setForm] = useState({ workflowCode: '', start: '', end: '', cron: '', parallelism: '1' });
  const [backfillId, setBackfillId] = useState<number>();
  const action = useAction();
  const status = usePoll<Backfill>(backfillId === undefined ? null : `/backfills/${backfillId}`, 2000);
  const submit = () =>
    action.run(async () => {
      const body: Record<string, unknown> = {
        start: form.start,
        end: form.end,
        parallelism: Number(form.parallelism),
      };
      if (form.cron) body.cron = form.cron;
      const res = await post<{ backfillId: number; runs: number }>(
        `/workflows/${form.workflowCode}/backfill`,
        body,
      );
      setBackfillId(res.backfillId);
      return `Backfill ${res.backfillId}: ${res.runs} runs.`;
    });
  const cancel = () =>
    action.run(async () => {
      await post(`/backfills/${backfillId}/cancel`);
      status.reload();
      return 'Cancelled: no more runs will be created.';
    });
  const b = status.data;
  return (
    <div className="form-grid">
      <label>
        Workflow
        <select
          value={form.workflowCode}
          onChange={(e) => setForm({ ...form, workflowCode: e.target.value })}
          data-testid="backfill-workflow"
        >
          <option value="">choose…</option>
          {workflows.map((w) => (
            <option key={w.code} value={w.code}>
              {w.name} ({w.code})
            </option>
          ))}
        </select>
      </label>
      <label>
        From (date or ISO time)
        <input
          placeholder="2024-01-01"
          data-testid="backfill-start"
          value={form.start}
          onChange={(e) => setForm({ ...form, start: e.target.value })}
        />
      </label>
      <label>
        To (inclusive)
        <input
          placeholder="2024-01-31"
          data-testid="backfill-end"
          value={form.end}
          onChange={(e) => setForm({ ...form, end: e.target.value })}
        />
      </label>
      <label>
        Cron (default: the workflow&apos;s schedule)
        <input
          value={form.cron}
          onChange={(e) => setForm({ ...form, cron: e.target.value })}
          data-testid="backfill-cron"
        />
      </label>
      <CronPreview cron={form.cron} />
      <label>
        Parallelism
        <input
          type="number"
          min={1}
          value={form.parallelism}
          onChange={(e) => setForm({ ...form, parallelism: e.target.value })}
        />
      </label>
      <ErrorBox error={action.error} />
      <Notice text={action.notice} />
      <button
        type="button"
        onClick={() => void submit()}
        disabled={action.busy || !form.workflowCode}
        data-testid="start-backfill"
      >
        Start backfill
      </button>
      {b ? (
        <div className="notice" data-testid="backfill-status">
          Backfill {b.id}: {b.state} · {b.created}/{b.total} created · {b.running} running · {b.succeeded}{' '}
          succeeded · {b.failed} failed{' '}
          {b.state === 'RUNNING' ? (
            <button type="button" onClick={() => void cancel()}>
              Cancel
            </button>
          ) : null}
          <div>
            {b.workflowInstanceIds.slice(-20).map((id) => (
              <Link key={id} to={`/runs/${id}`}>
                #{id}{' '}
              </Link>
            ))}
          </div>
        </div>
      ) : null}
    </div>
  );
}

export function SchedulesPage() {
  const schedules = usePoll<Page<Schedule>>('/schedules?limit=1000', 5000);
  const workflows = usePoll<Page<WorkflowSummary>>('/workflows?limit=1000', 30_000);
  const action = useAction();
  const names = new Map((workflows.data?.items ?? []).map((w) => [w.code, w.name]));
  const toggle = (s: Schedule) =>
    action.run(async () => {
      await api('PATCH', `/schedules/${s.id}`, { enabled: !s.enabled });
      schedules.reload();
    });
  const remove = (s: Schedule) =>
    action.run(async () => {
      if (!window.confirm(`Delete schedule ${s.id}?`)) return;
      await api('DELETE', `/schedules/${s.id}`);
      schedules.reload();
    });
  return (
    <>
      <Section title="Schedules">
        <ErrorBox error={schedules.error ?? action.error} />
        <table className="table" data-testid="schedules-table">
          <thead>
            <tr>
              <th>Id</th>
              <th>Workflow</th>
              <th>Cron</th>
              <th>Next fire</th>
              <th>Enabled</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(schedules.data?.items ?? []).map((s) => (
              <tr key={s.id}>
                <td>{s.id}</td>
                <td>
                  <Link to={`/workflows/${s.workflowCode}`}>
                    {names.get(s.workflowCode) ?? s.workflowCode}
                  </Link>
                </td>
                <td>
                  <code>{s.cron}</code> <span className="muted">{s.timezone}</span>
                  <div className="muted">{cronPreview(s.cron).text}</div>
                </td>
                <td>{when(s.nextFireTime)}</td>
                <td>
                  <button
                    type="button"
                    onClick={() => void toggle(s)}
                    data-testid={`toggle-schedule-${s.id}`}
                  >
                    {s.enabled ? 'Enabled · disable' : 'Disabled · enable'}
                  </button>
                </td>
                <td>
                  <button type="button" className="link" onClick={() => void remove(s)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="New schedule">
        <CreateSchedule workflows={workflows.data?.items ?? []} onCreated={schedules.reload} />
      </Section>
      <Section title="Backfill">
        <BackfillForm workflows={workflows.data?.items ?? []} />
      </Section>
    </>
  );
}
