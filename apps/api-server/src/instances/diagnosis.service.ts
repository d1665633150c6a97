import { Injectable } from '@nestjs/common';
import { buildWorkflowGraph, parseStoredDefinition, type WorkflowGraph } from '@porpoise/common';
import { InstanceQueryRepository, TaskGroupRepository, type DiagnosisFacts } from '@porpoise/dao';
import { ClusterService } from '../cluster/cluster.service';
import { NotFoundError } from '../common/api-errors';
import { clusterNeeded, diagnose, type TaskDiagnosis } from './diagnosis';

export interface InstanceDiagnosis {
  readonly workflowInstanceId: number;
  readonly state: string;
  /** The owning master, "address:port"; null while none owns it. */
  readonly host: string | null;
  /** The database's clock when the rows were read. */
  readonly at: string;
  /** Every unfinished task with what holds it (diagnosis.ts). */
  readonly tasks: TaskDiagnosis[];
  /** Why the DAG is unknown (its definition version cannot be read); tasks then come from rows only. */
  readonly problem?: string;
}

/**
 * GET /workflow-instances/{id}/diagnosis: reads the rows (two statements) and, only when the
 * answer depends on it, the registry's live masters and workers (as GET /cluster/nodes does; 503
 * when the registry cannot be read); diagnosis.ts decides.
 */
@Injectable()
export class DiagnosisService {
  constructor(
    private readonly instances: InstanceQueryRepository,
    private readonly cluster: ClusterService,
    private readonly taskGroups: TaskGroupRepository,
  ) {}

  async diagnose(id: number): Promise<InstanceDiagnosis> {
    const facts = await this.instances.diagnosisFacts(id);
    if (!facts) throw new NotFoundError(`workflow instance ${id} not found`);
    const graph = graphOf(facts);
    const cluster = clusterNeeded(facts) ? await this.cluster.nodes() : undefined;
    // Only a ready attempt can wait for a task group slot: the queue is read only then.
    const taskGroupQueue = facts.tasks.some((t) => t.state === 'SUBMITTED_SUCCESS')
      ? await this.taskGroups.queueOf(facts.instance.id)
      : undefined;
    return {
      workflowInstanceId: facts.instance.id,
      state: facts.instance.state,
      host: facts.instance.host,
      at: facts.now.toISOString(),
      tasks: diagnose({ ...facts, graph, cluster, taskGroupQueue }),
      ...(graph instanceof Error ? { problem: graph.message } : {}),
    };
  }
}

/** The run's DAG from its stored version, or why it cannot be read. */
function graphOf(facts: DiagnosisFacts): WorkflowGraph | Error {
  const { instance, definition } = facts;
  if (definition === null) {
    return new Error(`workflow ${instance.workflowCode} version ${instance.workflowVersion} does not exist`);
  }
  try {
    const def = parseStoredDefinition(definition);
    return buildWorkflowGraph(def.tasks, def.edges);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}
