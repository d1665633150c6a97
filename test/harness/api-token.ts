/**
 * The admin token every test gives the API servers it starts (ADMIN_TOKEN) and sends on every
 * /api/v1 call (DESIGN.md section 11). Fixed, so a process started by one helper and called by
 * another agree; never used outside tests.
 */
export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdefghijklmnop';

/** Authorization for TEST_ADMIN_TOKEN, with any other headers given. */
export function authHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, ...extra };
}
