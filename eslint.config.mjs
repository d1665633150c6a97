// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import reactHooks from 'eslint-plugin-react-hooks';

const apps = ['api-server', 'master', 'worker', 'standalone'];
// The standalone app is the composition root of the other three (one process), so it alone
// may import their modules; no app imports standalone, and the three never import each other.
const importableBy = (app) => (app === 'standalone' ? [] : apps.filter((a) => a !== app));

// The packages below the apps, each used only through its index.ts (its public surface).
const packages = {
  common: './libs/common/src',
  rpc: './libs/rpc/src',
  registry: './libs/registry/src',
  failover: './libs/failover/src',
  dao: './libs/dao/src',
  migrations: './migrations',
};

// Which package may not import which (layering; README "Layout"). libs/common is the floor; the
// registry, rpc and failover never reach the database layer; the database layer never reaches
// the registry; migrations import no package.
const forbidden = {
  common: ['rpc', 'registry', 'failover', 'dao', 'migrations'],
  rpc: ['registry', 'failover', 'dao', 'migrations'],
  registry: ['failover', 'rpc', 'dao', 'migrations'],
  failover: ['dao', 'rpc', 'migrations'],
  dao: ['registry', 'failover', 'rpc'],
  migrations: ['common', 'rpc', 'registry', 'failover', 'dao'],
};

// Files allowed to cross a layer, as { file, target, from }. None: the registry no longer runs
// the migrations (masters and API servers do; workers never), so it does not import the dao.
/** @type {Array<{ file: string, target: string, from: string }>} */
const layeringExceptions = [];

const layerZones = (skip = (_target, _from) => false) =>
  Object.entries(forbidden).flatMap(([target, froms]) =>
    froms
      .filter((from) => !skip(target, from))
      .map((from) => ({
        target: packages[target],
        from: packages[from],
        message: `${target} may not import ${from} (layering: see README "Layout")`,
      })),
  );

// No deep imports: from outside a package, only its index.ts may be imported.
const roots = ['./apps', './bench', './scripts', './test', ...Object.values(packages)];
const deepImportZones = Object.entries(packages).map(([name, dir]) => ({
  target: roots.filter((root) => root !== dir),
  from: dir,
  except: ['./index.ts'],
  message: `use ${name} through its index.ts (@porpoise/${name}), not a file inside it`,
}));

const restrictedPaths = (zones) => [
  'error',
  {
    zones: [
      { target: './libs', from: './apps', message: 'libs never import apps' },
      { target: './migrations', from: './apps', message: 'migrations never import apps' },
      ...apps
        .filter((app) => importableBy(app).length > 0)
        .map((app) => ({
          target: `./apps/${app}`,
          from: importableBy(app).map((a) => `./apps/${a}`),
          message: 'apps never import each other',
        })),
      ...zones,
      ...deepImportZones,
    ],
  },
];

export default tseslint.config(
  {
    ignores: ['dist/**', 'node_modules/**', '.porpoise/**', 'coverage/**', '**/*.js', '**/*.mjs', '**/*.cjs'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      curly: ['error', 'multi-line'],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-unsafe-function-type': 'off',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
      // Type-only cycles are cycles too.
      'import-x/no-cycle': ['error', { ignoreExternal: true, allowUnsafeDynamicCyclicDependency: false }],
      'import-x/no-restricted-paths': restrictedPaths(layerZones()),
    },
  },
  {
    // The web console (apps/console): browser code with its own tsconfig (JSX, DOM), the rules of
    // hooks, and the same type-checked rules as the rest.
    files: ['apps/console/**/*.ts', 'apps/console/**/*.tsx'],
    ...reactHooks.configs.flat.recommended,
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      ...reactHooks.configs.flat.recommended.rules,
      curly: ['error', 'multi-line'],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
    },
  },
  ...layeringExceptions.map(({ file, target, from }) => ({
    files: [file],
    rules: {
      'import-x/no-restricted-paths': restrictedPaths(layerZones((t, f) => t === target && f === from)),
    },
  })),
  {
    // Tests may poke at what they test; the type-checked "unsafe" rules would only make them
    // restate types the assertions already check.
    files: ['**/*.spec.ts', '**/test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // One owner of configuration: only the config loader (and test harnesses) read process.env.
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    ignores: ['libs/common/src/config/config.loader.ts', '**/*.spec.ts', '**/test/**'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'read configuration through loadConfigFromProcess()' },
      ],
    },
  },
);
