import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { scopeAllows, type ApiScope } from '@porpoise/common';
import type { Request } from 'express';
import { ForbiddenError, UnauthorizedError } from '../common/api-errors';
import { noteAuditRoute, principalOf } from './principal';
import { OPEN_ROUTE_METADATA, SCOPE_METADATA } from './scope.decorator';

/** The longest target id an audit row keeps. */
export const MAX_TARGET_LENGTH = 200;

/**
 * Checks the scope a route declares (@Scope) against the request's token, which the gate in
 * front of the body parser has already authenticated (auth-gates.ts). Fails closed: a route
 * without @Scope or @OpenRoute is refused, and so is a scoped route reached without a principal
 * (an app booted without the gates).
 */
@Injectable()
export class ScopeGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(OPEN_ROUTE_METADATA, targets)) return true;
    const req = context.switchToHttp().getRequest<Request>();
    const route = (req.route as { path?: unknown } | undefined)?.path;
    const pattern = typeof route === 'string' ? route : req.path;
    const firstParam = Object.values((req.params ?? {}) as Record<string, unknown>).find(
      (v): v is string => typeof v === 'string',
    );
    noteAuditRoute(req, pattern, firstParam === undefined ? null : firstParam.slice(0, MAX_TARGET_LENGTH));

    const needed = this.reflector.getAllAndOverride<ApiScope | undefined>(SCOPE_METADATA, targets);
    if (needed === undefined) {
      // A programming error, refused rather than left open.
      throw new ForbiddenError(`${req.method} ${pattern} declares no scope; it is refused to everyone`);
    }
    const principal = principalOf(req);
    if (!principal) throw new UnauthorizedError('missing bearer token: send "Authorization: Bearer <token>"');
    if (!scopeAllows(principal.scopes, needed)) {
      throw new ForbiddenError(
        `${req.method} ${pattern} needs the "${needed}" scope; token ${JSON.stringify(principal.name)} ` +
          `has ${principal.scopes.map((s) => `"${s}"`).join(', ') || 'none'}`,
      );
    }
    return true;
  }
}
