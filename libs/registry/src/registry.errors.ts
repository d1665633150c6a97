/** Base class of every error a Registry raises, so callers can tell them from bugs. */
export class RegistryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A key or lock path that is not an absolute, well-formed path. */
export class InvalidPathError extends RegistryError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`invalid registry path ${JSON.stringify(path)}: ${reason}`);
  }
}

/** A value that is not a string, or an option out of range. */
export class InvalidArgumentError extends RegistryError {}

export class ValueTooLargeError extends RegistryError {
  constructor(
    readonly key: string,
    readonly bytes: number,
    readonly maxBytes: number,
  ) {
    super(`value for ${key} is ${bytes} bytes; the limit is ${maxBytes}`);
  }
}

export class LockTimeoutError extends RegistryError {
  constructor(
    readonly path: string,
    readonly timeoutMs: number,
  ) {
    super(`lock ${path} not acquired within ${timeoutMs} ms`);
  }
}

/** The client was closed, or not started, when the call was made. */
export class RegistryClosedError extends RegistryError {
  constructor(operation: string) {
    super(`registry client is not open (during ${operation})`);
  }
}

/** The backend could not be reached or refused the operation. */
export class RegistryUnavailableError extends RegistryError {}

/**
 * The JDBC registry's tables and functions are not in the database yet: nobody has run the
 * migrations. A worker never runs them (it may have no right to); it waits for a master, an API
 * server or `npm run migration:run` to do so.
 */
export class RegistrySchemaMissingError extends RegistryError {}
