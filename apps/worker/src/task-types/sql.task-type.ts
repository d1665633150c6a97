import { Injectable } from '@nestjs/common';
import { Query, type CustomTypesConfig, type FieldDef, type PoolClient, type QueryConfig } from 'pg';
import type { TimerHandle } from '@porpoise/common';
import { TASK_PAYLOAD_LIMITS, type TaskSpec } from '@porpoise/rpc';
import { password, SqlPools } from '../adapters/sql-pools';
import { redactUrl, scrub } from '../domain/redact';
import { describe, invalidPayload, PayloadFields } from './payload';
import {
  failed,
  succeeded,
  type TaskLogSink,
  type TaskRunContext,
  type TaskRunResult,
  type TaskType,
} from './task-type';

/** Rows of a result that go to the task log. */
export const SQL_LOG_ROWS = 1000;
/** One row's JSON line in the log is cut after this many characters. */
export const SQL_LOG_LINE_CHARS = 64 * 1024;
/** After a Kill or timeout, how long the cancelled statement may take before its connection is dropped. */
const CANCEL_WAIT_MS = 5_000;

/** A checked SQL payload (libs/rpc SqlTaskPayload). */
export interface SqlStatementSpec {
  readonly url: string;
  readonly text: string;
  readonly values: readonly (string | null)[];
}

/**
 * Every value as Postgres sends it (text), so outputs and log lines are the database's own
 * spelling: no time zone applied to a timestamp, no precision lost from a bigint or numeric.
 */
const TEXT_TYPES: CustomTypesConfig = { getTypeParser: () => (value: string) => value };

/**
 * SQL (DESIGN.md section 9): one statement on a Postgres data source, with bind parameters (the
 * master turned each `${name}` into `$n` and its value into `values`; the text never holds a
 * value). Always the extended protocol, so a statement is exactly one statement. Its
 * statement_timeout is the task's timeout. The first 1,000 rows of its result go to the task log
 * as JSON lines; the first row's columns become outputs (text; NULL as ""). A Kill or timeout
 * cancels the statement on the server.
 *
 * Connections come from a bounded pool per data source URL (adapters/sql-pools.ts), reset
 * (DISCARD ALL) before they go back; one a statement left inside a transaction is closed instead.
 * The URL's password is never logged nor put in a message.
 */
@Injectable()
export class SqlTaskType implements TaskType<SqlStatementSpec> {
  readonly type = 'SQL' as const;
  readonly startsProcess = false;

  constructor(private readonly pools: SqlPools) {}

  parsePayload(spec: TaskSpec): SqlStatementSpec {
    const f = PayloadFields.of(spec, { emptyAllowed: false });
    const type = f.string('datasourceType', { nonEmpty: true });
    if (type !== 'postgres') invalidPayload('datasourceType', `must be "postgres", got ${describe(type)}`);
    const url = f.string('url', { nonEmpty: true });
    // Never echoed: it carries the password.
    if (!/^postgres(ql)?:\/\//.test(url)) invalidPayload('url', 'must be a postgres:// or postgresql:// URL');
    try {
      new URL(url);
    } catch {
      invalidPayload('url', 'is not a valid URL');
    }
    const text = f.string('text', { nonEmpty: true });
    if (text.includes('\u0000')) invalidPayload('text', 'must not contain a NUL character');
    const values = f.nullableStrings('values', TASK_PAYLOAD_LIMITS.sqlValues);
    values.forEach((v, i) => {
      // Postgres text cannot hold NUL; refused here rather than as a confusing driver error.
      if (v?.includes('\u0000')) invalidPayload(`values[${i}]`, 'must not contain a NUL character');
    });
    f.finish();
    return { url, text, values };
  }

  async run(ctx: TaskRunContext, sql: SqlStatementSpec): Promise<TaskRunResult> {
    const where = redactUrl(sql.url);
    const secret = password(sql.url);
    const clean = (err: unknown) => scrub(err instanceof Error ? err.message : String(err), secret);
    await ctx.log.write(`SQL on ${where}\n`);
    let client: PoolClient;
    try {
      client = await connect(this.pools, sql.url, ctx.signal);
    } catch (err) {
      return failed(ctx.signal.aborted ? 'aborted' : `cannot connect to ${where}: ${clean(err)}`);
    }
    // The pool listens for errors only on idle connections; one that breaks while checked out
    // (the server went away) would otherwise be an uncaught 'error' event.
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken ??= err;
    };
    client.on('error', onError);
    let ended = false;
    let dropTimer: TimerHandle | undefined;
    const cancel = () => {
      if (ended) return;
      const backendPid = (client as unknown as { processID: number | null }).processID;
      if (backendPid !== null) void this.pools.cancel(sql.url, backendPid);
      // A server that does not act on the cancel: drop the connection, the run must end.
      dropTimer = ctx.clock.setTimeout(() => {
        if (ended) return;
        broken ??= new Error('the cancelled statement did not end');
        (
          client as unknown as { connection?: { stream?: { destroy(): void } } }
        ).connection?.stream?.destroy();
      }, CANCEL_WAIT_MS);
    };
    try {
      // A bind value too: nothing is ever spliced into SQL text.
      await client.query("SELECT set_config('statement_timeout', $1, false)", [String(ctx.spec.timeoutMs)]);
      if (ctx.signal.aborted) return failed('aborted');
      ctx.signal.addEventListener('abort', cancel, { once: true });
      const { outputs } = await runStatement(client, sql, ctx.log);
      return succeeded(outputs);
    } catch (err) {
      broken ??= err instanceof Error ? err : new Error(String(err));
      // A stop of the worker's (Kill, the task's timeout) is reported as that stop.
      if (ctx.signal.aborted) return failed('aborted');
      const message = clean(err);
      await ctx.log.write(`ERROR: ${message}\n`);
      return failed(message);
    } finally {
      ended = true;
      ctx.clock.clearTimeout(dropTimer);
      ctx.signal.removeEventListener('abort', cancel);
      if (await release(client, broken)) client.removeListener('error', onError);
    }
  }
}

/** A connection from the pool; a stop while waiting for one gives up (the connection is returned). */
async function connect(pools: SqlPools, url: string, signal: AbortSignal): Promise<PoolClient> {
  if (signal.aborted) throw new Error('aborted');
  const pending = pools.pool(url).connect();
  return new Promise<PoolClient>((resolve, reject) => {
    const onAbort = () => {
      reject(new Error('aborted'));
      void pending.then(
        (c) => c.release(),
        () => undefined,
      );
    };
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (c) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return;
        resolve(c);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * Back to the pool, reset (true), when the statement left the session clean; else closed. A statement
 * may have opened a transaction (BEGIN) or changed session settings: the next task must not
 * inherit them.
 */
async function release(client: PoolClient, broken: Error | undefined): Promise<boolean> {
  if (broken || client.getTransactionStatus() !== 'I') {
    client.release(broken ?? new Error('the statement left a transaction open'));
    return false;
  }
  try {
    await client.query('DISCARD ALL');
  } catch (err) {
    client.release(err instanceof Error ? err : new Error(String(err)));
    return false;
  }
  client.release();
  return true;
}

interface StatementSummary {
  outputs: Record<string, string>;
}

/** Runs the statement, logging rows as they come: a huge result is never held in memory. */
function runStatement(
  client: PoolClient,
  sql: SqlStatementSpec,
  log: TaskLogSink,
): Promise<StatementSummary> {
  const config = {
    text: sql.text,
    values: [...sql.values],
    rowMode: 'array',
    types: TEXT_TYPES,
    // One statement, also without values (the simple protocol would run several).
    queryMode: 'extended',
  } as QueryConfig;
  const query = new Query<unknown[]>(config);
  let rows = 0;
  let outputs: Record<string, string> = {};
  let fields: FieldDef[] = [];
  return new Promise<StatementSummary>((resolve, reject) => {
    // A 'row' listener also stops pg from collecting the rows.
    query.on('row', (row: unknown[], result) => {
      rows++;
      if (rows === 1) {
        fields = result?.fields ?? [];
        outputs = Object.fromEntries(fields.map((f, i) => [f.name, text(row[i])]));
      }
      if (rows <= SQL_LOG_ROWS) void log.write(`${rowLine(fields, row)}\n`);
    });
    query.on('error', reject);
    query.on('end', (result) => {
      const command = result.command ?? '';
      const count = result.rowCount ?? rows;
      const logged = rows > SQL_LOG_ROWS ? `, the first ${SQL_LOG_ROWS} logged` : '';
      void log
        .write(`[porpoise] ${command} ${count} (${rows} row${rows === 1 ? '' : 's'} returned${logged})\n`)
        .then(() => resolve({ outputs }));
    });
    client.query(query);
  });
}

function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function rowLine(fields: readonly FieldDef[], row: readonly unknown[]): string {
  const line = JSON.stringify(Object.fromEntries(fields.map((f, i) => [f.name, row[i] ?? null])));
  return line.length > SQL_LOG_LINE_CHARS
    ? `${line.slice(0, SQL_LOG_LINE_CHARS)} ... (row cut: ${line.length} characters)`
    : line;
}
