import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { firstRow, queryRows } from './sql';

/** One call that changed something (or tried to), as GET /audit shows it. */
export interface AuditEventRecord {
  id: number;
  at: Date;
  /** null: the ADMIN_TOKEN of the configuration. */
  tokenId: number | null;
  tokenName: string;
  method: string;
  /** The route pattern, e.g. /api/v1/workflows/:code/runs. */
  route: string;
  /** The id the route acted on, where it names one. */
  target: string | null;
  /** The HTTP status answered. */
  status: number;
}

export type NewAuditEvent = Omit<AuditEventRecord, 'id' | 'at'>;

interface AuditRow {
  id: string | number;
  at: Date;
  token_id: string | number | null;
  token_name: string;
  method: string;
  route: string;
  target: string | null;
  status: number;
}

/** The audit log (DESIGN.md section 11). Rows hold no token and no request body. */
@Injectable()
export class AuditRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async record(e: NewAuditEvent): Promise<void> {
    await queryRows(
      this.dataSource,
      `INSERT INTO audit_event (token_id, token_name, method, route, target, status)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [e.tokenId, e.tokenName, e.method, e.route, e.target, e.status],
    );
  }

  /** Newest first. */
  async list(page: { limit: number; offset: number }): Promise<{ items: AuditEventRecord[]; total: number }> {
    const [rows, count] = await Promise.all([
      queryRows<AuditRow>(
        this.dataSource,
        `SELECT id, at, token_id, token_name, method, route, target, status
           FROM audit_event ORDER BY at DESC, id DESC LIMIT $1 OFFSET $2`,
        [page.limit, page.offset],
      ),
      queryRows<{ n: string }>(this.dataSource, 'SELECT count(*) AS n FROM audit_event'),
    ]);
    return {
      items: rows.map((r) => ({
        id: Number(r.id),
        at: r.at,
        tokenId: r.token_id === null ? null : Number(r.token_id),
        tokenName: r.token_name,
        method: r.method,
        route: r.route,
        target: r.target,
        status: r.status,
      })),
      total: Number(firstRow(count, 'count audit_event').n),
    };
  }
}
