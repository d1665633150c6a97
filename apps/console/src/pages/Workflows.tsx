import { useEffect, useState } from 'react';
import { get } from '../api';
import { duration, ErrorBox, Pager, Section, StateBadge, when } from '../components/bits';
import { useNow, usePoll, useVisible } from '../hooks';
import { Link } from '../router';
import type { Instance, Page, WorkflowSummary } from '../types';

const LIMIT = 25;

/**
 * Each workflow's newest run (the API lists runs per workflow, newest first), read again every
 * 5 s while the tab is visible.
 */
function useLastRuns(codes: readonly string[]): Map<string, Instance | null> {
  const [runs, setRuns] = useState(new Map<string, Instance | null>());
  const key = codes.join(',');
  const visible = useVisible();
  const now = useNow(5000);
  useEffect(() => {
    let cancelled = false;
    if (!visible) return;
    const codesNow = key === '' ? [] : key.split(',');
    void Promise.all(
      codesNow.map((code) =>
        get<Page<Instance>>(`/workflow-instances?workflowCode=${encodeURIComponent(code)}&limit=1`).then(
          (page) => [code, page.items[0] ?? null] as const,
          () => [code, null] as const,
        ),
      ),
    ).then((pairs) => {
      if (!cancelled) setRuns(new Map(pairs));
    });
    return () => {
      cancelled = true;
    };
    // `now` re-reads them (the list of workflows alone does not change when a run ends).
  }, [key, visible, now]);
  return runs;
}

export function WorkflowsPage() {
  const [offset, setOffset] = useState(0);
  const list = usePoll<Page<WorkflowSummary>>(`/workflows?limit=${LIMIT}&offset=${offset}`, 5000);
  const items = list.data?.items ?? [];
  const lastRuns = useLastRuns(items.map((w) => w.code));

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
            const run = lastRuns.get(w.code);
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
                      <StateBadge state={run.state} /> #{run.id} · {when(run.startTime ?? run.createdAt)} ·{' '}
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
