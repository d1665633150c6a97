import { Inject, Injectable } from '@nestjs/common';
import { PORPOISE_CONFIG, sealSecret, type ApiServerConfig } from '@porpoise/common';
import { DatasourceRepository, type DatasourceRecord } from '@porpoise/dao';
import { ConflictError, NotFoundError } from '../common/api-errors';
import { quote } from '../common/input';
import { DATASOURCE_NAME_PATTERN, parseDatasourceBody } from './datasource-body';

/** What the API answers: never the password, not even encrypted. */
export interface DatasourceView {
  name: string;
  type: string;
  url: string;
  createdAt: Date;
  updatedAt: Date;
}

const view = (r: DatasourceRecord): DatasourceView => ({
  name: r.name,
  type: r.type,
  url: r.urlRedacted,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
});

@Injectable()
export class DatasourcesService {
  constructor(
    private readonly datasources: DatasourceRepository,
    @Inject(PORPOISE_CONFIG) private readonly config: ApiServerConfig,
  ) {}

  async create(body: unknown): Promise<DatasourceView> {
    const input = parseDatasourceBody(body);
    const created = await this.datasources.create({
      name: input.name,
      type: input.type,
      urlRedacted: input.urlRedacted,
      urlEncrypted: sealSecret(this.config.datasourceKey, input.url),
    });
    if (!created) throw new ConflictError(`datasource ${quote(input.name)} already exists`);
    return view(created);
  }

  async list(): Promise<{ items: DatasourceView[] }> {
    return { items: (await this.datasources.list()).map(view) };
  }

  async get(name: string): Promise<DatasourceView> {
    const found = DATASOURCE_NAME_PATTERN.test(name) ? await this.datasources.find(name) : undefined;
    if (!found) throw new NotFoundError(`datasource ${quote(name)} not found`);
    return view(found);
  }

  async delete(name: string): Promise<void> {
    const deleted = DATASOURCE_NAME_PATTERN.test(name) && (await this.datasources.delete(name));
    if (!deleted) throw new NotFoundError(`datasource ${quote(name)} not found`);
  }
}
