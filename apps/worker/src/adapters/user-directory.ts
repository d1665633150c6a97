import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Injectable } from '@nestjs/common';
import { parsePasswdLine, type PasswdEntry } from '../domain/task-user';

/** The system's user database, behind a small adapter (tests give their own). */
export abstract class UserDirectory {
  /** A user by name, or by uid as a decimal string; undefined when there is none. */
  abstract lookup(nameOrUid: string): PasswdEntry | undefined;
}

/**
 * `getent passwd` (files, LDAP, whatever nsswitch.conf says), or /etc/passwd where getent is
 * missing (a minimal image). Runs once at the worker's start.
 */
@Injectable()
export class SystemUserDirectory extends UserDirectory {
  lookup(nameOrUid: string): PasswdEntry | undefined {
    let out: string;
    try {
      // TASK_USER is validated as a user name (no leading dash): never taken for an option.
      out = execFileSync('getent', ['passwd', nameOrUid], {
        encoding: 'utf8',
        env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' },
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 10_000,
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fromEtcPasswd(nameOrUid);
      // getent exits 2 for "not found".
      if ((err as { status?: number }).status === 2) return undefined;
      throw new Error(`getent passwd ${nameOrUid} failed: ${(err as Error).message}`, { cause: err });
    }
    return parsePasswdLine(out.split('\n')[0] ?? '');
  }
}

function fromEtcPasswd(nameOrUid: string): PasswdEntry | undefined {
  const byUid = /^\d+$/.test(nameOrUid);
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const entry = parsePasswdLine(line);
    if (entry && (byUid ? String(entry.uid) === nameOrUid : entry.name === nameOrUid)) return entry;
  }
  return undefined;
}
