/**
 * The API's error classes. Services throw these; ApiExceptionFilter turns them into
 * `{ statusCode, error, message }` with the status each one names. The message must say what
 * was wrong (the field, the id, the current state) because it is all a client sees.
 */
export abstract class ApiError extends Error {
  abstract readonly status: number;
}

/** The request itself is wrong: a body, query or path value. 400. */
export class BadRequestError extends ApiError {
  readonly status = 400;
  override readonly name = 'BadRequestError';
}

/** An id in the path (or a referenced id) does not exist. 404. */
export class NotFoundError extends ApiError {
  readonly status = 404;
  override readonly name = 'NotFoundError';
}

/** The resource is in a state that does not allow the request. 409. */
export class ConflictError extends ApiError {
  readonly status = 409;
  override readonly name = 'ConflictError';
}

/** A peer we depend on (a worker, the registry, the database) cannot be reached. 503. */
export class ServiceUnavailableError extends ApiError {
  readonly status = 503;
  override readonly name = 'ServiceUnavailableError';
}

/** A peer answered, but with an error we cannot pass on as the client's fault. 502. */
export class BadGatewayError extends ApiError {
  readonly status = 502;
  override readonly name = 'BadGatewayError';
}

/** No valid bearer token: missing, malformed, unknown or revoked. 401. */
export class UnauthorizedError extends ApiError {
  readonly status = 401;
  override readonly name = 'UnauthorizedError';
}

/** A valid token without the scope the route needs. 403. */
export class ForbiddenError extends ApiError {
  readonly status = 403;
  override readonly name = 'ForbiddenError';
}
