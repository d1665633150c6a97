/** Two projects: fast unit tests of pure logic, and integration tests against real servers. */
const moduleNameMapper = {
  '^@porpoise/common(|/.*)$': '<rootDir>/libs/common/src$1',
  '^@porpoise/registry(|/.*)$': '<rootDir>/libs/registry/src$1',
  '^@porpoise/dao(|/.*)$': '<rootDir>/libs/dao/src$1',
  '^@porpoise/failover(|/.*)$': '<rootDir>/libs/failover/src$1',
  '^@porpoise/rpc(|/.*)$': '<rootDir>/libs/rpc/src$1',
  '^@porpoise/migrations(|/.*)$': '<rootDir>/migrations$1',
  '^@porpoise/test-harness(|/.*)$': '<rootDir>/test/harness$1',
};
const transform = { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, tsconfig: 'tsconfig.json' }] };
const common = { rootDir: __dirname, testEnvironment: 'node', moduleNameMapper, transform };

module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs,test}/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/{apps,libs,test}/**/*.int-spec.ts'],
    },
  ],
  // Jest 30 reads testTimeout only at the top level; unit tests finish far below it anyway.
  testTimeout: 120_000,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
