/**
 * What services and libs log through. Nest's Logger fits it; tests pass a silent or recording
 * one. Never given secrets.
 */
export interface Logger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** A logger that drops everything (tests, and libs used without one). */
export const silentLogger: Logger = {
  log: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
