import { Inject, Injectable } from '@nestjs/common';
import {
  API_TOKEN_PATTERN,
  hashApiToken,
  PORPOISE_CONFIG,
  tokensEqual,
  type ApiServerConfig,
} from '@porpoise/common';
import { ApiTokenRepository } from '@porpoise/dao';
import { ADMIN_TOKEN_NAME, type Principal } from './principal';
import { readBearer } from './request-checks';

export type Authentication = { readonly principal: Principal } | { readonly problem: string };

/**
 * Turns an Authorization header into a principal. ADMIN_TOKEN is compared in constant time;
 * any other token is looked up by its SHA-256 in one indexed query, every request (no cache),
 * so a revocation on any API server holds on all of them at once.
 */
@Injectable()
export class ApiAuthenticator {
  private readonly adminToken: string | undefined;

  constructor(
    @Inject(PORPOISE_CONFIG) config: ApiServerConfig,
    private readonly tokens: ApiTokenRepository,
  ) {
    this.adminToken = config.adminToken;
  }

  async authenticate(header: string | undefined): Promise<Authentication> {
    const bearer = readBearer(header);
    if ('problem' in bearer) return bearer;
    const { token } = bearer;
    if (this.adminToken !== undefined && tokensEqual(token, this.adminToken)) {
      return { principal: { tokenId: null, name: ADMIN_TOKEN_NAME, scopes: ['admin'] } };
    }
    // Only what could be one of ours reaches the database.
    if (API_TOKEN_PATTERN.test(token)) {
      const found = await this.tokens.findActiveByHash(hashApiToken(token));
      if (found) return { principal: { tokenId: found.id, name: found.name, scopes: found.scopes } };
    }
    return { problem: 'unknown or revoked token' };
  }
}
