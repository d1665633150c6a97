/** Command line of `npm run cluster` (DESIGN.md section 2). Pure: no I/O. */

export const REGISTRY_TYPES = ['zookeeper', 'jdbc', 'etcd'] as const;
export type RegistryType = (typeof REGISTRY_TYPES)[number];

/** At most this many nodes of one role on one machine. */
export const MAX_NODES_PER_ROLE = 32;

export interface ClusterArgs {
  readonly masters: number;
  readonly workers: number;
  readonly apiServers: number;
  readonly registry: RegistryType;
  /** Build first when dist/ is older than the sources (default); --no-build skips the check. */
  readonly build: boolean;
  /** How long every node has to register and become ready. */
  readonly readyTimeoutMs: number;
  /** --tls: a throwaway CA and a certificate per node; every gRPC call over mutual TLS. */
  readonly tls: boolean;
  readonly help: boolean;
}

/** A bad command line; the message is one line meant for the user. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `usage: npm run cluster -- [--masters N] [--workers M] [--api-servers K]
                          [--registry zookeeper|jdbc|etcd] [--no-build] [--ready-timeout SECONDS]
                          [--tls]

Starts every node as its own OS process on this machine, sharing one Postgres and one registry,
writes .porpoise/cluster.json once every node is ready, and stays in the foreground until
Ctrl-C (SIGINT) or SIGTERM, which stops everything.

  --masters N          masters, 1 to ${MAX_NODES_PER_ROLE} (default 1)
  --workers M          workers, 1 to ${MAX_NODES_PER_ROLE} (default 1)
  --api-servers K      API servers, 1 to ${MAX_NODES_PER_ROLE} (default 1)
  --registry TYPE      zookeeper (default, or REGISTRY_TYPE), jdbc or etcd
  --no-build           do not build, even when dist/ is older than the sources
  --ready-timeout S    seconds every node has to become ready (default 180)
  --tls                mutual TLS between nodes: a throwaway CA and one certificate per node
                       under .porpoise/cluster/tls (keys readable by their owner only)

Environment: DATABASE_URL (else an embedded Postgres under .porpoise/cluster/postgres),
ZOOKEEPER_CONNECT / ETCD_ENDPOINTS (else a local server), CLUSTER_SECRET (else generated),
REGISTRY_SESSION_TIMEOUT_MS (default 10000), HEARTBEAT_INTERVAL_MS (default 2000).`;

type CountOption = '--masters' | '--workers' | '--api-servers';
const WITH_VALUE = ['--masters', '--workers', '--api-servers', '--registry', '--ready-timeout'];
const FLAGS = ['--no-build', '--tls', '--help', '-h'];

/**
 * Parses argv (without node and the script). `--name value` and `--name=value` both work;
 * REGISTRY_TYPE from the environment is the default of --registry.
 */
export function parseClusterArgs(argv: readonly string[], env: { REGISTRY_TYPE?: string } = {}): ClusterArgs {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  // Taken from the front; an option's value is taken with it.
  const rest = [...argv];
  for (let arg = rest.shift(); arg !== undefined; arg = rest.shift()) {
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (FLAGS.includes(name)) {
      if (eq !== -1) throw new UsageError(`${name} takes no value`);
      flags.add(name === '-h' ? '--help' : name);
      continue;
    }
    if (!WITH_VALUE.includes(name)) {
      if (!arg.startsWith('-')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
      throw new UsageError(`unknown option ${name} (try --help)`);
    }
    if (values.has(name)) throw new UsageError(`${name} is given twice`);
    let value: string | undefined;
    const next = rest[0];
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (next !== undefined && !next.startsWith('--')) value = rest.shift();
    if (value === undefined || value === '') throw new UsageError(`${name} needs a value`);
    values.set(name, value);
  }

  const count = (option: CountOption): number => {
    const raw = values.get(option);
    if (raw === undefined) return 1;
    const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > MAX_NODES_PER_ROLE) {
      throw new UsageError(
        `${option} must be a whole number from 1 to ${MAX_NODES_PER_ROLE}, got ${JSON.stringify(raw)}`,
      );
    }
    return n;
  };

  let registry: string;
  const fromFlag = values.get('--registry');
  if (fromFlag !== undefined) {
    registry = fromFlag;
    if (!isRegistryType(registry)) {
      throw new UsageError(
        `--registry must be one of ${REGISTRY_TYPES.join(', ')}, got ${JSON.stringify(registry)}`,
      );
    }
  } else {
    registry = env.REGISTRY_TYPE?.trim() || 'zookeeper';
    if (!isRegistryType(registry)) {
      throw new UsageError(
        `REGISTRY_TYPE must be one of ${REGISTRY_TYPES.join(', ')}, got ${JSON.stringify(registry)}`,
      );
    }
  }

  let readyTimeoutMs = 180_000;
  const timeout = values.get('--ready-timeout');
  if (timeout !== undefined) {
    const s = /^\d+$/.test(timeout) ? Number(timeout) : NaN;
    if (!Number.isInteger(s) || s < 1 || s > 3600) {
      throw new UsageError(
        `--ready-timeout must be a whole number of seconds from 1 to 3600, got ${JSON.stringify(timeout)}`,
      );
    }
    readyTimeoutMs = s * 1000;
  }

  return {
    masters: count('--masters'),
    workers: count('--workers'),
    apiServers: count('--api-servers'),
    registry,
    build: !flags.has('--no-build'),
    readyTimeoutMs,
    tls: flags.has('--tls'),
    help: flags.has('--help'),
  };
}

function isRegistryType(value: string): value is RegistryType {
  return (REGISTRY_TYPES as readonly string[]).includes(value);
}
