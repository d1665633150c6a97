import { applyDecorators, SetMetadata, type CustomDecorator } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { ApiScope } from '@porpoise/common';
import { ErrorDto } from '../common/error.dto';

export const SCOPE_METADATA = 'porpoise:scope';
export const OPEN_ROUTE_METADATA = 'porpoise:openRoute';
/** The name of the bearer security scheme in the OpenAPI document. */
export const BEARER_SCHEME = 'bearer';

/**
 * The scope a route needs (DESIGN.md section 11): read for every GET; run to trigger, control
 * and backfill; edit to create, change and delete definitions; admin for tokens and the audit
 * log (admin implies all). Every /api/v1 handler carries one: ScopeGuard refuses a route that
 * declares neither a scope nor @OpenRoute, and auth.int-spec checks the live route list.
 */
export function Scope(scope: ApiScope): MethodDecorator & ClassDecorator {
  return applyDecorators(
    SetMetadata(SCOPE_METADATA, scope),
    ApiBearerAuth(BEARER_SCHEME),
    ApiUnauthorizedResponse({
      type: ErrorDto,
      description: 'No valid bearer token (missing, malformed, unknown or revoked).',
    }),
    ApiForbiddenResponse({ type: ErrorDto, description: `The token lacks the "${scope}" scope.` }),
  );
}

/** A route outside /api/v1 that needs no token: /health, /metrics, /api/docs. */
export function OpenRoute(): CustomDecorator {
  // OpenApiService gives these operations `security: []` in the document.
  return SetMetadata(OPEN_ROUTE_METADATA, true);
}
