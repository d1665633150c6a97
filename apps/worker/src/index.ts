export { WorkerModule } from './worker.module';
export { RESULT_MESSAGES, DRAIN_GRACE_MS } from './worker.constants';
