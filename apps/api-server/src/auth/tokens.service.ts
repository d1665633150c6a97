import { Injectable } from '@nestjs/common';
import { generateApiToken, hashApiToken } from '@porpoise/common';
import {
  ApiTokenRepository,
  AuditRepository,
  type ApiTokenRecord,
  type AuditEventRecord,
} from '@porpoise/dao';
import { NotFoundError } from '../common/api-errors';
import type { Page } from '../common/input';
import { parseTokenBody } from './token-body';

/** Token administration and the audit log (admin scope). */
@Injectable()
export class TokensService {
  constructor(
    private readonly tokens: ApiTokenRepository,
    private readonly auditLog: AuditRepository,
  ) {}

  /** Creates a token; the returned `token` is the only time it exists outside its holder. */
  async create(body: unknown): Promise<ApiTokenRecord & { token: string }> {
    const input = parseTokenBody(body);
    const token = generateApiToken();
    const record = await this.tokens.create(input.name, input.scopes, hashApiToken(token));
    return { ...record, token };
  }

  list(): Promise<{ items: ApiTokenRecord[] }> {
    return this.tokens.list().then((items) => ({ items }));
  }

  async revoke(id: number): Promise<void> {
    if ((await this.tokens.revoke(id)) === 'notFound') throw new NotFoundError(`token ${id} not found`);
  }

  audit(page: Page): Promise<{ items: AuditEventRecord[]; total: number }> {
    return this.auditLog.list(page);
  }
}
