import { DatabaseError } from 'pg';

/** SQLSTATE the registry functions raise when a client's session no longer exists (migration 1795306077000). */
export const SESSION_EXPIRED_SQLSTATE = 'PR001';

export function sqlState(err: unknown): string | undefined {
  return err instanceof DatabaseError ? err.code : undefined;
}

/**
 * True when err means the database could not be reached or dropped us: socket errors, pg's
 * "Connection terminated…", and the server's connection-exception, shutdown and
 * too-many-connections classes. Not timeouts waiting for a pooled connection or a reply: those
 * say the database is slow, and only the heartbeat decides that the connection is down.
 */
export function isConnectionFailure(err: unknown): boolean {
  if (err instanceof DatabaseError) {
    const code = err.code ?? '';
    return code.startsWith('08') || code.startsWith('57P') || code === '53300';
  }
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return (typeof code === 'string' && code.startsWith('E')) || err.message.includes('Connection terminated');
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
