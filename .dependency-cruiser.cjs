// Import cycles, type-only ones included (eslint's import-x/no-cycle skips `import type`):
// `npm run lint` runs `depcruise` with this file over apps, libs and migrations.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'No import cycles, not even through types: move shared types beside the interface they describe.',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Count `import type` and type-only exports as dependencies.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '(^|/)(dist|node_modules|\\.porpoise)/' },
  },
};
