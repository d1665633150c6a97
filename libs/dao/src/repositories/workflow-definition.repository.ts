import { Injectable } from '@nestjs/common';
import {
  canonicalEdgeDefinition,
  canonicalTaskDefinition,
  definitionSettings,
  priorityRank,
  readStoredSettings,
  type EdgeDefinition,
  type TaskDefinition,
  type WorkflowDefinition,
} from '@porpoise/common';
import { DataSource } from 'typeorm';
import { firstRow, queryRows } from './sql';

/** A validated workflow definition (parseWorkflowDefinition): what a version stores. */
export type WorkflowDefinitionInput = WorkflowDefinition;

/** One version of a workflow definition. updatedAt is when this version was stored. */
export interface WorkflowDefinitionRecord extends WorkflowDefinition {
  readonly code: string;
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A workflow in the list, with its newest run (null: never run). */
export interface WorkflowListItem extends WorkflowDefinitionSummary {
  readonly lastRun: {
    readonly id: number;
    readonly state: string;
    readonly startTime: Date | null;
    readonly endTime: Date | null;
  } | null;
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
  /** params, failureStrategy, timeoutMs; `{}` for versions stored before the column existed. */
  settings: unknown;
  created_at: Date;
  updated_at: Date;
}

const toRecord = (r: DefinitionRow): WorkflowDefinitionRecord => ({
  code: r.code,
  version: Number(r.version),
  name: r.name,
  description: r.description,
  ...readStoredSettings(r.settings),
  // jsonb keeps keys sorted by length; give them back in the order the API documents.
  tasks: r.tasks.map(canonicalTaskDefinition),
  edges: r.edges.map(canonicalEdgeDefinition),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** The parameters of an insert of a version: $2.. of create() and update(). */
const versionValues = (input: WorkflowDefinitionInput): Array<string | number | null> => [
  input.name,
  input.description,
  JSON.stringify(input.tasks),
  JSON.stringify(input.edges),
  JSON.stringify(definitionSettings(input)),
  // $7: workflow_definition.priority, the current version's, kept on the row so that a command's
  // priority is a column read when it is written (DESIGN.md section 10).
  String(priorityRank(input.priority)),
  // $8, $9: the run gate reads the concurrency from workflow_definition, not from the jsonb.
  input.concurrency?.policy ?? 'PARALLEL',
  input.concurrency?.maxRuns ?? null,
];

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
         INSERT INTO workflow_definition (code, name, description, version, priority, concurrency_policy, max_runs)
         VALUES ($1, $2, $3, 1, $7::smallint, $8, $9::integer)
         ON CONFLICT (code) DO NOTHING
         RETURNING code, version, created_at, updated_at),
       v AS (
         INSERT INTO workflow_definition_version
           (code, version, name, description, tasks, edges, settings, created_at)
         SELECT code, version, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, created_at FROM d
         RETURNING code, version, name, description, tasks, edges, settings)
       SELECT v.*, d.created_at, d.updated_at FROM v JOIN d USING (code)`,
      [code, ...versionValues(input)],
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
         UPDATE workflow_definition
         SET version = version + 1, name = $2, description = $3, priority = $7::smallint, updated_at = now(),
           concurrency_policy = $8, max_runs = $9::integer
         WHERE code = $1
         RETURNING code, version, created_at, updated_at),
       v AS (
         INSERT INTO workflow_definition_version
           (code, version, name, description, tasks, edges, settings, created_at)
         SELECT code, version, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, updated_at FROM d
         RETURNING code, version, name, description, tasks, edges, settings)
       SELECT v.*, d.created_at, d.updated_at FROM v JOIN d USING (code)`,
      [code, ...versionValues(input)],
    );
    const row = rows[0];
    return row === undefined ? null : toRecord(row);
  }

  /** The current version, or the given one. Null when the workflow or that version is unknown. */
  async find(code: string, version?: number): Promise<WorkflowDefinitionRecord | null> {
    const rows = await queryRows<DefinitionRow>(
      this.dataSource,
      `SELECT d.code, v.version, v.name, v.description, v.tasks, v.edges, v.settings, d.created_at,
              v.created_at AS updated_at
       FROM workflow_definition d
       JOIN workflow_definition_version v ON v.code = d.code AND v.version = COALESCE($2::integer, d.version)
       WHERE d.code = $1`,
      [code, version ?? null],
    );
    const row = rows[0];
    return row === undefined ? null : toRecord(row);
  }

  /** Which of codes name a workflow (definition-time check of SUB_WORKFLOW tasks). */
  async existingCodes(codes: readonly string[]): Promise<string[]> {
    if (codes.length === 0) return [];
    const rows = await queryRows<{ code: string }>(
      this.dataSource,
      'SELECT code FROM workflow_definition WHERE code = ANY($1::text[]) ORDER BY code',
      [[...codes]],
    );
    return rows.map((r) => r.code);
  }

  /**
   * Which of codes run `target` through SUB_WORKFLOW tasks of their current versions,
   * transitively (a PUT of target naming one of them would make a workflow start itself
   * forever). UNION keeps each (origin, code) pair once, so the walk ends on any graph.
   */
  async subWorkflowsReaching(codes: readonly string[], target: string): Promise<string[]> {
    if (codes.length === 0) return [];
    const rows = await queryRows<{ origin: string }>(
      this.dataSource,
      `WITH RECURSIVE reach(origin, code) AS (
         SELECT c, c FROM unnest($1::text[]) AS c
         UNION
         SELECT r.origin, t.value -> 'subWorkflow' ->> 'workflowCode'
         FROM reach r
         JOIN workflow_definition d ON d.code = r.code
         JOIN workflow_definition_version v ON v.code = d.code AND v.version = d.version
         CROSS JOIN LATERAL jsonb_array_elements(v.tasks) t
         WHERE r.code <> $2 AND t.value ->> 'type' = 'SUB_WORKFLOW')
       SELECT DISTINCT origin FROM reach WHERE code = $2 ORDER BY origin`,
      [[...codes], target],
    );
    return rows.map((r) => r.origin);
  }

  /** Newest first. */
  /**
   * A page of workflows, newest first, each with its newest run: one LATERAL lookup per listed
   * workflow on the (workflow_code, id DESC) index, in the same statement (no query per row).
   */
  async list(limit: number, offset: number): Promise<{ items: WorkflowListItem[]; total: number }> {
    const [rows, count] = await Promise.all([
      queryRows<
        Omit<DefinitionRow, 'tasks' | 'edges' | 'settings'> & {
          run_id: string | null;
          run_state: string | null;
          run_start: Date | null;
          run_end: Date | null;
        }
      >(
        this.dataSource,
        `SELECT d.code, d.version, d.name, d.description, d.created_at, d.updated_at,
                r.id AS run_id, r.state AS run_state, r.start_time AS run_start, r.end_time AS run_end
         FROM (SELECT code, version, name, description, created_at, updated_at
               FROM workflow_definition ORDER BY created_at DESC, code DESC LIMIT $1 OFFSET $2) d
         LEFT JOIN LATERAL (
           SELECT id, state, start_time, end_time FROM workflow_instance i
           WHERE i.workflow_code = d.code ORDER BY i.id DESC LIMIT 1) r ON true
         ORDER BY d.created_at DESC, d.code DESC`,
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
        lastRun:
          r.run_id === null
            ? null
            : { id: Number(r.run_id), state: r.run_state ?? '', startTime: r.run_start, endTime: r.run_end },
      })),
      total: Number(firstRow(count, 'count of workflow definitions').total),
    };
  }
}
