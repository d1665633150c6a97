import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { insertCommandsSql } from '../src/repositories/command.repository';

const ROOT = join(__dirname, '..', '..', '..');
const OWNER = 'libs/dao/src/repositories/command.repository.ts';

/** Product source files (tests, their helpers and benchmarks may write fixtures directly). */
function productSources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'test' || name === 'dist') return [];
    if (statSync(path).isDirectory()) return productSources(path);
    return name.endsWith('.ts') && !name.endsWith('.spec.ts') ? [path] : [];
  });
}

describe('the command table has one owner (issue: every command written through CommandRepository)', () => {
  it('no product source but command.repository.ts contains INSERT INTO command', () => {
    const writers = ['apps', 'libs', 'migrations']
      .flatMap((top) => productSources(join(ROOT, top)))
      .filter((path) => /INSERT\s+INTO\s+command\b/i.test(readFileSync(path, 'utf8')))
      .map((path) => relative(ROOT, path));
    expect(writers).toEqual([OWNER]);
  });

  it('builds the insert from the source the caller names', () => {
    const sql = insertCommandsSql({ from: 'u', type: '$2', where: "state = 'X'", returning: 'id, type' });
    expect(sql.replace(/\s+/g, ' ')).toBe(
      'INSERT INTO command (type, workflow_code, workflow_version, workflow_instance_id, params, priority) ' +
        'SELECT $2, workflow_code, workflow_version, id, params, ' +
        'coalesce((SELECT pd.priority FROM workflow_definition pd WHERE pd.code = workflow_code), 2) ' +
        "FROM u WHERE state = 'X' RETURNING id, type",
    );
    expect(insertCommandsSql({ from: 'ids', type: "'A'", id: 'ids.c' }).replace(/\s+/g, ' ')).toContain(
      'INSERT INTO command (id, type, workflow_code, workflow_version, workflow_instance_id, params, priority) ' +
        "SELECT ids.c, 'A',",
    );
  });
});
