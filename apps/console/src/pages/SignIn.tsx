import { useState, type FormEvent } from 'react';
import { checkToken, errorText, saveToken } from '../api';
import { ErrorBox } from '../components/bits';

/** Sign-in with an API token (the admin token of `npm start`, or one made on the Tokens page). */
export function SignIn({ onSignedIn, reason }: { onSignedIn: () => void; reason?: string }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>(reason);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await checkToken(token.trim());
      saveToken(token.trim());
      onSignedIn();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="signin">
      <form onSubmit={(e) => void submit(e)} className="card">
        <h1>Porpoise</h1>
        <p>
          Sign in with an API token: <code>npm start</code> writes the admin token to{' '}
          <code>.porpoise/admin-token</code>.
        </p>
        <label>
          Token
          <input
            type="password"
            autoComplete="off"
            value={token}
            onChange={(e) => setToken(e.target.value)}
            data-testid="token-input"
            autoFocus
          />
        </label>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy || token.trim() === ''} data-testid="sign-in">
          Sign in
        </button>
        <p className="muted">
          The token stays in this tab only (sessionStorage) and is sent as a bearer token.
        </p>
      </form>
    </div>
  );
}
