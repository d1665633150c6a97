import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { PORPOISE_CONFIG, type WorkerConfig } from '@porpoise/common';
import type { TaskSpec } from '@porpoise/rpc';
import { decideTaskUser, decideTenants, type TaskIdentity } from '../domain/task-user';
import { TASK_DIR_MODE } from '../worker.constants';
import { UserDirectory } from './user-directory';

/** Whom a task runs as, and where: decided once at the worker's start. */
export abstract class TaskSandbox {
  /** TASK_USER (or the worker's own user): who a task of a workflow without a tenant runs as. */
  abstract readonly identity: TaskIdentity;
  /** Who a task runs as: its workflow's tenant (one of TASK_TENANTS), else `identity`. */
  abstract identityFor(tenant: string | undefined): TaskIdentity | undefined;
  /** The tenants this worker accepts (TASK_TENANTS). */
  abstract readonly tenants: readonly string[];
  /**
   * Creates the task's own working directory, owned by `who`, mode 700 (synchronous: the
   * executor checked the session just before the spawn, nothing may await between them).
   */
  abstract prepare(spec: Pick<TaskSpec, 'taskInstanceId' | 'attempt'>, who: TaskIdentity): string;
  /** Removes a working directory prepare() made, and everything in it. Never throws. */
  abstract remove(dir: string): void;
  /** Removes what an earlier run of this worker left behind (a crash skips remove()). */
  abstract sweep(): number;
}

/**
 * Tasks run as TASK_USER when the worker is root (domain/task-user.ts), each in a directory of its
 * own under TASK_WORK_DIR/<host>_<port>/ (several workers may share a machine and TASK_WORK_DIR).
 * That directory is the worker's (mode 711: the task user may pass through to its own directory,
 * but cannot list the others'); each task's is the task user's, mode 700, removed after the run.
 */
@Injectable()
export class LocalTaskSandbox extends TaskSandbox {
  readonly identity: TaskIdentity;
  private readonly tenantIdentities: ReadonlyMap<string, TaskIdentity>;
  private readonly logger = new Logger('WorkerTasks');
  private readonly root: string;

  constructor(@Inject(PORPOISE_CONFIG) config: WorkerConfig, users: UserDirectory) {
    super();
    const decision = decideTaskUser({
      workerUid: process.getuid?.() ?? 0,
      workerGid: process.getgid?.() ?? 0,
      setting: config.taskUser,
      lookup: (nameOrUid) => users.lookup(nameOrUid),
    });
    this.identity = decision.identity;
    if (decision.warning) this.logger.warn(decision.warning);
    this.tenantIdentities = decideTenants({
      workerUid: process.getuid?.() ?? 0,
      tenants: config.taskTenants,
      lookup: (nameOrUid) => users.lookup(nameOrUid),
    });
    const top = resolve(config.taskWorkDir);
    this.root = join(top, `${config.nodeHost}_${config.workerPort}`.replace(/[^A-Za-z0-9._-]/g, '_'));
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    // Under a shared directory such as /tmp another user could have made these first, and
    // would then control what the worker creates and removes in them.
    for (const dir of [top, this.root]) {
      const stat = lstatSync(dir);
      const uid = process.getuid?.();
      if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid && stat.uid !== 0)) {
        throw new Error(`TASK_WORK_DIR: ${dir} is not a directory of this worker's user or root`);
      }
    }
    chmodSync(this.root, 0o711);
    const tenants =
      this.tenants.length > 0 ? `; workflows may name the tenants ${this.tenants.join(', ')}` : '';
    this.logger.log(
      `tasks run as ${this.identity.name} (uid ${this.identity.uid}), each in its own directory under ${this.root}${tenants}`,
    );
  }

  get tenants(): readonly string[] {
    return [...this.tenantIdentities.keys()];
  }

  identityFor(tenant: string | undefined): TaskIdentity | undefined {
    return tenant === undefined ? this.identity : this.tenantIdentities.get(tenant);
  }

  prepare(spec: Pick<TaskSpec, 'taskInstanceId' | 'attempt'>, who: TaskIdentity): string {
    // The random part: the name of another task's directory cannot be guessed (the parent is not
    // listable), and a directory left by a crashed run is never reused.
    const dir = join(this.root, `${spec.taskInstanceId}-${spec.attempt}-${randomBytes(6).toString('hex')}`);
    mkdirSync(dir, { mode: TASK_DIR_MODE });
    try {
      if (who.switchUser) chownSync(dir, who.uid, who.gid);
      chmodSync(dir, TASK_DIR_MODE);
    } catch (err) {
      this.remove(dir);
      throw err;
    }
    return dir;
  }

  remove(dir: string): void {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch (err) {
      this.logger.warn(`cannot remove the task directory ${dir}: ${(err as Error).message}`);
    }
  }

  sweep(): number {
    let removed = 0;
    for (const name of readdirSync(this.root)) {
      this.remove(join(this.root, name));
      removed++;
    }
    return removed;
  }
}
