import { ErrorBox, Section } from '../components/bits';
import { useNow, usePoll } from '../hooks';
import type { Instance, MasterNode, Page, WorkerNode } from '../types';

function age(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  return s < 90 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

/** The heartbeat's usage is a fraction (0..1) of the host's CPUs or memory. */
const pct = (x: number) => `${(x * 100).toFixed(0)} %`;

/**
 * The registry's view of the nodes (GET /cluster/nodes). How many runs each master drives is not
 * in the heartbeat: it is counted from the unfinished runs, whose `host` is their master.
 */
export function ClusterPage() {
  const nodes = usePoll<{ masters: MasterNode[]; workers: WorkerNode[] }>('/cluster/nodes', 2000);
  const active = usePoll<Page<Instance>>('/workflow-instances?limit=1000&state=RUNNING_EXECUTION', 3000);
  const now = useNow(1000);
  const driven = new Map<string, number>();
  for (const r of active.data?.items ?? []) if (r.host) driven.set(r.host, (driven.get(r.host) ?? 0) + 1);
  const masters = nodes.data?.masters ?? [];
  const workers = nodes.data?.workers ?? [];
  return (
    <>
      <Section title={`Masters (${masters.length})`}>
        <ErrorBox error={nodes.error} />
        <table className="table" data-testid="masters-table">
          <thead>
            <tr>
              <th>Address</th>
              <th>Serving</th>
              <th>Runs driven</th>
              <th>CPU</th>
              <th>Memory</th>
              <th>Load</th>
              <th>Heartbeat</th>
              <th>Up since</th>
            </tr>
          </thead>
          <tbody>
            {masters.map((m) => (
              <tr key={m.address}>
                <td>
                  <code>{m.address}</code>
                </td>
                <td>{m.serving ? 'yes' : 'no'}</td>
                <td>{driven.get(m.address) ?? driven.get(`${m.host}:${m.port}`) ?? 0}</td>
                <td>{pct(m.cpuUsage)}</td>
                <td>{pct(m.memoryUsage)}</td>
                <td>{m.loadAverage.toFixed(2)}</td>
                <td>{age(m.heartbeatTime, now)}</td>
                <td>{new Date(m.startTime).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {active.data && active.data.total > active.data.items.length ? (
          <p className="muted">
            Counted over the newest {active.data.items.length} of {active.data.total} running runs.
          </p>
        ) : null}
      </Section>
      <Section title={`Workers (${workers.length})`}>
        <table className="table" data-testid="workers-table">
          <thead>
            <tr>
              <th>Address</th>
              <th>Group</th>
              <th>Running / capacity</th>
              <th>CPU</th>
              <th>Memory</th>
              <th>Load</th>
              <th>Heartbeat</th>
            </tr>
          </thead>
          <tbody>
            {workers.map((w) => (
              <tr key={w.address}>
                <td>
                  <code>{w.address}</code>
                </td>
                <td>{w.group}</td>
                <td>
                  <meter min={0} max={Math.max(w.capacity, 1)} value={w.runningTasks} /> {w.runningTasks} /{' '}
                  {w.capacity}
                </td>
                <td>{pct(w.cpuUsage)}</td>
                <td>{pct(w.memoryUsage)}</td>
                <td>{w.loadAverage.toFixed(2)}</td>
                <td>{age(w.heartbeatTime, now)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </>
  );
}
