import { Inject, Injectable } from '@nestjs/common';
import type { ApiScope } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { firstRow, queryResult, queryRows } from './sql';

/** A stored API token as it may be shown: never the token, never its hash. */
export interface ApiTokenRecord {
  id: number;
  name: string;
  scopes: ApiScope[];
  createdAt: Date;
  revokedAt: Date | null;
}

/** Who a request authenticated as. */
export interface ApiTokenIdentity {
  id: number;
  name: string;
  scopes: ApiScope[];
}

interface ApiTokenRow {
  id: string | number;
  name: string;
  scopes: ApiScope[];
  created_at: Date;
  revoked_at: Date | null;
}

const toRecord = (r: ApiTokenRow): ApiTokenRecord => ({
  id: Number(r.id),
  name: r.name,
  scopes: r.scopes,
  createdAt: r.created_at,
  revokedAt: r.revoked_at,
});

/**
 * API tokens (DESIGN.md section 11), kept as SHA-256 hashes. A request finds its token with
 * one indexed query on the hash, every time (no cache): a revocation written by any API
 * server is seen by every other one at the next request.
 */
@Injectable()
export class ApiTokenRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async create(name: string, scopes: readonly ApiScope[], tokenHash: Buffer): Promise<ApiTokenRecord> {
    const rows = await queryRows<ApiTokenRow>(
      this.dataSource,
      `INSERT INTO api_token (name, scopes, token_hash) VALUES ($1, $2::text[], $3)
       RETURNING id, name, scopes, created_at, revoked_at`,
      [name, scopes, tokenHash],
    );
    return toRecord(firstRow(rows, 'insert api_token'));
  }

  /** The live (not revoked) token with this hash, if any. */
  async findActiveByHash(tokenHash: Buffer): Promise<ApiTokenIdentity | undefined> {
    const rows = await queryRows<Pick<ApiTokenRow, 'id' | 'name' | 'scopes'>>(
      this.dataSource,
      'SELECT id, name, scopes FROM api_token WHERE token_hash = $1 AND revoked_at IS NULL',
      [tokenHash],
    );
    const row = rows[0];
    return row && { id: Number(row.id), name: row.name, scopes: row.scopes };
  }

  /** Every token, revoked ones included (they still name rows of the audit log), newest first. */
  async list(): Promise<ApiTokenRecord[]> {
    const rows = await queryRows<ApiTokenRow>(
      this.dataSource,
      'SELECT id, name, scopes, created_at, revoked_at FROM api_token ORDER BY id DESC',
    );
    return rows.map(toRecord);
  }

  /** Revokes a token: 'revoked' (also when it already was), or 'notFound'. */
  async revoke(id: number): Promise<'revoked' | 'notFound'> {
    const { rowCount } = await queryResult(
      this.dataSource,
      'UPDATE api_token SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1',
      [id],
    );
    return rowCount > 0 ? 'revoked' : 'notFound';
  }
}
