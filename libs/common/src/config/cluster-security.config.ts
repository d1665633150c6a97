import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { ConfigError } from './config.errors';
import type { TlsMaterial } from './config.types';

/**
 * The cluster's own security settings (DESIGN.md section 11, "Cluster"): mutual TLS between
 * nodes, ZooKeeper digest auth, etcd auth. Kept apart from config.loader.ts so the loader only
 * calls in; every problem is a ConfigError naming the variable.
 */

/** Reads a file a variable names; how tests and the loader get file contents. */
export type ConfigFileReader = (path: string) => Buffer;

const readFile: ConfigFileReader = (path) => readFileSync(path);

export interface TlsPaths {
  readonly TLS_CA_FILE: string | undefined;
  readonly TLS_CERT_FILE: string | undefined;
  readonly TLS_KEY_FILE: string | undefined;
}

/**
 * The node's TLS material, or undefined when none of the three files is given. All three or
 * none: a half-configured node would talk plaintext to peers that expect TLS, or the reverse.
 * `serves` is the name peers dial (NODE_HOST) when the node runs a gRPC server (master,
 * worker), which its certificate must carry in subjectAltName; an API server only dials.
 */
export function loadTlsMaterial(
  paths: TlsPaths,
  serves: string | undefined,
  read: ConfigFileReader = readFile,
): TlsMaterial | undefined {
  const names = ['TLS_CA_FILE', 'TLS_CERT_FILE', 'TLS_KEY_FILE'] as const;
  const given = names.filter((n) => paths[n] !== undefined);
  if (given.length === 0) return undefined;
  if (given.length < names.length) {
    const missing = names.filter((n) => paths[n] === undefined);
    throw new ConfigError(
      missing[0] ?? 'TLS_CA_FILE',
      `mutual TLS needs TLS_CA_FILE, TLS_CERT_FILE and TLS_KEY_FILE together; ${given.join(', ')} set, ` +
        `${missing.join(', ')} missing`,
    );
  }
  const ca = readPem('TLS_CA_FILE', paths.TLS_CA_FILE!, read);
  const cert = readPem('TLS_CERT_FILE', paths.TLS_CERT_FILE!, read);
  const key = readPem('TLS_KEY_FILE', paths.TLS_KEY_FILE!, read);

  parseCertificate('TLS_CA_FILE', ca);
  const own = parseCertificate('TLS_CERT_FILE', cert);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    // The parser's message could quote the key: say only what is wrong.
    throw new ConfigError('TLS_KEY_FILE', 'not a PEM private key (unencrypted PKCS#8, PKCS#1 or SEC1)');
  }
  if (!own.checkPrivateKey(privateKey)) {
    throw new ConfigError('TLS_KEY_FILE', "is not the private key of TLS_CERT_FILE's certificate");
  }
  if (serves !== undefined) {
    const named = isIP(serves) ? own.checkIP(serves) : own.checkHost(serves, { subject: 'never' });
    if (named === undefined) {
      throw new ConfigError(
        'TLS_CERT_FILE',
        `the certificate does not name NODE_HOST ${serves} in its subjectAltName; peers dial that ` +
          'name and would refuse the connection',
      );
    }
  }
  return { ca, cert, key };
}

function readPem(name: string, path: string, read: ConfigFileReader): Buffer {
  let contents: Buffer;
  try {
    contents = read(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(name, `cannot read ${path} (${code})`);
  }
  if (!contents.includes('-----BEGIN ')) throw new ConfigError(name, `${path} is not a PEM file`);
  return contents;
}

function parseCertificate(name: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new ConfigError(name, 'not a PEM X.509 certificate');
  }
}

/** ZOOKEEPER_AUTH: `user:password`, ZooKeeper's digest scheme credentials. */
export function parseZooKeeperAuth(
  raw: string | undefined,
): { readonly user: string; readonly password: string } | undefined {
  if (raw === undefined) return undefined;
  const colon = raw.indexOf(':');
  const user = colon === -1 ? '' : raw.slice(0, colon);
  const password = colon === -1 ? '' : raw.slice(colon + 1);
  // The digest id is user:base64(sha1(user:password)); a colon in the user would split it wrongly.
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(user) || password.length < 8) {
    throw new ConfigError(
      'ZOOKEEPER_AUTH',
      'expected user:password (a user of letters, digits, dots, dashes or underscores; a password of 8+ characters)',
    );
  }
  return { user, password };
}

/** ETCD_USERNAME and ETCD_PASSWORD: both or neither. */
export function parseEtcdAuth(
  username: string | undefined,
  password: string | undefined,
): { readonly username: string; readonly password: string } | undefined {
  if (username === undefined && password === undefined) return undefined;
  if (username === undefined) {
    throw new ConfigError('ETCD_USERNAME', 'required with ETCD_PASSWORD (etcd authentication needs both)');
  }
  if (password === undefined) {
    throw new ConfigError('ETCD_PASSWORD', 'required with ETCD_USERNAME (etcd authentication needs both)');
  }
  return { username, password };
}
