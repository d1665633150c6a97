import type { ReactNode } from 'react';

export function StateBadge({ state }: { state: string }) {
  return (
    <span className={`badge state-${state}`} data-testid="state">
      {state}
    </span>
  );
}

/** The API's refusal or error message, where the action was. */
export function ErrorBox({ error, testId = 'error' }: { error: string | undefined; testId?: string }) {
  if (!error) return null;
  return (
    <div className="error" role="alert" data-testid={testId}>
      {error}
    </div>
  );
}

export function Notice({ text }: { text: string | undefined }) {
  if (!text) return null;
  return (
    <div className="notice" role="status" data-testid="notice">
      {text}
    </div>
  );
}

export function Section({
  title,
  children,
  actions,
}: {
  title: string;
  children: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <section className="card">
      <header className="card-head">
        <h2>{title}</h2>
        <div className="card-actions">{actions}</div>
      </header>
      {children}
    </section>
  );
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function duration(start: string | null, end: string | null, now = Date.now()): string {
  if (!start) return '—';
  const ms = (end ? Date.parse(end) : now) - Date.parse(start);
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return m < 60 ? `${m} min ${Math.round((ms % 60_000) / 1000)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function Pager({
  offset,
  limit,
  total,
  onChange,
}: {
  offset: number;
  limit: number;
  total: number;
  onChange: (offset: number) => void;
}) {
  const last = Math.min(offset + limit, total);
  return (
    <div className="pager">
      <button type="button" disabled={offset === 0} onClick={() => onChange(Math.max(0, offset - limit))}>
        ← Newer
      </button>
      <span data-testid="pager">{total === 0 ? 'none' : `${offset + 1}–${last} of ${total}`}</span>
      <button type="button" disabled={last >= total} onClick={() => onChange(offset + limit)}>
        Older →
      </button>
    </div>
  );
}

/** `k=v` lines ⇄ a params object. */
export function paramsToText(params: Record<string, string> | undefined): string {
  return Object.entries(params ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

export function textToParams(text: string): Record<string, string> {
  const params: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const at = line.indexOf('=');
    if (at <= 0) throw new Error(`params: "${line}" is not name=value`);
    params[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return params;
}
