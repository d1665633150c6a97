import type { MigrationInterface } from 'typeorm';
import { RegistryTables1795306077000 } from './1795306077000-registry-tables';
import { WorkflowTables1795307647000 } from './1795307647000-workflow-tables';
import { InstanceTimezone1796000002000 } from './1796000002000-instance-timezone';
import { InstancePausedTime1796000003000 } from './1796000003000-instance-paused-time';
import { ListAndBacklogIndexes1796000004000 } from './1796000004000-list-and-backlog-indexes';
import { InstanceEndNotify1796000004500 } from './1796000004500-instance-end-notify';
import { Schedules1796000005000 } from './1796000005000-schedules';
import { Backfill1796000006500 } from './1796000006500-backfill';
import { TaskGroups1796000007000 } from './1796000007000-task-groups';
import { DependentIndex1796000008000 } from './1796000008000-dependent-index';
import { Priority1796000009000 } from './1796000009000-priority';
import { ApiTokens1796000010000 } from './1796000010000-api-tokens';
import { WorkflowLanguage1796000000000 } from './1796000000000-workflow-language';
import { SubWorkflowNotify1796000001000 } from './1796000001000-sub-workflow-notify';
import { RunConcurrency1796000006000 } from './1796000006000-run-concurrency';
import { Retention1796000012500 } from './1796000012500-retention';
import { TaskWriterEpoch1796000013500 } from './1796000013500-task-writer-epoch';

/** Every migration, oldest first. A new migration file is added here too. */
export const MIGRATIONS: Array<new () => MigrationInterface> = [
  RegistryTables1795306077000,
  WorkflowTables1795307647000,
  WorkflowLanguage1796000000000,
  SubWorkflowNotify1796000001000,
  InstanceTimezone1796000002000,
  InstancePausedTime1796000003000,
  ListAndBacklogIndexes1796000004000,
  InstanceEndNotify1796000004500,
  Schedules1796000005000,
  RunConcurrency1796000006000,
  Backfill1796000006500,
  TaskGroups1796000007000,
  DependentIndex1796000008000,
  Priority1796000009000,
  ApiTokens1796000010000,
  Retention1796000012500,
  TaskWriterEpoch1796000013500,
];
