import { DataSource, type QueryResult, type QueryRunner } from 'typeorm';

export interface QueryOutcome<T> {
  readonly rows: T[];
  readonly rowCount: number;
}

/**
 * Runs one statement and returns pg's rows and rowCount, whatever the statement is.
 * DataSource.query() answers UPDATE/DELETE with [rows, count] and everything else with rows;
 * the structured result has both in one place. Without a runner it borrows a pooled
 * connection. A single statement is one round trip and one transaction (data-modifying CTEs
 * commit together), which is how the hot paths stay cheap.
 */
export async function queryResult<T>(
  source: DataSource | QueryRunner,
  sql: string,
  params: unknown[] = [],
): Promise<QueryOutcome<T>> {
  const runner = source instanceof DataSource ? source.createQueryRunner() : source;
  try {
    const result = (await runner.query(sql, params, true)) as QueryResult<T>;
    const rows = result.records ?? [];
    return { rows, rowCount: result.affected ?? rows.length };
  } finally {
    if (runner !== source) await runner.release();
  }
}

/**
 * A statement that always returns a row (an aggregate, a SELECT of scalar subqueries, an
 * INSERT that cannot be skipped) returned none: a broken invariant, not a lookup that missed.
 */
export class MissingRowError extends Error {
  override readonly name = 'MissingRowError';

  constructor(readonly what: string) {
    super(`${what}: the statement returned no row`);
  }
}

/**
 * The first row of a statement that must return one; throws MissingRowError (naming `what`)
 * when it returned none. Lookups that may miss read `rows[0]` and handle undefined instead.
 */
export function firstRow<T>(rows: readonly T[], what: string): T {
  const row = rows[0];
  if (row === undefined) throw new MissingRowError(what);
  return row;
}

/** queryResult's rows only. */
export async function queryRows<T>(
  source: DataSource | QueryRunner,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  return (await queryResult<T>(source, sql, params)).rows;
}

/** Runs fn in one transaction on one connection: committed when it resolves, rolled back when it throws. */
export async function inTransaction<T>(
  dataSource: DataSource,
  fn: (runner: QueryRunner) => Promise<T>,
): Promise<T> {
  const runner = dataSource.createQueryRunner();
  try {
    await runner.startTransaction();
    try {
      const result = await fn(runner);
      await runner.commitTransaction();
      return result;
    } catch (err) {
      if (runner.isTransactionActive) await runner.rollbackTransaction();
      throw err;
    }
  } finally {
    await runner.release();
  }
}
