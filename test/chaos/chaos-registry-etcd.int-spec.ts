/**
 * Registry server faults on etcd (issue 13 item 2): the etcd server SIGKILLed while runs
 * are in flight and started again on the same port and data, after a short outage (sessions
 * survive: no failover, nothing run again) and after one past the session timeout (sessions
 * expire: every node registers again without a restart, failover recovers every run); either way
 * masters start nothing while the registry is down and resume after. See infra-registry.ts and
 * docs/chaos.md, "Registry server faults". Replay: CHAOS_SEED=<printed seed>.
 */
import { describeRegistryFaults } from './infra-registry';

describeRegistryFaults('etcd');
