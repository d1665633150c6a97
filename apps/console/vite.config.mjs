// The console's static build: `npm run build` writes it to dist/console, which every API server
// serves at / (apps/api-server/src/console). No dev server is needed to use it.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  // Vite 8 transforms .tsx itself (oxc); React 19's automatic runtime, no plugin needed.
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: fileURLToPath(new URL('../../dist/console', import.meta.url)),
    emptyOutDir: true,
    // No inline script may be needed: the API serves the console under a CSP without 'unsafe-inline'.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: true,
    chunkSizeWarningLimit: 1024,
    rolldownOptions: {
      // React Flow's "use client" lines mean nothing in a plain client bundle.
      onwarn(warning, warn) {
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
  logLevel: 'info',
});
