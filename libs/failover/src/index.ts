// Master and worker failover (DESIGN.md section 6) arrive with the multi-node work.
export {};
