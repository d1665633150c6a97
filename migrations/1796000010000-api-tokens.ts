import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * API authentication (DESIGN.md section 11). api_token keeps only SHA-256 of each token (the
 * token is shown once, at creation); the unique index on the hash is how every request finds
 * its token in one indexed query, and revoked_at (not a delete) keeps the name for the audit
 * log. audit_event records every call that changes something: who (token id and name, the
 * name copied so a revoked token's rows still say who), what (method, route pattern, target
 * id), when and the HTTP status. Neither holds a token or a request body.
 */
export class ApiTokens1796000010000 implements MigrationInterface {
  name = 'ApiTokens1796000010000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE api_token (
        id bigserial PRIMARY KEY,
        name varchar(100) NOT NULL,
        scopes text[] NOT NULL,
        token_hash bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz,
        CONSTRAINT api_token_hash_size CHECK (octet_length(token_hash) = 32),
        CONSTRAINT api_token_scopes_known CHECK (scopes <@ ARRAY['read', 'run', 'edit', 'admin']::text[])
      )`);
    await q.query('CREATE UNIQUE INDEX api_token_hash_idx ON api_token (token_hash)');
    await q.query(`
      CREATE TABLE audit_event (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        token_id bigint REFERENCES api_token (id),
        token_name varchar(100) NOT NULL,
        method varchar(10) NOT NULL,
        route varchar(500) NOT NULL,
        target varchar(200),
        status smallint NOT NULL
      )`);
    // GET /audit reads newest first.
    await q.query('CREATE INDEX audit_event_at_idx ON audit_event (at DESC, id DESC)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE IF EXISTS audit_event');
    await q.query('DROP TABLE IF EXISTS api_token');
  }
}
