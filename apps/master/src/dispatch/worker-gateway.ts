import type { WorkerClient } from '@porpoise/rpc';

/**
 * The master's calls to workers (Dispatch / Kill / TakeOver). In production the libs/rpc
 * WorkerClient (one channel per worker, secret and deadline on every call); an interface so a
 * test or another transport can stand in.
 */
export type WorkerGateway = Pick<WorkerClient, 'dispatch' | 'kill' | 'takeOver' | 'forget' | 'close'>;
