import { useEffect, useState } from 'react';
import { ApiError, forgetToken, get, onUnauthorized, readToken } from './api';
import { Link, useLocation } from './router';
import { AuditPage } from './pages/Audit';
import { ClusterPage } from './pages/Cluster';
import { RunDetailPage } from './pages/RunDetail';
import { RunsPage } from './pages/Runs';
import { SchedulesPage } from './pages/Schedules';
import { SignIn } from './pages/SignIn';
import { TokensPage } from './pages/Tokens';
import { WorkflowDetailPage, WorkflowNewPage } from './pages/WorkflowDetail';
import { WorkflowsPage } from './pages/Workflows';

const NAV: Array<{ to: string; label: string; admin?: boolean }> = [
  { to: '/workflows', label: 'Workflows' },
  { to: '/runs', label: 'Runs' },
  { to: '/schedules', label: 'Schedules' },
  { to: '/cluster', label: 'Cluster' },
  { to: '/tokens', label: 'Tokens', admin: true },
  { to: '/audit', label: 'Audit', admin: true },
];

function Page({ path }: { path: string }) {
  let m: RegExpExecArray | null;
  if (path === '/' || path === '/workflows') return <WorkflowsPage />;
  if (path === '/workflows/new') return <WorkflowNewPage />;
  if ((m = /^\/workflows\/([^/]+)$/.exec(path))) {
    return <WorkflowDetailPage code={decodeURIComponent(m[1] ?? '')} />;
  }
  if (path === '/runs') return <RunsPage />;
  if ((m = /^\/runs\/(\d+)$/.exec(path))) return <RunDetailPage id={Number(m[1])} />;
  if (path === '/schedules') return <SchedulesPage />;
  if (path === '/cluster') return <ClusterPage />;
  if (path === '/tokens') return <TokensPage />;
  if (path === '/audit') return <AuditPage />;
  return (
    <div className="card">
      <h2>Not found</h2>
      <p>
        No page at <code>{path}</code>. <Link to="/workflows">Workflows</Link>
      </p>
    </div>
  );
}

export function App() {
  const [signedIn, setSignedIn] = useState(readToken() !== null);
  const [reason, setReason] = useState<string>();
  const [admin, setAdmin] = useState(false);
  const { path } = useLocation();

  useEffect(
    () =>
      onUnauthorized((message) => {
        forgetToken();
        setReason(`Signed out: ${message}`);
        setSignedIn(false);
      }),
    [],
  );

  useEffect(() => {
    if (!signedIn) return;
    // The admin pages are shown to tokens that may read them (a 403 for the others).
    get('/tokens').then(
      () => setAdmin(true),
      (err: unknown) => setAdmin(!(err instanceof ApiError && err.status === 403)),
    );
  }, [signedIn]);

  if (!signedIn) {
    return (
      <SignIn
        reason={reason}
        onSignedIn={() => {
          setReason(undefined);
          setSignedIn(true);
        }}
      />
    );
  }

  const section = '/' + (path.split('/')[1] ?? '');
  return (
    <div className="shell">
      <nav className="nav">
        <span className="brand">Porpoise</span>
        {NAV.filter((n) => admin || !n.admin).map((n) => (
          <Link
            key={n.to}
            to={n.to}
            className={section === n.to || (path === '/' && n.to === '/workflows') ? 'active' : ''}
            testId={`nav-${n.label.toLowerCase()}`}
          >
            {n.label}
          </Link>
        ))}
        <span className="spacer" />
        <a href="/api/docs" target="_blank" rel="noreferrer">
          API
        </a>
        <button
          type="button"
          className="link"
          data-testid="sign-out"
          onClick={() => {
            forgetToken();
            setSignedIn(false);
          }}
        >
          Sign out
        </button>
      </nav>
      <main>
        <Page path={path} />
      </main>
    </div>
  );
}
