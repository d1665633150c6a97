import { inspect } from 'node:util';
import { ConsoleLogger, type ConsoleLoggerOptions, type LogLevel } from '@nestjs/common';
import type { LogFormat } from '../config/config.types';
import { systemClock, type Clock } from '../time/clock';
import { LogMessage, type LogIds } from './log-message';

/** One JSON log line (LOG_FORMAT=json), before it is serialized. */
export interface JsonLogEntry {
  /** ISO 8601, UTC. */
  readonly time: string;
  /** info, warn, error, debug, verbose or fatal (Nest's `log` level is `info`). */
  readonly level: string;
  /** The Nest logger's context (the service that wrote it: Workflow, WorkerExecutor, ...). */
  readonly context?: string;
  readonly message: string;
  readonly instanceId?: number;
  readonly taskInstanceId?: number;
  /** An error's stack, when the logger was given one. */
  readonly stack?: string;
}

/** `user:password@` in a URL of any scheme: the password is replaced. */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]+:)[^\s@/]+@/gi;

/**
 * Shorter values are not scrubbed as such (a password like "postgres" would blank out every
 * URL scheme); in a URL any password is replaced anyway.
 */
const MIN_SCRUBBED = 12;

/**
 * What a log line may never carry: a password in a URL (any scheme) and the node's own secrets
 * (cluster secret, database password), replaced by ***. A safety net: messages are written
 * without secrets in the first place.
 */
export function redactLogText(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(URL_PASSWORD, '$1***@');
  for (const secret of secrets) if (secret.length >= MIN_SCRUBBED) out = out.split(secret).join('***');
  return out;
}

/** The text of whatever a logger was given (a string, a LogMessage, an Error, anything else). */
export function logText(message: unknown): string {
  if (typeof message === 'string') return message;
  if (message instanceof LogMessage) return message.text;
  if (message instanceof Error) return message.message;
  return inspect(message, { compact: true, breakLength: Infinity, depth: 4 });
}

/** The ids a message carries (LogMessage), none otherwise. */
export function logIds(message: unknown): LogIds {
  return message instanceof LogMessage ? message.ids : {};
}

/** Nest's level names, except `log`, which JSON log tools know as `info`. */
export function jsonLevel(level: LogLevel): string {
  return level === 'log' ? 'info' : level;
}

/** The JSON line of one message (no newline). Pure. */
export function jsonLogLine(args: {
  readonly timeMs: number;
  readonly level: LogLevel;
  readonly context?: string;
  readonly message: unknown;
  readonly stack?: unknown;
  readonly secrets?: readonly string[];
}): string {
  const ids = logIds(args.message);
  const entry: JsonLogEntry = {
    time: new Date(args.timeMs).toISOString(),
    level: jsonLevel(args.level),
    ...(args.context ? { context: args.context } : {}),
    message: redactLogText(logText(args.message), args.secrets),
    ...(ids.instanceId !== undefined ? { instanceId: ids.instanceId } : {}),
    ...(ids.taskInstanceId !== undefined ? { taskInstanceId: ids.taskInstanceId } : {}),
    ...(typeof args.stack === 'string' && args.stack !== ''
      ? { stack: redactLogText(args.stack, args.secrets) }
      : {}),
  };
  return JSON.stringify(entry);
}

export interface NodeLoggerOptions {
  readonly format: LogFormat;
  /** Values scrubbed from every line (the cluster secret, the database password). */
  readonly secrets?: readonly string[];
  readonly logLevels?: LogLevel[];
  readonly clock?: Clock;
}

/**
 * The logger of every node (main.ts and the standalone node install it for Nest and every
 * `new Logger(context)`): Nest's own text lines by default, one JSON object per line with
 * LOG_FORMAT=json (fields: time, level, context, message, and instanceId / taskInstanceId when
 * the message is a LogMessage about one). Errors go to stderr, the rest to stdout, as Nest does.
 * Both formats redact URL passwords and the node's secrets.
 */
export class NodeLogger extends ConsoleLogger {
  private readonly format: LogFormat;
  private readonly secrets: readonly string[];
  private readonly clock: Clock;

  constructor(options: NodeLoggerOptions) {
    const consoleOptions: ConsoleLoggerOptions = {
      ...(options.logLevels ? { logLevels: options.logLevels } : {}),
      ...(options.format === 'json' ? { colors: false } : {}),
    };
    super(consoleOptions);
    this.format = options.format;
    this.secrets = (options.secrets ?? []).filter((s) => s.length > 0);
    this.clock = options.clock ?? systemClock;
  }

  protected override printMessages(
    messages: unknown[],
    context = '',
    logLevel: LogLevel = 'log',
    writeStreamType?: 'stdout' | 'stderr',
    errorStack?: unknown,
  ): void {
    if (this.format === 'text') {
      super.printMessages(
        messages.map((m) => (typeof m === 'string' || m instanceof LogMessage ? this.redact(logText(m)) : m)),
        context,
        logLevel,
        writeStreamType,
        errorStack,
      );
      return;
    }
    const stream = process[writeStreamType ?? 'stdout'];
    for (const message of messages) {
      stream.write(
        `${jsonLogLine({
          timeMs: this.clock.now(),
          level: logLevel,
          context,
          message,
          stack: errorStack,
          secrets: this.secrets,
        })}\n`,
      );
    }
  }

  /** In JSON the stack is a field of the line; the text format prints it after the line. */
  protected override printStackTrace(stack: string | undefined): void {
    // Nest calls this for every error, with no stack most of the time.
    if (this.format === 'text' && typeof stack === 'string' && stack !== '') {
      super.printStackTrace(this.redact(stack));
    }
  }

  private redact(text: string): string {
    return redactLogText(text, this.secrets);
  }
}

/** The secrets of a node's configuration that no log line may carry. */
export function configSecrets(config: {
  clusterSecret?: string;
  databaseUrl?: string;
  adminToken?: string;
  /** ZOOKEEPER_AUTH's or ETCD_PASSWORD's password. */
  registry?: { readonly type: string; readonly auth?: { readonly password: string } };
}): string[] {
  const out: string[] = [];
  if (config.clusterSecret) out.push(config.clusterSecret);
  if (config.adminToken) out.push(config.adminToken);
  if (config.registry?.auth?.password) out.push(config.registry.auth.password);
  if (config.databaseUrl) {
    try {
      const password = decodeURIComponent(new URL(config.databaseUrl).password);
      if (password) out.push(password);
    } catch {
      // not a URL: nothing to take from it (the config loader refuses those anyway)
    }
  }
  return out;
}
