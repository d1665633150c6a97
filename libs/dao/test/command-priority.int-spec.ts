import { startPostgres, type TestServer } from '@porpoise/test-harness';
import type { DataSource } from 'typeorm';
import {
  CommandRepository,
  createDataSource,
  runMigrations,
  WorkflowDefinitionRepository,
  WorkflowRunRepository,
} from '../src';

/**
 * DESIGN.md section 10: a workflow's priority orders the commands a master takes (priority, then
 * id), whatever path wrote them: a trigger and a rerun here, both through CommandRepository.
 */
describe('commands are taken highest workflow priority first, then in id order', () => {
  let pg: TestServer;
  let source: DataSource;
  let definitions: WorkflowDefinitionRepository;
  let runs: WorkflowRunRepository;
  let commands: CommandRepository;

  beforeAll(async () => {
    pg = await startPostgres();
    await runMigrations(pg.endpoint);
    source = await createDataSource(pg.endpoint, 'command-priority-test').initialize();
    definitions = new WorkflowDefinitionRepository(source);
    runs = new WorkflowRunRepository(source);
    commands = new CommandRepository(source);
  });

  afterAll(async () => {
    await source?.destroy();
    await pg?.dispose();
  });

  const workflow = (priority?: 'HIGHEST' | 'LOW' | 'LOWEST') => ({
    name: 'w',
    description: '',
    params: {},
    failureStrategy: 'END' as const,
    timeoutMs: 0,
    ...(priority === undefined ? {} : { priority }),
    tasks: [
      {
        name: 'a',
        type: 'EMPTY' as const,
        retries: 0,
        retryIntervalMs: 0,
        timeoutMs: 0,
        workerGroup: 'default',
      },
    ],
    edges: [],
  });

  it('a later HIGHEST run is taken before earlier MEDIUM and LOW ones; equal priorities keep id order', async () => {
    await definitions.create('low', workflow('LOW'));
    await definitions.create('mid', workflow());
    await definitions.create('top', workflow('LOWEST'));
    // An update changes the priority of the commands written from then on.
    await definitions.update('top', workflow('HIGHEST'));
    const order: string[] = [];
    const started = new Map<number, string>();
    for (const code of ['low', 'mid', 'low', 'mid', 'top']) {
      const t = await runs.trigger(code, {});
      if (t) started.set(t.workflowInstanceId, code);
    }
    for (;;) {
      const batch = await commands.consume({ slot: 0, count: 1, host: 'm:1', batchSize: 1 });
      if (batch.length === 0) break;
      for (const c of batch) order.push(started.get(c.workflowInstanceId) ?? '?');
    }
    expect(order).toEqual(['top', 'mid', 'mid', 'low', 'low']);
    const stored = await source.query<Array<{ code: string; priority: number }>>(
      'SELECT code, priority FROM workflow_definition ORDER BY code',
    );
    expect(stored).toEqual([
      { code: 'low', priority: 3 },
      { code: 'mid', priority: 2 },
      { code: 'top', priority: 0 },
    ]);
  });

  it('a batch comes back in the order it was taken (priority, then id)', async () => {
    const ids: number[] = [];
    for (const code of ['low', 'top', 'mid']) {
      const t = await runs.trigger(code, {});
      if (t) ids.push(t.workflowInstanceId);
    }
    const batch = await commands.consume({ slot: 0, count: 1, host: 'm:1', batchSize: 10 });
    expect(batch.map((c) => c.workflowInstanceId)).toEqual([ids[1], ids[2], ids[0]]);
  });
});
