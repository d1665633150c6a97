import { useState } from 'react';
import { duration, ErrorBox, Pager, Section, StateBadge, when } from '../components/bits';
import { usePoll } from '../hooks';
import { Link } from '../router';
import type { Page, WorkflowListItem } from '../types';

const LIMIT = 25;

export function WorkflowsPage() {
  const [offset, setOffset] = useState(0);
  // Each workflow comes with its newest run (one query on the server for the whole page).
  const list = usePoll<Page<WorkflowListItem>>(`/workflows?limit=${LIMIT}&offset=${offset}`, 5000);
  const items = list.data?.items ?? [];

  return (
    <Section
      title="Workflows"
      actions={
        <Link to="/workflows/new" className="button" testId="new-workflow">
          + New workflow
        </Link>
      }
    >
      <ErrorBox error={list.error} />
      <table className="table" data-testid="workflows-table">
        <thead>
          <tr>
            <th>Name</th>
            <th>Code</th>
            <th>Version</th>
            <th>Updated</th>
            <th>Last run</th>
          </tr>
        </thead>
        <tbody>
          {items.map((w) => {
            const run = w.lastRun;
            return (
              <tr key={w.code}>
                <td>
                  <Link to={`/workflows/${w.code}`} testId={`workflow-${w.name}`}>
                    {w.name}
                  </Link>
                  {w.description ? <div className="muted">{w.description}</div> : null}
                </td>
                <td>
                  <code>{w.code}</code>
                </td>
                <td>{w.version}</td>
                <td>{when(w.updatedAt)}</td>
                <td>
                  {run ? (
                    <Link to={`/runs/${run.id}`}>
                      <StateBadge state={run.state} /> #{run.id} · {when(run.startTime)} ·{' '}
                      {duration(run.startTime, run.endTime)}
                    </Link>
                  ) : (
                    <span className="muted">never run</span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {list.data && list.data.total === 0 ? <p className="muted">No workflows yet: create one.</p> : null}
      <Pager offset={offset} limit={LIMIT} total={list.data?.total ?? 0} onChange={setOffset} />
    </Section>
  );
}
