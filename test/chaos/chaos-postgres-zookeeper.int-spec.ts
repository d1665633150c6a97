/**
 * Postgres faults while runs are in flight, on the zookeeper registry (infra-postgres.ts): Postgres
 * crashed and restarted during a stream of runs, stopped past every pool timeout, and a master
 * SIGKILLed while it is down. Every invariant is checked from the database and the witness file;
 * each outage must hit runs in flight, the API must answer 503 naming the database meanwhile, and
 * every node must recover without a restart. Replay: CHAOS_SEED=<printed seed>.
 */
import { describePostgresFaults } from './infra-postgres';

describePostgresFaults({ registry: 'zookeeper', crashRuns: 10, crashes: 3, settleMs: 60_000 });
