import { Injectable } from '@nestjs/common';
import type { EdgeDefinition, TaskDefinition } from '@porpoise/common';
import { DataSource } from 'typeorm';
import { firstRow, queryRows } from './sql';

/** A validated workflow definition body: what a version stores. */
export interface WorkflowDefinitionInput {
  readonly name: string;
  readonly description: string;
  readonly tasks: TaskDefinition[];
  readonly edges: EdgeDefinition[];
}

/** One version of a workflow definition. updatedAt is when this version was stored. */
export interface WorkflowDefinitionRecord extends WorkflowDefinitionInput {
  readonly code: string;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface WorkflowDefinitionSummary {
  readonly code: string;
  readonly version: number;
  readonly name: string;
  readonly description: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

interface DefinitionRow {
  code: string;
  version: number;
  name: string;
  description: string;
  tasks: TaskDefinition[];
  edges: EdgeDefinition[];
  created_at: Date;
  updated_at: Date;
}

/** jsonb keeps keys sorted by length; give them back in the order the API documents. */
const task = (t: TaskDefinition): TaskDefinition => ({
  name: t.name,
  type: t.type,
  command: t.command,
  retries: t.retries,
  retryIntervalMs: t.retryIntervalMs,
  timeoutMs: t.timeoutMs,
  workerGroup: t.workerGroup,
});

const toRecord = (r: DefinitionRow): WorkflowDefinitionRecord => ({
  code: r.code,
  version: Number(r.version),
  name: r.name,
  description: r.description,
  tasks: r.tasks.map(task),
  edges: r.edges.map((e) => ({ from: e.from, to: e.to })),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/**
 * Versioned workflow definitions. Every write is one statement (data-modifying CTEs), so the
 * definition row and its version row are stored together or not at all, in one round trip.
 */
@Injectable()
export class WorkflowDefinitionRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Stores version 1 under code. Null when the code is already taken (the caller picks another). */
  async create(code: string, input: WorkflowDefinitionInput): Promise<WorkflowDefinitionRecord | null> {
    const rows = await queryRows<DefinitionRow>(
      this.dataSource,
      `WITH d AS (
         INSERT INTO workflow_definition (code, name, description, version)
         VALUES ($1, $2, $3, 1)
         ON CONFLICT (code) DO NOTHING
         RETURNING code, version, created_at, updated_at),
       v AS (
         INSERT INTO workflow_definition_version (code, version, name, description, tasks, edges, created_at)
         SELECT code, version, $2, $3, $4::jsonb, $5::jsonb, created_at FROM d
         RETURNING code, version, name, description, tasks, edges)
       SELECT v.*, d.created_at, d.updated_at FROM v JOIN d USING (code)`,
      [code, input.name, input.description, JSON.stringify(input.tasks), JSON.stringify(input.edges)],
    );
    const row = rows[0];
    return row === undefined ? null : toRecord(row);
  }

  /**
   * Stores the next version and makes it current. The row lock of the UPDATE serialises
   * concurrent updates of one workflow, so versions never collide. Null when code is unknown.
   */
  async update(code: string, input: WorkflowDefinitionInput): Promise<WorkflowDefinitionRecord | null> {
    const rows = await queryRows<DefinitionRow>(
      this.dataSource,
      `WITH d AS (
         UPDATE workflow_definition SET version = version + 1, name = $2, description = $3, updated_at = now()
         WHERE code = $1
         RETURNING code, version, created_at, updated_at),
       v AS (
         INSERT INTO workflow_definition_version (code, version, name, description, tasks, edges, created_at)
         SELECT code, version, $2, $3, $4::jsonb, $5::jsonb, updated_at FROM d
         RETURNING code, version, name, description, tasks, edges)
       SELECT v.*, d.created_at, d.updated_at FROM v JOIN d USING (code)`,
      [code, input.name, input.description, JSON.stringify(input.tasks), JSON.stringify(input.edges)],
    );
    const row = rows[0];
    return row === undefined ? null : toRecord(row);
  }

  /** The current version, or the given one. Null when the workflow or that version is unknown. */
  async find(code: string, version?: number): Promise<WorkflowDefinitionRecord | null> {
    const rows = await queryRows<DefinitionRow>(
      this.dataSource,
      `SELECT d.code, v.version, v.name, v.description, v.tasks, v.edges, d.created_at, v.created_at AS updated_at
       FROM workflow_definition d
       JOIN workflow_definition_version v ON v.code = d.code AND v.version = COALESCE($2::integer, d.version)
       WHERE d.code = $1`,
      [code, version ?? null],
    );
    const row = rows[0];
    return row === undefined ? null : toRecord(row);
  }

  /** Newest first. */
  async list(limit: number, offset: number): Promise<{ items: WorkflowDefinitionSummary[]; total: number }> {
    const [rows, count] = await Promise.all([
      queryRows<Omit<DefinitionRow, 'tasks' | 'edges'>>(
        this.dataSource,
        `SELECT code, version, name, description, created_at, updated_at
         FROM workflow_definition ORDER BY created_at DESC, code DESC LIMIT $1 OFFSET $2`,
        [limit, offset],
      ),
      queryRows<{ total: string }>(this.dataSource, 'SELECT count(*) AS total FROM workflow_definition'),
    ]);
    return {
      items: rows.map((r) => ({
        code: r.code,
        version: Number(r.version),
        name: r.name,
        description: r.description,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      })),
      total: Number(firstRow(count, 'count of workflow definitions').total),
    };
  }
}
