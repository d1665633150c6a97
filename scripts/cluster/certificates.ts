/**
 * A throwaway certificate authority for `npm run cluster -- --tls` (and the tests of mutual
 * TLS): ECDSA P-256 keys from Node's webcrypto, certificates from @peculiar/x509. Nothing here
 * is meant to outlive one cluster: the CA's key is never written anywhere.
 */
// @peculiar/x509's dependency injection (tsyringe) needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

const crypto = webcrypto;
// The library's types name the DOM's Crypto, which this project's lib settings leave out.
x509.cryptoProvider.set(crypto as never);

const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

/** A PEM certificate with its PEM (PKCS#8) private key. */
export interface IssuedCertificate {
  readonly cert: string;
  readonly key: string;
}

export interface CertificateAuthority {
  /** The CA certificate (PEM): what every node trusts (TLS_CA_FILE). */
  readonly cert: string;
  /**
   * A leaf certificate for a node, valid as TLS server and client, naming `hosts` (DNS names or
   * IP addresses) in subjectAltName: peers dial a node by the host it advertises (NODE_HOST).
   */
  issue(commonName: string, hosts: readonly string[]): Promise<IssuedCertificate>;
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** A new CA, valid for `days` (a cluster's lifetime, with room). */
export async function createCertificateAuthority(
  name = 'Porpoise cluster CA',
  days = 365,
): Promise<CertificateAuthority> {
  const caKeys = await crypto.subtle.generateKey(KEY_ALGORITHM, false, ['sign', 'verify']);
  const notBefore = new Date(Date.now() - DAY_MS); // a little slack for clocks behind ours
  const notAfter = new Date(Date.now() + days * DAY_MS);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}`,
    keys: caKeys,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  return {
    cert: caCert.toString('pem'),
    async issue(commonName, hosts) {
      const keys = await crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
      const leaf = await x509.X509CertificateGenerator.create({
        subject: `CN=${commonName}`,
        issuer: caCert.subject,
        publicKey: keys.publicKey,
        signingKey: caKeys.privateKey,
        notBefore,
        notAfter,
        signingAlgorithm: SIGNING_ALGORITHM,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([
            x509.ExtendedKeyUsage.serverAuth,
            x509.ExtendedKeyUsage.clientAuth,
          ]),
          new x509.SubjectAlternativeNameExtension(
            hosts.map((h) => ({ type: isIP(h) ? ('ip' as const) : ('dns' as const), value: h })),
          ),
          await x509.AuthorityKeyIdentifierExtension.create(caCert),
        ],
      });
      return { cert: leaf.toString('pem'), key: await privateKeyPem(keys.privateKey) };
    },
  };
}

/** Where a node's certificate and key were written. */
export interface CertificateFiles {
  readonly TLS_CERT_FILE: string;
  readonly TLS_KEY_FILE: string;
}

export interface ClusterCertificates {
  readonly TLS_CA_FILE: string;
  /** One per name asked for. */
  readonly nodes: ReadonlyMap<string, CertificateFiles>;
}

/**
 * `npm run cluster -- --tls`: a new CA and one certificate per name, for `hosts`, written to
 * `dir` (emptied first: certificates of an earlier launch are of another CA). The CA's key is
 * not written: nothing can be added to this CA once the launch is over.
 */
export async function writeClusterCertificates(
  dir: string,
  names: readonly string[],
  hosts: readonly string[],
): Promise<ClusterCertificates> {
  const ca = await createCertificateAuthority(`Porpoise cluster CA ${new Date().toISOString()}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const write = (file: string, text: string, mode: number): string => {
    const path = join(dir, file);
    writeFileSync(path, text, { mode, flag: 'wx' });
    return path;
  };
  const TLS_CA_FILE = write('ca.pem', ca.cert, 0o644);
  const nodes = new Map<string, CertificateFiles>();
  for (const name of names) {
    const leaf = await ca.issue(name, hosts);
    nodes.set(name, {
      TLS_CERT_FILE: write(`${name}.pem`, leaf.cert, 0o644),
      TLS_KEY_FILE: write(`${name}.key`, leaf.key, 0o600),
    });
  }
  return { TLS_CA_FILE, nodes };
}
