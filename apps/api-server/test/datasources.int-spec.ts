/**
 * Data sources (DESIGN.md section 9) through the REST API on a real Postgres: the URL is stored
 * only sealed, the password never appears in an answer, an error message or the database in
 * clear, and bad input is refused with a message naming the problem and nothing stored.
 */
import type { INestApplication } from '@nestjs/common';
import { openSecret, type ApiServerConfig } from '@porpoise/common';
import { runMigrations } from '@porpoise/dao';
import { startPostgres, type TestServer } from '@porpoise/test-harness';
import { authHeaders } from '@porpoise/test-harness/api-token';
import { nth } from '@porpoise/test-harness/defined';
import { Client } from 'pg';
import { startApiUnderTest } from './support/api-under-test';

const PASSWORD = 'pa55-w0rd-never-shown';
const URL_WITH_PASSWORD = `postgres://etl:${PASSWORD}@db.internal:5432/warehouse`;

let pg: TestServer;
let db: Client;
let app: INestApplication;
let base: string;
let config: ApiServerConfig;

interface Reply {
  status: number;
  text: string;
  json: unknown;
}

async function send(method: string, path: string, body?: unknown): Promise<Reply> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: authHeaders(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? (JSON.parse(text) as unknown) : undefined };
}

const message = (reply: Reply): string =>
  (reply.json as { message?: string } | undefined)?.message ?? reply.text;

const count = async (): Promise<number> =>
  Number(nth((await db.query<{ n: string }>('SELECT count(*) AS n FROM datasource')).rows, 0).n);

beforeAll(async () => {
  pg = await startPostgres();
  await runMigrations(pg.endpoint);
  db = new Client({ connectionString: pg.endpoint });
  await db.connect();
  ({ app, config, base } = await startApiUnderTest(pg.endpoint, 'datasource-test-secret-0123456789'));
});

afterAll(async () => {
  await app?.close();
  await db?.end();
  await pg?.dispose();
});

describe('data sources', () => {
  it('creates one, answers it without the password, stores the URL sealed, lists, gets and deletes it', async () => {
    const created = await send('POST', '/api/v1/datasources', {
      name: 'warehouse',
      type: 'postgres',
      url: URL_WITH_PASSWORD,
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      name: 'warehouse',
      type: 'postgres',
      url: 'postgres://etl:****@db.internal:5432/warehouse',
    });
    expect(created.text).not.toContain(PASSWORD);

    const listed = await send('GET', '/api/v1/datasources');
    expect(listed.status).toBe(200);
    expect(listed.json).toMatchObject({ items: [{ name: 'warehouse' }] });
    expect(listed.text).not.toContain(PASSWORD);
    const one = await send('GET', '/api/v1/datasources/warehouse');
    expect(one.status).toBe(200);
    expect(one.text).not.toContain(PASSWORD);

    // In the database: no clear password anywhere; the sealed URL opens with the node's key.
    const row = nth(
      (await db.query<{ url_redacted: string; url_encrypted: Buffer }>('SELECT * FROM datasource')).rows,
      0,
    );
    expect(row.url_redacted).not.toContain(PASSWORD);
    expect(row.url_encrypted.toString('latin1')).not.toContain(PASSWORD);
    expect(openSecret(config.datasourceKey, row.url_encrypted)).toBe(URL_WITH_PASSWORD);

    expect((await send('DELETE', '/api/v1/datasources/warehouse')).status).toBe(204);
    expect((await send('GET', '/api/v1/datasources/warehouse')).status).toBe(404);
    expect((await send('DELETE', '/api/v1/datasources/warehouse')).status).toBe(404);
    expect(await count()).toBe(0);
  });

  it('refuses a taken name with 409 and keeps the first', async () => {
    const body = { name: 'twice', type: 'postgres', url: URL_WITH_PASSWORD };
    expect((await send('POST', '/api/v1/datasources', body)).status).toBe(201);
    const again = await send('POST', '/api/v1/datasources', { ...body, url: 'postgres://x:y@other/db' });
    expect(again.status).toBe(409);
    expect(message(again)).toMatch(/"twice" already exists/);
    expect(await count()).toBe(1);
    expect((await send('DELETE', '/api/v1/datasources/twice')).status).toBe(204);
  });

  it.each<[unknown, RegExp]>([
    [['not', 'an', 'object'], /must be a JSON object/],
    [{ type: 'postgres', url: URL_WITH_PASSWORD }, /missing field "name"/],
    [{ name: 'a b', type: 'postgres', url: URL_WITH_PASSWORD }, /"name"/],
    [{ name: 'a', type: 'mysql', url: URL_WITH_PASSWORD }, /"type" must be one of postgres/],
    [{ name: 'a', type: 'postgres' }, /"url" must be a non-empty string/],
    [
      { name: 'a', type: 'postgres', url: `http://etl:${PASSWORD}@db/warehouse` },
      /postgres:\/\/ or postgresql:\/\//,
    ],
    [
      { name: 'a', type: 'postgres', url: `postgres://etl:${PASSWORD}@db.internal:5432` },
      /names no database/,
    ],
    [{ name: 'a', type: 'postgres', url: `not a url ${PASSWORD}` }, /"url" is not a URL/],
    [{ name: 'a', type: 'postgres', url: URL_WITH_PASSWORD, extra: 1 }, /unknown field "extra"/],
  ])('refuses %j with 400 naming the problem, never echoing the password', async (body, expected) => {
    const res = await send('POST', '/api/v1/datasources', body);
    expect(res.status).toBe(400);
    expect(message(res)).toMatch(expected);
    expect(res.text).not.toContain(PASSWORD);
    expect(await count()).toBe(0);
  });
});
