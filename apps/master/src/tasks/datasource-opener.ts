import { openSecret } from '@porpoise/common';
import type { DatasourceRepository } from '@porpoise/dao';
import type { DatasourceOpener } from '../engine/task-spec';
import type { OpenedDatasource } from './worker-task-payload';

/**
 * Reads the sealed URLs of data sources and opens them with the cluster's data-source key, for
 * one dispatch: nothing is cached, so a deleted or changed data source counts from the next
 * dispatch on. A URL that does not open (another key) counts as missing: the task is refused.
 */
export function datasourceOpener(repo: DatasourceRepository, key: Buffer): DatasourceOpener {
  return async (names) => {
    const sealed = await repo.encryptedUrls(names);
    const opened = new Map<string, OpenedDatasource>();
    for (const [name, { type, urlEncrypted }] of sealed) {
      try {
        opened.set(name, { type, url: openSecret(key, urlEncrypted) });
      } catch {
        // Left out: the task fails with "data source ... does not exist".
      }
    }
    return opened;
  };
}
