import { ConfigError, type WorkerConfig } from '@porpoise/common';

/** One line of the passwd database (`getent passwd NAME`): what running as that user needs. */
export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** Who a task runs as. */
export interface TaskIdentity {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** The task's HOME (the user's home directory; the task's working directory when it has none). */
  readonly home: string | undefined;
  /**
   * true: the worker is root and starts each task with this uid and gid (setgid, setgroups([]),
   * setuid in the child); false: tasks run as the worker's own user, nothing is switched.
   */
  readonly switchUser: boolean;
}

/** Homes that mean "none" (nobody's is /nonexistent on Debian). */
const NO_HOME = new Set(['', '/', '/nonexistent', '/var/empty']);

/** `name:password:uid:gid:gecos:home:shell`; undefined for anything else. */
export function parsePasswdLine(line: string): PasswdEntry | undefined {
  const fields = line.replace(/\r?\n$/, '').split(':');
  if (fields.length !== 7) return undefined;
  const [name, , uid, gid, , home] = fields as [string, string, string, string, string, string, string];
  if (name === '' || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) return undefined;
  return { name, uid: Number(uid), gid: Number(gid), home };
}

export interface TaskUserDecision {
  readonly identity: TaskIdentity;
  /** Logged once at start, when tasks run with more than they should be able to reach. */
  readonly warning: string | undefined;
}

/**
 * Who the worker's tasks run as (docs/security.md "Tasks and the node's secrets"):
 * - worker as root: TASK_USER (default nobody), looked up by name; a missing user stops the start.
 *   Root itself only when TASK_USER=root was set explicitly, with a warning.
 * - worker as another user: it cannot switch users, so tasks run as the worker's user, with a
 *   warning that they can read the node's files and environment. An explicit TASK_USER naming
 *   another user is refused rather than silently ignored.
 * Throws ConfigError naming TASK_USER.
 */
export function decideTaskUser(input: {
  readonly workerUid: number;
  readonly workerGid: number;
  readonly setting: WorkerConfig['taskUser'];
  /** By name, or by uid as a decimal string (as getent does). */
  readonly lookup: (nameOrUid: string) => PasswdEntry | undefined;
}): TaskUserDecision {
  const { workerUid, workerGid, setting, lookup } = input;
  if (workerUid === 0) {
    const entry = lookup(setting.name);
    if (entry === undefined) {
      throw new ConfigError(
        'TASK_USER',
        `no such user: ${JSON.stringify(setting.name)} (tasks run as this user when the worker runs ` +
          'as root; create it, or name another)',
      );
    }
    const warning =
      entry.uid === 0
        ? `TASK_USER=${setting.name}: tasks run as root and can read every file and secret of this node`
        : undefined;
    return { identity: identityOf(entry, true), warning };
  }
  const own = lookup(String(workerUid)) ?? {
    name: String(workerUid),
    uid: workerUid,
    gid: workerGid,
    home: '',
  };
  if (setting.explicit) {
    const wanted = lookup(setting.name);
    if (wanted?.uid !== workerUid) {
      throw new ConfigError(
        'TASK_USER',
        `the worker runs as ${own.name} (uid ${workerUid}), not root, so it cannot run tasks as ` +
          `${JSON.stringify(setting.name)}: start the worker as root, or unset TASK_USER`,
      );
    }
  }
  return {
    identity: identityOf(own, false),
    warning:
      `the worker runs as ${own.name} (uid ${workerUid}), not root: tasks run as that same user and ` +
      "can read this node's files (DATA_DIR) and its processes' environment (/proc/<pid>/environ); " +
      'run the worker as root so that tasks run as TASK_USER (docs/security.md)',
  };
}

function identityOf(entry: PasswdEntry, switchUser: boolean): TaskIdentity {
  return {
    name: entry.name,
    uid: entry.uid,
    gid: entry.gid,
    home: NO_HOME.has(entry.home) ? undefined : entry.home,
    switchUser,
  };
}

/**
 * The tenants a worker accepts (TASK_TENANTS): each an existing user other than root, switched to
 * like TASK_USER, so the worker must run as root. Throws ConfigError naming TASK_TENANTS.
 */
export function decideTenants(input: {
  readonly workerUid: number;
  readonly tenants: readonly string[];
  readonly lookup: (nameOrUid: string) => PasswdEntry | undefined;
}): ReadonlyMap<string, TaskIdentity> {
  const { workerUid, tenants, lookup } = input;
  const out = new Map<string, TaskIdentity>();
  if (tenants.length === 0) return out;
  if (workerUid !== 0) {
    throw new ConfigError(
      'TASK_TENANTS',
      `tenants need the worker to run as root (it runs as uid ${workerUid}): it cannot switch users`,
    );
  }
  for (const name of tenants) {
    const entry = lookup(name);
    if (entry === undefined) throw new ConfigError('TASK_TENANTS', `no such user: ${JSON.stringify(name)}`);
    if (entry.uid === 0) {
      throw new ConfigError('TASK_TENANTS', `${JSON.stringify(name)} is root: a tenant must not be`);
    }
    out.set(name, identityOf(entry, true));
  }
  return out;
}
