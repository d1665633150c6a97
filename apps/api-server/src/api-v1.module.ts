import { Module } from '@nestjs/common';
import {
  ApiTokenRepository,
  AuditRepository,
  BackfillRepository,
  DatasourceRepository,
  InstanceQueryRepository,
  ScheduleRepository,
  TaskGroupRepository,
  WorkflowDefinitionRepository,
  WorkflowRunRepository,
} from '@porpoise/dao';
import { ApiAuthenticator } from './auth/authenticator.service';
import { TokensController } from './auth/tokens.controller';
import { TokensService } from './auth/tokens.service';
import { BackfillsController } from './backfills/backfills.controller';
import { BackfillsService } from './backfills/backfills.service';
import { ClusterController } from './cluster/cluster.controller';
import { ClusterService } from './cluster/cluster.service';
import { DatasourcesController } from './datasources/datasources.controller';
import { DatasourcesService } from './datasources/datasources.service';
import { InstancesController } from './instances/instances.controller';
import { DiagnosisService } from './instances/diagnosis.service';
import { InstancesService } from './instances/instances.service';
import { SchedulesController } from './schedules/schedules.controller';
import { SchedulesService } from './schedules/schedules.service';
import { TaskGroupsController } from './task-groups/task-groups.controller';
import { TaskGroupsService } from './task-groups/task-groups.service';
import { TaskLogService } from './task-logs/task-log.service';
import { TaskLogsController } from './task-logs/task-logs.controller';
import { WorkflowsController } from './workflows/workflows.controller';
import { WorkflowsService } from './workflows/workflows.service';

/**
 * The routes under /api/v1 (the prefix comes from RouterModule in ApiServerModule).
 * Controllers validate and map, services decide, repositories hold the SQL.
 */
@Module({
  controllers: [
    WorkflowsController,
    InstancesController,
    TaskLogsController,
    SchedulesController,
    ClusterController,
    DatasourcesController,
    BackfillsController,
    TaskGroupsController,
    TokensController,
  ],
  providers: [
    WorkflowDefinitionRepository,
    WorkflowRunRepository,
    InstanceQueryRepository,
    ScheduleRepository,
    WorkflowsService,
    InstancesService,
    DiagnosisService,
    TaskLogService,
    SchedulesService,
    ClusterService,
    DatasourceRepository,
    DatasourcesService,
    BackfillRepository,
    BackfillsService,
    TaskGroupRepository,
    TaskGroupsService,
    ApiTokenRepository,
    AuditRepository,
    ApiAuthenticator,
    TokensService,
  ],
  exports: [InstanceQueryRepository, ApiAuthenticator, AuditRepository],
})
export class ApiV1Module {}
