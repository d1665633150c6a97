import { useState } from 'react';
import { api, post } from '../api';
import { ErrorBox, Section, when } from '../components/bits';
import { useAction, usePoll } from '../hooks';
import type { Token } from '../types';

const SCOPES = ['read', 'run', 'edit', 'admin'] as const;

/** API tokens (admin): create one (its secret is shown once), revoke one. */
export function TokensPage() {
  const tokens = usePoll<{ items: Token[] }>('/tokens', 10_000);
  const action = useAction();
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Set<string>>(new Set(['read']));
  const [created, setCreated] = useState<{ name: string; token: string }>();

  const create = () =>
    action.run(async () => {
      const res = await post<Token & { token: string }>('/tokens', { name, scopes: [...scopes] });
      setCreated({ name: res.name, token: res.token });
      setName('');
      tokens.reload();
    });
  const revoke = (t: Token) =>
    action.run(async () => {
      if (!window.confirm(`Revoke token "${t.name}"? Every call with it is refused at once.`)) return;
      await api('DELETE', `/tokens/${t.id}`);
      tokens.reload();
    });

  return (
    <>
      <Section title="Tokens">
        <ErrorBox error={tokens.error ?? action.error} />
        <table className="table" data-testid="tokens-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Scopes</th>
              <th>Created</th>
              <th>Revoked</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(tokens.data?.items ?? []).map((t) => (
              <tr key={t.id} className={t.revokedAt ? 'muted' : ''}>
                <td>{t.name}</td>
                <td>{t.scopes.join(', ')}</td>
                <td>{when(t.createdAt)}</td>
                <td>{when(t.revokedAt)}</td>
                <td>
                  {t.revokedAt ? null : (
                    <button type="button" className="link" onClick={() => void revoke(t)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      <Section title="New token">
        <div className="form-grid">
          <label>
            Name
            <input value={name} onChange={(e) => setName(e.target.value)} data-testid="token-name" />
          </label>
          <div>
            {SCOPES.map((s) => (
              <label key={s} className="inline">
                <input
                  type="checkbox"
                  checked={scopes.has(s)}
                  onChange={(e) => {
                    const next = new Set(scopes);
                    if (e.target.checked) next.add(s);
                    else next.delete(s);
                    setScopes(next);
                  }}
                />{' '}
                {s}
              </label>
            ))}
          </div>
          <button
            type="button"
            className="primary"
            onClick={() => void create()}
            disabled={action.busy || name.trim() === ''}
          >
            Create token
          </button>
          {created ? (
            <div className="notice" data-testid="created-token">
              Token <strong>{created.name}</strong> (shown only now): <code>{created.token}</code>
              <div>
                Sign-in link: <code>{`${window.location.origin}/#token=${created.token}`}</code>
              </div>
            </div>
          ) : null}
        </div>
      </Section>
    </>
  );
}
