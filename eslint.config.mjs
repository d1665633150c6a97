// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const apps = ['api-server', 'master', 'worker', 'standalone'];
// The standalone app is the composition root of the other three (one process), so it alone
// may import their modules; no app imports standalone, and the three never import each other.
const importableBy = (app) => (app === 'standalone' ? [] : apps.filter((a) => a !== app));

export default tseslint.config(
  {
    ignores: ['dist/**', 'node_modules/**', '.porpoise/**', 'coverage/**', '**/*.js', '**/*.mjs', '**/*.cjs'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-unsafe-function-type': 'off',
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            { target: './libs', from: './apps', message: 'libs never import apps' },
            ...apps
              .filter((app) => importableBy(app).length > 0)
              .map((app) => ({
                target: `./apps/${app}`,
                from: importableBy(app).map((a) => `./apps/${a}`),
                message: 'apps never import each other',
              })),
          ],
        },
      ],
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
