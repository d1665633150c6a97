import {
  ConfigModule,
  createNodeMetricsRegistry,
  HEALTH_CHECKS,
  METRICS_REGISTRY,
  ObservabilityService,
  observabilityProvider,
  REGISTRY_PATHS,
  type HealthCheck,
  type MasterConfig,
} from '@porpoise/common';
import { Module, type DynamicModule } from '@nestjs/common';
import {
  DaoModule,
  BackfillRepository,
  CommandRepository,
  InstanceStateRepository,
  TaskInstanceRepository,
  DatasourceRepository,
  DependencyRepository,
  SubWorkflowRepository,
  ScheduleRepository,
  TaskGroupRepository,
  RunGateRepository,
  RetentionRepository,
} from '@porpoise/dao';
import { REGISTRY, RegistryModule, type Registry } from '@porpoise/registry';
import { DataSource } from 'typeorm';
import { WorkerClient } from '@porpoise/rpc';
import { BackfillService } from './backfill/backfill.service';
import { CommandConsumerService } from './command/command-consumer.service';
import { InstanceControlService } from './control/instance-control.service';
import { PgNotificationListener } from './db/pg-notification-listener.service';
import {
  FAILOVER_METRICS,
  FAILOVER_OPTIONS,
  FAILOVER_REGISTRY,
  FAILOVER_REPOSITORY,
  FAILOVER_SESSION,
  MasterFailoverService,
  type MasterFailoverOptions,
} from '@porpoise/failover';
import { WorkflowEngineService } from './engine/workflow-engine.service';
import { MasterLifecycleService } from './lifecycle/master-lifecycle.service';
import {
  DATASOURCE_OPENER,
  DEFAULT_MASTER_OPTIONS,
  MASTER_IDENTITY,
  MASTER_OPTIONS,
  WORKER_GATEWAY,
  type MasterIdentity,
  type MasterOptions,
} from './master.constants';
import { MasterGauges } from './metrics/master-gauges';
import { MasterMetrics } from './metrics/master-metrics';
import { MasterMembershipService } from './registry/master-membership.service';
import { MasterRegistrationService } from './registry/master-registration.service';
import { SessionStateService } from './registry/session-state.service';
import { DeathWatchService } from './registry/death-watch.service';
import { PortProber, TcpPortProber } from './registry/port-prober';
import { WorkerDirectoryService } from './registry/worker-directory.service';
import { MasterRpcService } from './rpc/master-rpc.service';
import { RunGateService } from './gate/run-gate.service';
import { RetentionService } from './retention/retention.service';
import { ScheduleService } from './schedule/schedule.service';
import { datasourceOpener } from './tasks/datasource-opener';

/**
 * The master node: command consumer, workflow engine, dispatcher, instance control, schedules,
 * master failover (libs/failover) and the graceful hand-over at stop.
 * `MasterModule.forRoot(config)` is all a host needs (main.ts, or the standalone app booting it
 * in-process next to the API and a worker); nothing in it exits the process.
 */
@Module({})
export class MasterModule {
  static forRoot(config: MasterConfig, options: Partial<MasterOptions> = {}): DynamicModule {
    const identity: MasterIdentity = {
      host: config.nodeHost,
      port: config.masterPort,
      address: `${config.nodeHost}:${config.masterPort}`,
    };
    // MAX_FAULT_RERUNS and SCHEDULE_MISFIRE_THRESHOLD_MS come from the environment; options given here (tests) still win.
    const masterOptions: MasterOptions = {
      ...DEFAULT_MASTER_OPTIONS,
      maxFaultReruns: config.maxFaultReruns,
      scheduleMisfireThresholdMs: config.scheduleMisfireThresholdMs,
      ...options,
    };
    const failoverOptions: MasterFailoverOptions = {
      me: identity.address,
      sessionTimeoutMs: config.registry.sessionTimeoutMs,
      sweepIntervalMs: masterOptions.failoverSweepIntervalMs,
      lockTimeoutMs: masterOptions.failoverLockTimeoutMs,
    };
    return {
      module: MasterModule,
      imports: [ConfigModule.forRoot(config), DaoModule, RegistryModule],
      providers: [
        { provide: MASTER_OPTIONS, useValue: masterOptions },
        { provide: MASTER_IDENTITY, useValue: identity },
        { provide: WORKER_GATEWAY, useFactory: () => new WorkerClient(config.clusterSecret, config.tls) },
        DatasourceRepository,
        SubWorkflowRepository,
        DependencyRepository,
        TaskGroupRepository,
        {
          provide: DATASOURCE_OPENER,
          useFactory: (repo: DatasourceRepository) => datasourceOpener(repo, config.datasourceKey),
          inject: [DatasourceRepository],
        },
        CommandRepository,
        InstanceStateRepository,
        TaskInstanceRepository,
        ScheduleRepository,
        SessionStateService,
        WorkerDirectoryService,
        MasterMembershipService,
        MasterRegistrationService,
        PgNotificationListener,
        WorkflowEngineService,
        MasterRpcService,
        InstanceControlService,
        CommandConsumerService,
        RunGateRepository,
        RunGateService,
        ScheduleService,
        BackfillRepository,
        BackfillService,
        // Retention (DESIGN.md section 11, Bounds).
        RetentionRepository,
        RetentionService,
        { provide: FAILOVER_REGISTRY, useExisting: REGISTRY },
        { provide: FAILOVER_REPOSITORY, useExisting: InstanceStateRepository },
        { provide: FAILOVER_SESSION, useExisting: SessionStateService },
        { provide: FAILOVER_OPTIONS, useValue: failoverOptions },
        { provide: FAILOVER_METRICS, useExisting: MasterMetrics },
        MasterFailoverService,
        // Provable death (docs/failover.md): a node whose port refuses is failed over at once.
        { provide: PortProber, useClass: TcpPortProber },
        DeathWatchService,
        MasterLifecycleService,
        // GET /health and /metrics on METRICS_PORT (DESIGN.md section 12).
        { provide: METRICS_REGISTRY, useFactory: () => createNodeMetricsRegistry('porpoise_master_') },
        {
          provide: HEALTH_CHECKS,
          useFactory: (dataSource: DataSource, registry: Registry): HealthCheck[] => [
            { name: 'database', probe: () => dataSource.query('SELECT 1') },
            { name: 'registry', probe: () => registry.exists(REGISTRY_PATHS.masters) },
          ],
          inject: [DataSource, REGISTRY],
        },
        MasterMetrics,
        MasterGauges,
        observabilityProvider(),
      ],
      exports: [
        WorkflowEngineService,
        MasterMembershipService,
        WorkerDirectoryService,
        SessionStateService,
        MasterFailoverService,
        ObservabilityService,
      ],
    };
  }
}
