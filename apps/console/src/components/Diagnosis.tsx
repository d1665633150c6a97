import { usePoll } from '../hooks';
import { ErrorBox, when } from './bits';

interface TaskDiagnosis {
  name: string;
  state: string | null;
  waitingFor: string | null;
  since: string | null;
  upstream?: string[];
  workerGroup?: string;
  taskGroup?: string;
  retryAt?: string;
  host?: string;
}

/** What holds a task, in words, with the detail the API gives. */
function reason(t: TaskDiagnosis): string {
  switch (t.waitingFor) {
    case null:
      return 'nothing: it runs, or is being dispatched';
    case 'upstream':
      return `upstream tasks: ${(t.upstream ?? []).join(', ')}`;
    case 'worker-group':
      return `no live worker in group "${t.workerGroup ?? ''}"`;
    case 'worker-capacity':
      return `every worker of group "${t.workerGroup ?? ''}" is full`;
    case 'task-group':
      return `a slot of task group "${t.taskGroup ?? ''}"`;
    case 'retry-delay':
      return `its retry, due ${when(t.retryAt)}`;
    case 'master':
      return 'a master to take the run';
    case 'serial-wait':
      return "the workflow's concurrency limit";
    case 'paused':
      return 'the run is paused';
    default:
      return t.waitingFor;
  }
}

/**
 * Why the unfinished tasks of a run are not done (GET /workflow-instances/{id}/diagnosis),
 * read every 2 s while the run is not finished.
 */
export function Diagnosis({ instanceId }: { instanceId: number }) {
  const diagnosis = usePoll<{ tasks: TaskDiagnosis[] }>(`/workflow-instances/${instanceId}/diagnosis`, 2000);
  const tasks = diagnosis.data?.tasks ?? [];
  return (
    <div data-testid="diagnosis">
      <ErrorBox error={diagnosis.error} />
      {tasks.length === 0 ? (
        <p className="muted">No unfinished task.</p>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th>Task</th>
              <th>State</th>
              <th>Waiting for</th>
              <th>Since</th>
            </tr>
          </thead>
          <tbody>
            {tasks.map((t) => (
              <tr key={t.name}>
                <td>{t.name}</td>
                <td>{t.state ?? 'not started'}</td>
                <td>{reason(t)}</td>
                <td>{when(t.since)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
