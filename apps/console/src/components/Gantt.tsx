import type { TaskInstance } from '../types';
import { duration } from './bits';

/** Every attempt of every task on one time axis, from the first start to the last end (or now). */
export function Gantt({ tasks, now }: { tasks: readonly TaskInstance[]; now: number }) {
  const started = tasks.filter((t) => t.startTime);
  if (started.length === 0) return <p className="muted">No task has started yet.</p>;
  const begin = Math.min(...started.map((t) => Date.parse(t.startTime ?? '')));
  const finish = Math.max(...started.map((t) => (t.endTime ? Date.parse(t.endTime) : now)), begin + 1);
  const span = finish - begin;
  return (
    <div className="gantt" data-testid="gantt">
      {started.map((t) => {
        const s = Date.parse(t.startTime ?? '');
        const e = t.endTime ? Date.parse(t.endTime) : now;
        const left = ((s - begin) / span) * 100;
        const width = Math.max(((e - s) / span) * 100, 0.5);
        return (
          <div className="gantt-row" key={t.id}>
            <span className="gantt-label">
              {t.name}
              {t.attempt > 1 ? ` #${t.attempt}` : ''}
            </span>
            <span className="gantt-track">
              {/* React sets style through the CSSOM, which the CSP (no inline style attribute) allows. */}
              <span
                className={`gantt-bar state-${t.state}`}
                style={{ marginLeft: `${left}%`, width: `${width}%` }}
                title={`${t.name} attempt ${t.attempt}: ${t.state}, ${duration(t.startTime, t.endTime, now)}`}
              />
            </span>
            <span className="gantt-time">{duration(t.startTime, t.endTime, now)}</span>
          </div>
        );
      })}
      <div className="gantt-axis muted">
        <span>{new Date(begin).toLocaleTimeString()}</span>
        <span>{new Date(finish).toLocaleTimeString()}</span>
      </div>
    </div>
  );
}
