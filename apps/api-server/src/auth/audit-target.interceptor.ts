import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { Request } from 'express';
import { type Observable, tap } from 'rxjs';
import { auditRouteOf, noteAuditRoute } from './principal';
import { MAX_TARGET_LENGTH } from './scope.guard';

/**
 * A creating call (`POST /workflows`, `POST /tokens`, `POST /schedules`) has no id in its path:
 * the new thing's id is in the answer. Notes it as the audit row's target, so the log says what
 * was created, not only that something was.
 */
@Injectable()
export class AuditTargetInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const req = context.switchToHttp().getRequest<Request>();
    return next.handle().pipe(
      tap((body: unknown) => {
        const noted = auditRouteOf(req);
        if (noted === undefined || noted.target !== null) return;
        const created = createdIdOf(body);
        if (created !== undefined) noteAuditRoute(req, noted.route, created.slice(0, MAX_TARGET_LENGTH));
      }),
    );
  }
}

/** The id of what an answer describes: its `code` (workflows) or its `id` (everything else). */
export function createdIdOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { code, id } = body as { code?: unknown; id?: unknown };
  for (const value of [code, id]) {
    if (typeof value === 'string' && value !== '') return value;
    if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  }
  return undefined;
}
