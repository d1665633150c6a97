import { Module, type DynamicModule } from '@nestjs/common';
import {
  ConfigModule,
  createNodeMetricsRegistry,
  HEALTH_CHECKS,
  METRICS_REGISTRY,
  ObservabilityService,
  observabilityProvider,
  REGISTRY_PATHS,
  type HealthCheck,
  type WorkerConfig,
} from '@porpoise/common';
import { REGISTRY, RegistryModule, type Registry } from '@porpoise/registry';
import { MasterEvents } from './adapters/master-events';
import { NodeProcessRunner, ProcessRunner } from './adapters/process-runner';
import { SupersededStore } from './adapters/superseded-store';
import { TaskLogStore } from './adapters/task-log-store';
import { ShellTaskWatchdog, TaskWatchdog } from './adapters/task-watchdog';
import { LocalTaskSandbox, TaskSandbox } from './adapters/task-sandbox';
import { SystemUserDirectory, UserDirectory } from './adapters/user-directory';
import { SqlPools } from './adapters/sql-pools';
import { WorkerGauges } from './metrics/worker-gauges';
import { OutboxStore, RunningMarkerStore } from './adapters/worker-stores';
import { AdmissionService } from './services/admission.service';
import { LivenessService } from './services/liveness.service';
import { RegistrationService } from './services/registration.service';
import { ResultDeliveryService } from './services/result-delivery.service';
import { TaskExecutorService } from './services/task-executor.service';
import { LogRetentionService } from './services/log-retention.service';
import { WorkerLifecycleService } from './services/worker-lifecycle.service';
import { WorkerRpcService } from './services/worker-rpc.service';
import { EmptyTaskType } from './task-types/empty.task-type';
import { HttpTaskType } from './task-types/http.task-type';
import { ShellTaskType } from './task-types/shell.task-type';
import { SqlTaskType } from './task-types/sql.task-type';
import { TaskTypeRegistry } from './task-types/task-type.registry';

/**
 * The worker node: gRPC task service, the executor of SHELL, EMPTY, HTTP and SQL tasks
 * (task-types/), result outbox and registry membership. Workers never touch the metadata database
 * (as in DolphinScheduler): only the registry and gRPC (the JDBC registry uses the database, but
 * only through libs/registry). SQL tasks connect to their own data sources, given in the task.
 *
 * Safe to import into another application (the standalone app boots it in-process): it installs
 * no signal handlers and never exits the process; it stops in beforeApplicationShutdown.
 * Every timer and timestamp goes through CLOCK, which a test may override with a fake clock.
 */
@Module({})
export class WorkerModule {
  static forRoot(config: WorkerConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [ConfigModule.forRoot(config), RegistryModule],
      providers: [
        { provide: ProcessRunner, useClass: NodeProcessRunner },
        { provide: TaskWatchdog, useClass: ShellTaskWatchdog },
        // Who tasks run as and where; decided at start (a missing TASK_USER stops it).
        { provide: UserDirectory, useClass: SystemUserDirectory },
        { provide: TaskSandbox, useClass: LocalTaskSandbox },
        LivenessService,
        SupersededStore,
        TaskLogStore,
        OutboxStore,
        RunningMarkerStore,
        MasterEvents,
        AdmissionService,
        ResultDeliveryService,
        SqlPools,
        ShellTaskType,
        EmptyTaskType,
        HttpTaskType,
        SqlTaskType,
        TaskTypeRegistry,
        TaskExecutorService,
        WorkerRpcService,
        RegistrationService,
        WorkerLifecycleService,
        LogRetentionService,
        // GET /health and /metrics on METRICS_PORT (DESIGN.md section 12). A worker has no
        // database: healthy when it reaches the registry.
        { provide: METRICS_REGISTRY, useFactory: () => createNodeMetricsRegistry('porpoise_worker_') },
        {
          provide: HEALTH_CHECKS,
          useFactory: (registry: Registry): HealthCheck[] => [
            { name: 'registry', probe: () => registry.exists(REGISTRY_PATHS.workers) },
          ],
          inject: [REGISTRY],
        },
        WorkerGauges,
        observabilityProvider(),
      ],
      exports: [ObservabilityService],
    };
  }
}
