import { readFileSync } from 'node:fs';
import { ConfigError } from './config.errors';

/**
 * Secrets that may be given as a file instead of a variable: `<NAME>_FILE` names a file whose
 * content is `<NAME>` (Docker and Kubernetes secrets). A variable in a process's environment is
 * readable by every process of its user through /proc/<pid>/environ; a file can be kept where
 * only the node's own user reads it.
 *
 * DATABASE_URL_FILE rather than DATABASE_PASSWORD_FILE: the URL is one value (and may carry
 * more than the password: a user, a host, TLS options), so it is resolved like every other
 * secret and loadConfig checks it as before; a separate password would have to be spliced into
 * the URL, and two ways of giving one password would disagree.
 *
 * The one list: a new secret joins by adding its name here.
 */
export const SECRET_FILE_VARIABLES = [
  'CLUSTER_SECRET',
  'DATABASE_URL',
  'DATASOURCE_KEY',
  'ADMIN_TOKEN',
  // The registry's credentials (docs/security.md, "Between nodes").
  'ZOOKEEPER_AUTH',
  'ETCD_PASSWORD',
] as const;

export type SecretFileVariable = (typeof SECRET_FILE_VARIABLES)[number];

/** Reads a file as UTF-8 text; throws the operating system's error. */
export type ReadTextFile = (path: string) => string;

const readText: ReadTextFile = (path) => readFileSync(path, 'utf8');

/**
 * Returns a copy of `env` where each `<NAME>_FILE` that is set has been replaced by `<NAME>`,
 * holding the file's content with its trailing line breaks removed. Runs before the pure
 * loadConfig(). Throws ConfigError naming the variable when both `<NAME>` and `<NAME>_FILE` are
 * set, or the file cannot be read, or it is empty. Never puts the file's content in a message.
 */
export function resolveSecretFiles<E extends Readonly<Record<string, string | undefined>>>(
  env: E,
  names: readonly string[] = SECRET_FILE_VARIABLES,
  read: ReadTextFile = readText,
): E {
  const out: Record<string, string | undefined> = { ...env };
  for (const name of names) {
    const fileVariable = `${name}_FILE`;
    const path = env[fileVariable]?.trim();
    delete out[fileVariable];
    if (path === undefined || path === '') continue;
    const direct = env[name];
    if (direct !== undefined && direct.trim() !== '') {
      throw new ConfigError(fileVariable, `set either ${name} or ${fileVariable}, not both`);
    }
    let content: string;
    try {
      content = read(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ConfigError(fileVariable, `cannot read ${JSON.stringify(path)} (${code})`);
    }
    const value = content.replace(/[\r\n]+$/, '');
    if (value.trim() === '') throw new ConfigError(fileVariable, `${JSON.stringify(path)} is empty`);
    out[name] = value;
  }
  return out as E;
}
