import { CONFIG_VARIABLES } from '@porpoise/common';
import { TASK_RESULT_MESSAGES } from '@porpoise/rpc';
/**
 * Tunables of the worker that are not configuration (DESIGN.md section 3 names the variables;
 * these are fixed in code so that every worker of a cluster behaves the same).
 */

/** Graceful stop: running tasks get this long to finish before they are killed. */
export const DRAIN_GRACE_MS = 10_000;
/** Kill: SIGTERM to the process group first, SIGKILL after this long. */
export const KILL_GRACE_MS = 2_000;
/** After SIGKILL, how long to wait for the process to be reaped before giving up waiting. */
export const KILL_REAP_WAIT_MS = 2_000;
/** Graceful stop: how long to keep trying to deliver held results before leaving them on disk. */
export const SHUTDOWN_FLUSH_MS = 3_000;

/** ReadLog answers at most this many bytes per call (and this many when the caller asks for 0). */
export const READ_LOG_LIMIT_BYTES = 1024 * 1024;
/** StreamLog's chunk: one read from disk and one gRPC message (well below the 4 MiB limit). */
export const STREAM_LOG_CHUNK_BYTES = 64 * 1024;

/** Deadline of each event call to a master. */
export const EVENT_DEADLINE_MS = 5_000;
/** TaskFinished retry backoff: doubles from the first delay up to the cap. */
export const RESULT_RETRY_FIRST_MS = 200;
export const RESULT_RETRY_MAX_MS = 5_000;
/** TaskStarted is best effort: this many tries, then the result alone tells the master. */
export const STARTED_EVENT_ATTEMPTS = 3;
/**
 * TaskStarted is sent once a run has lasted this long: a run that ends sooner reports only its
 * result (which carries the start time), saving its master a call and a write per short task.
 */
export const STARTED_EVENT_DELAY_MS = 20;
/**
 * A result no master has acknowledged for this long is dropped (with a warning): by then every
 * master has long since failed the task over, and retrying forever only fills the logs.
 */
export const OUTBOX_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/**
 * Messages of results the worker reports for runs it ended itself (the master may tell them apart).
 * A run its watchdog killed because the worker stalled reports `sessionLost`: the session is about to
 * expire, if it has not already. `unsupervised` (no watchdog could be started for the run, so it was
 * killed rather than left to run where a frozen worker could not end it) is the worker's own; like
 * every KILL message but `killed`, masters treat it as a fault and run the task again.
 */
export const RESULT_MESSAGES = {
  ...TASK_RESULT_MESSAGES,
  unsupervised: 'no watchdog could supervise the task',
} as const;

/** A task's watchdog that ends unexpectedly (someone killed it) is started again this many times. */
export const WATCHDOG_RESTARTS = 3;

/**
 * TakeOver answered UNKNOWN: a Dispatch of that task from an older epoch is refused ("superseded").
 * Remembered (also on disk, DATA_DIR/superseded.json) for this long and at most this many tasks:
 * the Dispatch it guards against is one a frozen master had in flight during the failover.
 */
export const SUPERSEDED_MAX_AGE_MS = 24 * 60 * 60 * 1000;
export const SUPERSEDED_MAX_ENTRIES = 10_000;

/**
 * Variables of the worker's own environment a task never gets (domain/task-env.ts): every
 * variable Porpoise reads (CLUSTER_SECRET, DATABASE_URL, DATASOURCE_KEY, ADMIN_TOKEN, the
 * registry's credentials, the *_FILE paths, ...), so no node secret reaches a task.
 */
export const WITHHELD_ENV_VARIABLES: ReadonlySet<string> = new Set<string>(CONFIG_VARIABLES);
/**
 * Also withheld: the PORPOISE_ names (a task's own are set from its spec, never inherited) and
 * the identity the task user gets instead (HOME, USER, LOGNAME, PWD).
 */
export const WITHHELD_ENV_PATTERN = /^(PORPOISE_.*|HOME|USER|LOGNAME|PWD)$/;
/** A task's PATH when the worker has none. */
export const TASK_DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Each task's working directory, under TASK_WORK_DIR/<this worker>/, is made with this mode. */
export const TASK_DIR_MODE = 0o700;
