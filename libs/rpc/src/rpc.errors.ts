import { status } from '@grpc/grpc-js';

/** Raised by a handler for a message that fails validation; answered as INVALID_ARGUMENT. */
export class RpcInvalidArgument extends Error {
  readonly code = status.INVALID_ARGUMENT;
  constructor(message: string) {
    super(message);
    this.name = 'RpcInvalidArgument';
  }
}

/** A call that failed: carries the gRPC status so callers can tell refusal from outage. */
export class RpcCallError extends Error {
  constructor(
    readonly method: string,
    readonly address: string,
    readonly code: number,
    detail: string,
  ) {
    super(`${method} to ${address} failed: ${status[code] ?? code}: ${detail}`);
    this.name = 'RpcCallError';
  }

  /** True when the peer may simply be down or slow (worth retrying elsewhere or later). */
  get unavailable(): boolean {
    return this.code === status.UNAVAILABLE || this.code === status.DEADLINE_EXCEEDED;
  }
}
