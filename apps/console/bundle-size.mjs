// Prints the size of the console's build (dist/console), raw and gzipped, after `vite build`.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const dir = fileURLToPath(new URL('../../dist/console', import.meta.url));
const walk = (d) =>
  readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
let raw = 0;
let gzip = 0;
for (const file of walk(dir)) {
  const body = readFileSync(file);
  raw += body.length;
  gzip += gzipSync(body).length;
}
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`console bundle: ${kb(raw)} (${kb(gzip)} gzipped) in ${relative(process.cwd(), dir) || dir}`);
