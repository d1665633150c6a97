import type { ApiScope } from '@porpoise/common';
import type { Request } from 'express';

/** Who a request authenticated as. */
export interface Principal {
  /** null: the configuration's ADMIN_TOKEN. */
  readonly tokenId: number | null;
  /** The token's name; "admin" for ADMIN_TOKEN. */
  readonly name: string;
  readonly scopes: readonly ApiScope[];
}

/** The name the audit log gives ADMIN_TOKEN (a stored token cannot take it). */
export const ADMIN_TOKEN_NAME = 'admin';

const PRINCIPAL = Symbol('porpoise.principal');
const AUDIT_ROUTE = Symbol('porpoise.auditRoute');

type Marked = Request & {
  [PRINCIPAL]?: Principal;
  [AUDIT_ROUTE]?: { route: string; target: string | null };
};

export function setPrincipal(req: Request, principal: Principal): void {
  (req as Marked)[PRINCIPAL] = principal;
}

export function principalOf(req: Request): Principal | undefined {
  return (req as Marked)[PRINCIPAL];
}

/**
 * The route pattern and target id, noted by the scope guard while Express still has them
 * (req.route and req.params), for the audit row written once the response is sent.
 */
export function noteAuditRoute(req: Request, route: string, target: string | null): void {
  (req as Marked)[AUDIT_ROUTE] = { route, target };
}

export function auditRouteOf(req: Request): { route: string; target: string | null } | undefined {
  return (req as Marked)[AUDIT_ROUTE];
}
