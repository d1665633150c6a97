/**
 * Tests that cannot run here are declared skipped, with the reason in their name, so jest counts
 * them as skipped (and the summary reporter lists them) instead of as passed. The reason must be
 * known when the tests are declared: probe synchronously at collection time.
 */
import { dockerAvailableSync } from './docker';

/** Why a test cannot run here, or undefined when it can. */
export type SkipReason = string | undefined;

/** A test's name with the reason it is skipped: "… (skipped: psql is not installed)". */
export const skippedName = (name: string, reason: string): string => `${name} (skipped: ${reason})`;

type TestFn = (name: string, fn: jest.ProvidesCallback, timeout?: number) => void;
type DescribeFn = (name: string, fn: () => void) => void;

/** `it`, unless there is a reason to skip: then `it.skip` with the reason in its name. */
export function itUnless(reason: SkipReason): TestFn {
  if (reason === undefined) return (name, fn, timeout) => it(name, fn, timeout);
  return (name, fn, timeout) => it.skip(skippedName(name, reason), fn, timeout);
}

/** `describe`, unless there is a reason to skip: then `describe.skip` with the reason in its name. */
export function describeUnless(reason: SkipReason): DescribeFn {
  if (reason === undefined) return (name, fn) => describe(name, fn);
  return (name, fn) => describe.skip(skippedName(name, reason), fn);
}

/** The test servers the harness starts (startPostgres, startZooKeeper, startEtcd). */
export type ServerKind = 'postgres' | 'zookeeper' | 'etcd';

const SERVER_ENV: Record<ServerKind, string> = {
  postgres: 'TEST_DATABASE_URL',
  zookeeper: 'TEST_ZOOKEEPER_CONNECT',
  etcd: 'TEST_ETCD_ENDPOINTS',
};

/**
 * Why a test server of this kind will not be one the test can stop and start (a server from the
 * environment or a container), or undefined when the harness will start a local, controllable one.
 * The same order as the start functions: the environment, then Docker, then a local server.
 */
export function serverControlSkipReason(kind: ServerKind): SkipReason {
  const variable = SERVER_ENV[kind];
  if (process.env[variable]) return `${variable} is set: the test cannot stop and start that ${kind} server`;
  if (dockerAvailableSync()) {
    return `Docker answers: the ${kind} test server is a container the test cannot stop and start`;
  }
  return undefined;
}

/** Skipped unless this process runs as root. */
export const notRootReason = (why: string): SkipReason =>
  process.getuid?.() === 0 ? undefined : `not running as root: ${why}`;
