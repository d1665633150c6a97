import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

/**
 * What a server method receives instead of a request whose bytes do not decode as its message
 * type (truncated, a length past the end, an invalid wire type).
 *
 * grpc-js answers a decoder that throws with INTERNAL "Error deserializing request", before the
 * handler, so before the cluster-secret check too: a caller without the secret could tell the
 * decoder's failures apart, and a client's bad bytes looked like a server fault. With this, the
 * handler wrapper checks the secret first and then answers INVALID_ARGUMENT naming the message.
 */
export class UndecodableRequest {
  constructor(
    readonly messageType: string,
    readonly reason: string,
  ) {}

  get message(): string {
    return `request is not a valid ${this.messageType}: ${this.reason}`;
  }
}

/** The service definition with every request decoder returning UndecodableRequest instead of throwing. */
export function tolerantDecoding(service: ServiceDefinition): ServiceDefinition {
  const wrapped: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(service)) {
    const decode = method.requestDeserialize;
    const messageType = messageTypeName(method, name);
    wrapped[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return decode(bytes) as unknown;
        } catch (err) {
          return new UndecodableRequest(messageType, err instanceof Error ? err.message : String(err));
        }
      },
    };
  }
  return wrapped;
}

/** The request type's name from proto-loader's extra fields (`requestType.type.name`), else the method's. */
function messageTypeName(method: MethodDefinition<unknown, unknown>, name: string): string {
  const type = (method as { requestType?: { type?: { name?: unknown } } }).requestType?.type?.name;
  return typeof type === 'string' ? type : `${name} request`;
}
