import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { queryRows } from './sql';

/** A registered data source as stored: the URL only encrypted, plus a redacted copy to show. */
export interface DatasourceRecord {
  name: string;
  type: string;
  urlRedacted: string;
  createdAt: Date;
  updatedAt: Date;
}

interface DatasourceRow {
  name: string;
  type: string;
  url_redacted: string;
  created_at: Date;
  updated_at: Date;
}

const toRecord = (r: DatasourceRow): DatasourceRecord => ({
  name: r.name,
  type: r.type,
  urlRedacted: r.url_redacted,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/**
 * Data sources of SQL tasks (DESIGN.md section 9). The URL with its password is stored only
 * encrypted (the caller encrypts; this layer never sees the key) and read back only by the
 * master that dispatches a SQL task.
 */
@Injectable()
export class DatasourceRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** Inserts a new data source; undefined when the name is taken. */
  async create(input: {
    name: string;
    type: string;
    urlRedacted: string;
    urlEncrypted: Buffer;
  }): Promise<DatasourceRecord | undefined> {
    const rows = await queryRows<DatasourceRow>(
      this.dataSource,
      `INSERT INTO datasource (name, type, url_redacted, url_encrypted) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO NOTHING
       RETURNING name, type, url_redacted, created_at, updated_at`,
      [input.name, input.type, input.urlRedacted, input.urlEncrypted],
    );
    const row = rows[0];
    return row && toRecord(row);
  }

  async list(): Promise<DatasourceRecord[]> {
    const rows = await queryRows<DatasourceRow>(
      this.dataSource,
      'SELECT name, type, url_redacted, created_at, updated_at FROM datasource ORDER BY name',
    );
    return rows.map(toRecord);
  }

  async find(name: string): Promise<DatasourceRecord | undefined> {
    const rows = await queryRows<DatasourceRow>(
      this.dataSource,
      'SELECT name, type, url_redacted, created_at, updated_at FROM datasource WHERE name = $1',
      [name],
    );
    const row = rows[0];
    return row && toRecord(row);
  }

  /** The encrypted URLs of the named data sources (for dispatching SQL tasks), by name. */
  async encryptedUrls(
    names: readonly string[],
  ): Promise<Map<string, { type: string; urlEncrypted: Buffer }>> {
    if (names.length === 0) return new Map();
    const rows = await queryRows<{ name: string; type: string; url_encrypted: Buffer }>(
      this.dataSource,
      'SELECT name, type, url_encrypted FROM datasource WHERE name = ANY($1::text[])',
      [[...names]],
    );
    return new Map(rows.map((r) => [r.name, { type: r.type, urlEncrypted: r.url_encrypted }]));
  }

  /** Which of names exist (definition-time validation of SQL tasks). */
  async existing(names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const rows = await queryRows<{ name: string }>(
      this.dataSource,
      'SELECT name FROM datasource WHERE name = ANY($1::text[]) ORDER BY name',
      [[...names]],
    );
    return rows.map((r) => r.name);
  }

  /** True when it existed. */
  async delete(name: string): Promise<boolean> {
    const rows = await queryRows<{ name: string }>(
      this.dataSource,
      'DELETE FROM datasource WHERE name = $1 RETURNING name',
      [name],
    );
    return rows.length > 0;
  }
}
