import { duration, ErrorBox, Pager, Section, StateBadge, when } from '../components/bits';
import { usePoll } from '../hooks';
import { Link, navigate, useLocation } from '../router';
import { WORKFLOW_STATES, type Instance, type Page, type WorkflowSummary } from '../types';

const LIMIT = 20;

/** Runs, newest first, filtered by workflow and state; the filters live in the URL. */
export function RunsPage() {
  const { query } = useLocation();
  const workflowCode = query.get('workflowCode') ?? '';
  const state = query.get('state') ?? '';
  const offset = Number(query.get('offset') ?? '0') || 0;
  const workflows = usePoll<Page<WorkflowSummary>>('/workflows?limit=1000', 30_000);

  const search = new URLSearchParams();
  if (workflowCode) search.set('workflowCode', workflowCode);
  if (state) search.set('state', state);
  search.set('limit', String(LIMIT));
  search.set('offset', String(offset));
  const runs = usePoll<Page<Instance>>(`/workflow-instances?${search.toString()}`, 2000);

  const go = (changes: Record<string, string>) => {
    const next = new URLSearchParams(query);
    for (const [k, v] of Object.entries(changes)) {
      if (v === '') next.delete(k);
      else next.set(k, v);
    }
    if (!('offset' in changes)) next.delete('offset');
    navigate(`/runs${next.size > 0 ? `?${next.toString()}` : ''}`);
  };
  const names = new Map((workflows.data?.items ?? []).map((w) => [w.code, w.name]));

  return (
    <Section title="Runs">
      <div className="filters">
        <label>
          Workflow
          <select
            value={workflowCode}
            onChange={(e) => go({ workflowCode: e.target.value })}
            data-testid="filter-workflow"
          >
            <option value="">all</option>
            {(workflows.data?.items ?? []).map((w) => (
              <option key={w.code} value={w.code}>
                {w.name} ({w.code})
              </option>
            ))}
          </select>
        </label>
        <label>
          State
          <select value={state} onChange={(e) => go({ state: e.target.value })} data-testid="filter-state">
            <option value="">all</option>
            {WORKFLOW_STATES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBox error={runs.error} />
      <table className="table" data-testid="runs-table">
        <thead>
          <tr>
            <th>Run</th>
            <th>Workflow</th>
            <th>State</th>
            <th>Command</th>
            <th>Master</th>
            <th>Started</th>
            <th>Duration</th>
          </tr>
        </thead>
        <tbody>
          {(runs.data?.items ?? []).map((r) => (
            <tr key={r.id}>
              <td>
                <Link to={`/runs/${r.id}`} testId={`run-${r.id}`}>
                  #{r.id}
                </Link>
              </td>
              <td>
                <Link to={`/workflows/${r.workflowCode}`}>{names.get(r.workflowCode) ?? r.workflowCode}</Link>{' '}
                <span className="muted">v{r.workflowVersion}</span>
              </td>
              <td>
                <StateBadge state={r.state} />
              </td>
              <td>{r.commandType}</td>
              <td>{r.host ?? '—'}</td>
              <td>{when(r.startTime ?? r.createdAt)}</td>
              <td>{duration(r.startTime, r.endTime)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Pager
        offset={offset}
        limit={LIMIT}
        total={runs.data?.total ?? 0}
        onChange={(o) => go({ offset: String(o) })}
      />
    </Section>
  );
}
