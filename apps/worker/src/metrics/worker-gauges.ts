import { Inject, Injectable } from '@nestjs/common';
import { METRICS_REGISTRY, PORPOISE_CONFIG, type WorkerConfig } from '@porpoise/common';
import { Gauge, type Registry } from 'prom-client';
import { TaskExecutorService } from '../services/task-executor.service';

/**
 * The worker's gauges (DESIGN.md section 12), read at scrape time from memory:
 * porpoise_worker_tasks_running (the runs this process holds, from Dispatch until their result
 * is held for the master: what its heartbeat calls runningTasks) and porpoise_worker_capacity
 * (WORKER_CAPACITY).
 */
@Injectable()
export class WorkerGauges {
  constructor(
    @Inject(METRICS_REGISTRY) registry: Registry,
    @Inject(PORPOISE_CONFIG) config: WorkerConfig,
    @Inject(TaskExecutorService) executor: TaskExecutorService,
  ) {
    const labels = { group: config.workerGroup };
    new Gauge({
      name: 'porpoise_worker_tasks_running',
      help: 'Tasks this worker runs right now (its heartbeat runningTasks)',
      labelNames: ['group'],
      registers: [registry],
      collect() {
        this.set(labels, executor.runningCount);
      },
    });
    new Gauge({
      name: 'porpoise_worker_capacity',
      help: 'How many tasks this worker runs at once (WORKER_CAPACITY)',
      labelNames: ['group'],
      registers: [registry],
      collect() {
        this.set(labels, config.workerCapacity);
      },
    });
  }
}
