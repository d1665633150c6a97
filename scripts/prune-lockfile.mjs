// Removes, from package-lock.json, optional dependencies that have no entry of their own.
//
// Why: the package registry these machines reach does not serve every platform build of some
// native packages (for example @unrs/resolver-binding-android-arm64, pulled in by jest 30).
// `npm install` then leaves them out of the lock file but keeps their names in the parent's
// optionalDependencies, and `npm ci` refuses the lock as "out of sync". Optional platform
// builds that cannot be installed anyway are safe to drop. Run after changing dependencies:
//   npm install && node scripts/prune-lockfile.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages ?? {};
let pruned = 0;

const hasEntry = (parentPath, name) => {
  // npm resolves from the parent's own node_modules up to the root.
  let base = parentPath;
  for (;;) {
    if (packages[`${base ? `${base}/` : ''}node_modules/${name}`]) return true;
    if (!base) return false;
    const i = base.lastIndexOf('/node_modules/');
    base = i === -1 ? '' : base.slice(0, i);
  }
};

for (const [path, entry] of Object.entries(packages)) {
  const optional = entry.optionalDependencies;
  if (!optional) continue;
  for (const name of Object.keys(optional)) {
    if (!hasEntry(path, name)) {
      delete optional[name];
      pruned++;
    }
  }
  if (Object.keys(optional).length === 0) delete entry.optionalDependencies;
}

writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`prune-lockfile: removed ${pruned} optional dependencies the registry does not serve`);
