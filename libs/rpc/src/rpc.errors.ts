import { status } from '@grpc/grpc-js';

/** Raised by a handler for a message that fails validation; answered as INVALID_ARGUMENT. */
export class RpcInvalidArgument extends Error {
  readonly code = status.INVALID_ARGUMENT;
  constructor(message: string) {
    super(message);
    this.name = 'RpcInvalidArgument';
  }
}

/** Raised by a handler for something it does not have (StreamLog: no such log); NOT_FOUND. */
export class RpcNotFound extends Error {
  readonly code = status.NOT_FOUND;
  constructor(message: string) {
    super(message);
    this.name = 'RpcNotFound';
  }
}

/** A call that failed: carries the gRPC status so callers can tell refusal from outage. */
export class RpcCallError extends Error {
  constructor(
    readonly method: string,
    readonly address: string,
    readonly code: status,
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

/** A client called a method its service (as loaded from proto/) does not have: a programming error. */
export class RpcUnknownMethodError extends Error {
  constructor(
    readonly service: string,
    readonly method: string,
  ) {
    super(`${service} has no method ${method}`);
    this.name = 'RpcUnknownMethodError';
  }
}

/** A service the clients and servers need is missing from the .proto files under proto/. */
export class RpcProtoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RpcProtoError';
  }
}
