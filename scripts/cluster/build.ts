/** "Build first if needed": whether dist/ is missing or older than the sources the nodes run. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeRole } from './cluster-file';

export const ROLES: readonly NodeRole[] = ['master', 'worker', 'api-server'];

/** dist/apps/<role>/src/main.js: the entry point of a node, run directly (no npm, no shell). */
export function nodeEntry(repoRoot: string, role: NodeRole): string {
  return join(repoRoot, 'dist', 'apps', role, 'src', 'main.js');
}

/** Why dist/ needs a build, or undefined when it is current. */
export function staleBuildReason(repoRoot: string): string | undefined {
  let oldestOutput = Infinity;
  for (const role of ROLES) {
    const entry = nodeEntry(repoRoot, role);
    if (!existsSync(entry)) return `${entry} is missing`;
    oldestOutput = Math.min(oldestOutput, statSync(entry).mtimeMs);
  }
  for (const file of ['tsconfig.json', 'tsconfig.build.json']) {
    if (statSync(join(repoRoot, file)).mtimeMs > oldestOutput) return `${file} changed since the last build`;
  }
  for (const dir of ['apps', 'libs', 'migrations']) {
    const newer = newerSource(join(repoRoot, dir), oldestOutput);
    if (newer) return `${newer.slice(repoRoot.length + 1)} changed since the last build`;
  }
  return undefined;
}

/** The first built .ts file under dir modified after mtimeMs (tests are not built). */
function newerSource(dir: string, mtimeMs: number): string | undefined {
  if (!existsSync(dir)) return undefined;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'test' || entry.name === 'node_modules') continue;
      const found = newerSource(path, mtimeMs);
      if (found) return found;
    } else if (
      entry.name.endsWith('.ts') &&
      !entry.name.endsWith('.spec.ts') &&
      !entry.name.endsWith('.int-spec.ts') &&
      statSync(path).mtimeMs > mtimeMs
    ) {
      return path;
    }
  }
  return undefined;
}

/** Runs `npm run build` in the foreground; throws if it fails. */
export function build(repoRoot: string): void {
  const result = spawnSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: 'inherit' });
  if (result.error) throw new Error(`npm run build could not start: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`npm run build failed (${result.signal ?? `exit status ${result.status}`})`);
  }
  const still = staleBuildReason(repoRoot);
  if (still?.endsWith('is missing')) throw new Error(`npm run build did not produce the nodes: ${still}`);
}
