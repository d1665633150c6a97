/**
 * Partitions on the etcd registry (infra-partitions.ts, docs/chaos.md "Partitions"): every
 * master's and worker's links go through partition proxies; one node at a time is cut off while
 * runs are in flight, then healed; every invariant is checked and each scenario must hit work.
 */
import { describePartitions } from './infra-partitions';

describePartitions('etcd');
