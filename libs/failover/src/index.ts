// Master failover (DESIGN.md section 6): the lock race, the per-instance hand-back transaction,
// start-up and periodic sweeps. Worker failover lives in the master's engine (it needs the
// in-memory view of the tasks each master drives).
export * from './failover.types';
export * from './master-failover.service';
