import { useState } from 'react';
import { ErrorBox, Pager, Section, when } from '../components/bits';
import { usePoll } from '../hooks';
import type { AuditEvent, Page } from '../types';

const LIMIT = 50;

/** Who changed what, when, and what the API answered (admin). */
export function AuditPage() {
  const [offset, setOffset] = useState(0);
  const audit = usePoll<Page<AuditEvent>>(`/audit?limit=${LIMIT}&offset=${offset}`, 5000);
  return (
    <Section title="Audit">
      <ErrorBox error={audit.error} />
      <table className="table" data-testid="audit-table">
        <thead>
          <tr>
            <th>When</th>
            <th>Who</th>
            <th>Method</th>
            <th>Route</th>
            <th>Target</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          {(audit.data?.items ?? []).map((e) => (
            <tr key={e.id}>
              <td>{when(e.at)}</td>
              <td>{e.tokenName}</td>
              <td>{e.method}</td>
              <td>
                <code>{e.route}</code>
              </td>
              <td>{e.target ?? '—'}</td>
              <td className={e.status >= 400 ? 'bad' : ''}>{e.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Pager offset={offset} limit={LIMIT} total={audit.data?.total ?? 0} onChange={setOffset} />
    </Section>
  );
}
