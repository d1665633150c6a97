import { Inject, Injectable, Logger } from '@nestjs/common';
import { resolve, join } from 'node:path';
import { PORPOISE_CONFIG, type WorkerConfig } from '@porpoise/common';
import {
  parseOutboxRecord,
  parseRunningMarker,
  type OutboxRecord,
  type RunningMarker,
} from '../domain/records';
import { JsonRecordStore } from './json-record-store';

/** DATA_DIR/outbox: results not yet acknowledged by a master (DESIGN.md section 6, Dispatch). */
@Injectable()
export class OutboxStore extends JsonRecordStore<OutboxRecord> {
  constructor(@Inject(PORPOISE_CONFIG) config: WorkerConfig) {
    super(join(resolve(config.dataDir), 'outbox'), parseOutboxRecord, new Logger('WorkerOutbox'));
  }
}

/**
 * DATA_DIR/running: tasks whose process group may be alive, so a restarted worker can end them.
 * Not synced to disk: a marker matters after the worker process died, when the page cache still
 * holds it; after the machine went down no group of it is alive, and a master asking about the
 * task hears UNKNOWN and runs it again, as it would with the marker's KILL result.
 */
@Injectable()
export class RunningMarkerStore extends JsonRecordStore<RunningMarker> {
  constructor(@Inject(PORPOISE_CONFIG) config: WorkerConfig) {
    super(
      join(resolve(config.dataDir), 'running'),
      parseRunningMarker,
      new Logger('WorkerRunningMarkers'),
      false,
    );
  }
}
